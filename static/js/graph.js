// The unrolled network: a column per step (x_t, h_t, ŷ_t, L_t) plus h_0, edges labelled
// with the chosen notation's weight names. A selected loss L_t lights up the paths its
// gradient travels back, edge width and colour by ‖δ_{t,k}‖; a selected step k shows what
// flows into z_k (blue) and out of h_k (orange).

import { tr } from "./i18n.js";
import { fmt, subName } from "./util.js";

const ROW = { x: 0, h: 1, y: 2, L: 3 };
const C = { x: "#4c78a8", h: "#1f4e79", y: "#54a24b", L: "#d1495b", off: "#c4c9d0", base: "#d5dae1", in: "#2b83ba", out: "#f28e2b" };
// viridis stops for the edge colours (colour-blind safe)
const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

export function graphFigure(ctx) {
  const { resp, sel, names, seq } = ctx;
  const T = resp.shapes.T;
  const out = resp.shapes.p !== null;
  const Lrow = out ? ROW.L : ROW.y;
  const mask = resp.loss_steps;
  const dn = seq(resp.delta_norm);
  const traces = [];
  const annotations = [];
  const seg = (xs, ys, x0, y0, x1, y1) => { xs.push(x0, x1, null); ys.push(y0, y1, null); };

  // base edges
  const bx = [], by = [];
  for (let t = 1; t <= T; t++) {
    seg(bx, by, t, ROW.x, t, ROW.h);
    seg(bx, by, t - 1, ROW.h, t, ROW.h);
    if (out) { seg(bx, by, t, ROW.h, t, ROW.y); seg(bx, by, t, ROW.y, t, ROW.L); } else seg(bx, by, t, ROW.h, t, Lrow);
  }
  traces.push({ x: bx, y: by, mode: "lines", line: { color: C.base, width: 1.5 }, hoverinfo: "skip", showlegend: false });

  // gradient paths of the selected loss L_t: buckets of width and colour by ‖δ_{t,k}‖
  const t = sel.t;
  if (mask[t]) {
    const row = dn[t].slice(0, t + 1);
    const finite = row.filter((v) => v !== null && v > 0);
    const hi = Math.max(...finite, 1e-300), lo = Math.min(...finite, hi);
    const span = Math.max(Math.log10(hi) - Math.log10(lo), 1e-9);
    const buckets = VIRIDIS.map(() => ({ x: [], y: [] }));
    const level = (v) => (v === null || !(v > 0) ? -1 : Math.min(4, Math.floor(((Math.log10(v) - Math.log10(lo)) / span) * 4.999)));
    for (let k = 0; k <= t; k++) {
      const b = level(row[k]);
      if (b < 0) continue;
      seg(buckets[b].x, buckets[b].y, k, ROW.h, k + 1, ROW.h); // h_k → h_{k+1} carries δ_{t,k+1}
      seg(buckets[b].x, buckets[b].y, k + 1, ROW.x, k + 1, ROW.h); // into the copy of W_xh at step k+1
    }
    const top = level(row[t]);
    if (top >= 0) {
      if (out) { seg(buckets[top].x, buckets[top].y, t + 1, ROW.h, t + 1, ROW.y); seg(buckets[top].x, buckets[top].y, t + 1, ROW.y, t + 1, ROW.L); }
      else seg(buckets[top].x, buckets[top].y, t + 1, ROW.h, t + 1, Lrow);
    }
    buckets.forEach((bk, i) => {
      if (bk.x.length) traces.push({ x: bk.x, y: bk.y, mode: "lines", line: { color: VIRIDIS[i], width: 2 + i * 1.6 }, hoverinfo: "skip", showlegend: false });
    });
    // hover points on the path: the value of ‖δ_{t,k}‖
    traces.push({
      x: row.map((_, k) => k + 0.5), y: row.map(() => ROW.h), mode: "markers",
      marker: { size: 14, color: "rgba(0,0,0,0)" }, showlegend: false,
      hovertemplate: row.map((v, k) => `‖δ<sub>${t + 1},${k + 1}</sub>‖ = ${fmt(v)}<extra></extra>`),
      customdata: row.map((_, k) => ["k", k]),
    });
  }
  // what flows into z_k and out of h_k
  const k = sel.k;
  const ix = [], iy = [], ox = [], oy = [];
  seg(ix, iy, k + 1, ROW.x, k + 1, ROW.h);
  seg(ix, iy, k, ROW.h, k + 1, ROW.h);
  if (k + 1 < T) seg(ox, oy, k + 1, ROW.h, k + 2, ROW.h);
  if (out) seg(ox, oy, k + 1, ROW.h, k + 1, ROW.y); else seg(ox, oy, k + 1, ROW.h, k + 1, Lrow);
  traces.push({ x: ix, y: iy, mode: "lines", line: { color: C.in, width: 2, dash: "dot" }, hoverinfo: "skip", showlegend: false });
  traces.push({ x: ox, y: oy, mode: "lines", line: { color: C.out, width: 2, dash: "dot" }, hoverinfo: "skip", showlegend: false });

  // nodes
  const hName = names.h === "a" ? "a" : "h";
  const labels = T <= 16;
  // long sequences: label the first, the selected, every d-th and the last column, d such that
  // about 25 labels at most share the width (every 5th up to T = 125, then every 10th, 25th, …)
  const d = [5, 10, 25, 50, 100, 250].find((n) => T / n <= 25) || 500;
  const shownAt = (s) => labels || s === 0 || s === 1 || s === T || s % d === 0 || s === t + 1 || s === k + 1;
  const h = seq(resp.forward.h);
  const vec = (v) => (v ? `[${v.slice(0, 4).map((x) => fmt(x, 3)).join(", ")}${v.length > 4 ? ", …" : ""}]` : "");
  const node = (name, row, color, xs, text, hover, custom, extra = {}) => traces.push({
    name, x: xs, y: xs.map(() => row), mode: "markers+text", text: labels ? text : text.map((s, i) => (shownAt(xs[i]) ? s : "")),
    textposition: labels ? "middle center" : "bottom center",
    textfont: { color: labels ? "#fff" : "#1d232b", size: labels ? 11 : 9 }, marker: { size: labels ? 26 : 10, color, line: { width: 0 } },
    hovertemplate: hover.map((s) => `${s}<extra></extra>`), customdata: custom, showlegend: false, ...extra,
  });
  const steps = Array.from({ length: T }, (_, i) => i + 1);
  const x = seq(ctx.req.inputs);
  node(tr("legend.x"), ROW.x, C.x, steps, steps.map((s) => `x${s}`), steps.map((s) => `x<sub>${s}</sub> = ${vec(x?.[s - 1])}`), steps.map((s) => ["k", s - 1]));
  node(tr("legend.h"), ROW.h, C.h, [0, ...steps], [0, ...steps].map((s) => `${hName}${s}`),
    [0, ...steps].map((s) => `${hName}<sub>${s}</sub> = ${s === 0 ? vec(ctx.h0) : vec(h[s - 1])}`), [0, ...steps].map((s) => ["k", Math.max(0, s - 1)]));
  if (out) {
    const yh = seq(resp.forward.y_hat);
    node(tr("legend.y"), ROW.y, C.y, steps, steps.map((s) => `ŷ${s}`), steps.map((s) => `ŷ<sub>${s}</sub> = ${vec(yh[s - 1])}`), steps.map((s) => ["t", s - 1]));
  }
  const lt = seq(resp.forward.loss_t);
  node(tr("legend.L"), Lrow, steps.map((s) => (mask[s - 1] ? C.L : C.off)), steps, steps.map((s) => `L${s}`),
    steps.map((s) => (mask[s - 1] ? `L<sub>${s}</sub> = ${fmt(lt[s - 1])}` : tr("legend.L.off"))), steps.map((s) => ["t", s - 1]),
    { meta: "loss" });
  // selection rings
  traces.push({
    x: [t + 1, k + 1], y: [Lrow, ROW.h], mode: "markers", hoverinfo: "skip", showlegend: false,
    marker: { size: labels ? 36 : 20, color: "rgba(0,0,0,0)", line: { width: 3, color: ["#111", C.in] } },
  });

  // weight names on the edges of the selected step k (every step's when T is small)
  const every = T <= 6;
  for (const s of every ? steps : [k + 1]) {
    annotations.push(label(s, 0.5, subName(names.W_xh)));
    annotations.push(label(s - 0.5, ROW.h + 0.22, subName(names.W_hh), 0));
    if (out) annotations.push(label(s, 1.5, subName(names.W_hy)));
  }
  const layout = {
    margin: { l: 10, r: 10, t: 6, b: 6 }, dragmode: false, hovermode: "closest",
    xaxis: { visible: false, range: [-0.6, T + 0.6], fixedrange: true },
    yaxis: { visible: false, range: [-0.5, Lrow + 0.5], fixedrange: true },
    annotations, plot_bgcolor: "#fff", paper_bgcolor: "#fff", showlegend: false,
  };
  return { data: traces, layout };
}

function label(x, y, text, xshift = 14) {
  return { x, y, text, showarrow: false, font: { size: 11, color: "#5b6573" }, bgcolor: "rgba(255,255,255,0.85)", xshift };
}
