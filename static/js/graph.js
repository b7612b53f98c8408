// The unrolled network: a column per step (x_t, h_t, ŷ_t, L_t) plus h_0, edges labelled
// with the chosen notation's weight names; the LSTM's cell-state rail c_{k−1} → c_k runs above h.
// A selected loss L_t lights up the paths its gradient travels back, edge width and colour by
// ‖∂L_t/∂h_k‖ (every cell has it: cells compare by it) and ‖∂L_t/∂c_k‖ on the rail; a selected
// step k shows what flows into z_k (blue) and out of h_k (orange).

import { tr } from "./i18n.js";
import { logRange } from "./plots.js";
import { fmt, subName } from "./util.js";

const ROW = { x: 0, h: 1, y: 2, L: 3 };
const C = { x: "#4c78a8", h: "#1f4e79", c: "#7b4fa0", y: "#54a24b", L: "#d1495b", off: "#c4c9d0", base: "#d5dae1", in: "#2b83ba", out: "#f28e2b" };
// viridis stops for the edge colours (colour-blind safe)
const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
/** Longer sequences are drawn as a window of this many steps (labels stay readable, and a
 *  selection redraws about 50 columns, not T). */
export const WINDOW = 40;
const WINDOW_FROM = 61;

/** The steps the graph draws, 1-based [lo, hi]: all of them up to T = 60; beyond, a window of
 *  WINDOW steps that holds the selected step k (and the loss t when they fit together), or
 *  starts at `from` (the ◀ ▶ buttons) when given. */
export function graphWindow(T, t, k, from = null) {
  if (T < WINDOW_FROM) return [1, T];
  const W = WINDOW;
  let lo;
  if (from !== null && from !== undefined) lo = from;
  else if (t - k < W - 1) lo = Math.max(1, t + 2 - W);  // the path from L_t back to k, whole
  else lo = k + 1 - Math.floor(W / 2);  // k far from t: centred on k
  lo = Math.min(Math.max(1, lo), T - W + 1);
  return [lo, lo + W - 1];
}

/** The rows of the graph (y): x, h, (the LSTM's cell-state rail c above h), ŷ, L. */
function rowsOf(lstm) {
  return lstm ? { x: 0, h: 1, c: 1.85, y: 2.7, L: 3.5 } : { ...ROW };
}
/** The LSTM's c_k sits left of its column, so the edge h_k → ŷ_k passes beside it. */
const CX = 0.32;

/** The norms the path of L_t is coloured by: ‖∂L_t/∂h_k‖ (delta_h_norm), which every cell has,
 *  and the LSTM's ‖∂L_t/∂c_k‖ on the cell-state rail; ‖δ_{t,k}‖ when the response lacks them. */
function pathNorms(resp, seq) {
  const dh = seq(resp.delta_h_norm ?? null);
  if (dh) return { kind: "dh", h: dh, c: seq(resp.delta_c_norm ?? null), delta: seq(resp.delta_norm ?? null) };
  const dn = seq(resp.delta_norm ?? null);
  return dn ? { kind: "delta", h: dn, c: null, delta: dn } : null;
}

/** The graph's window for a selection and view: it follows the step-by-step player's k while
 *  the player is on (player.js), else the selection. */
export function graphRange(T, sel, view) {
  const pk = view?.player?.k;
  if (Number.isInteger(pk)) return graphWindow(T, Math.max(sel.t, pk), pk, view.graphFrom);
  return graphWindow(T, sel.t, sel.k, view?.graphFrom);
}

/** The edges the player's step k crosses (0-based; graph x = step k + 1): into h_k from copy
 *  k + 1 (W_hh, what dh_next carries back) and from the step's own loss L_k (ε_{k,k}). */
function playerEdges(ctx, Lrow, out, lo, hi, R = ROW) {
  const pk = ctx.view?.player?.k;
  if (!Number.isInteger(pk)) return null;
  const s = pk + 1, T = ctx.resp.shapes.T;
  const xs = [], ys = [];
  const seg = (x0, y0, x1, y1) => { xs.push(x0, x1, null); ys.push(y0, y1, null); };
  if (s < T && s + 1 <= hi) seg(s, R.h, s + 1, R.h);
  if (ctx.resp.loss_steps[pk] && s >= lo) {
    if (out) { seg(s, Lrow, s, R.y); seg(s, R.y, s, R.h); } else seg(s, Lrow, s, R.h);
  }
  return { x: xs, y: ys, mode: "lines", line: { color: "rgba(231,41,138,0.45)", width: 12 }, hoverinfo: "skip", showlegend: false, meta: "player" };
}

export function graphFigure(ctx) {
  const { resp, sel, names, seq } = ctx;
  const T = resp.shapes.T;
  const [lo, hi] = graphRange(T, sel, ctx.view);
  const inWin = (s) => s >= lo - 1 && s <= hi;  // columns lo − 1 … hi: h_{lo−1} feeds step lo
  const out = resp.shapes.p !== null;
  const lstm = !!resp.forward.c;
  const R = rowsOf(lstm);
  const Lrow = out ? R.L : R.y;
  const mask = resp.loss_steps;
  const traces = [];
  const annotations = [];
  const seg = (xs, ys, x0, y0, x1, y1) => { xs.push(x0, x1, null); ys.push(y0, y1, null); };

  // base edges
  const bx = [], by = [];
  for (let t = lo; t <= hi; t++) {
    seg(bx, by, t, R.x, t, R.h);
    seg(bx, by, t - 1, R.h, t, R.h);
    if (lstm) { seg(bx, by, t - 1 - CX, R.c, t - CX, R.c); seg(bx, by, t - CX, R.c, t, R.h); }
    if (out) { seg(bx, by, t, R.h, t, R.y); seg(bx, by, t, R.y, t, R.L); } else seg(bx, by, t, R.h, t, Lrow);
  }
  traces.push({ x: bx, y: by, mode: "lines", line: { color: C.base, width: 1.5 }, hoverinfo: "skip", showlegend: false });
  const halo = playerEdges(ctx, Lrow, out, lo, hi, R);
  if (halo) traces.push(halo);

  // gradient paths of the selected loss L_t: edge width and colour by ‖∂L_t/∂h_k‖ (and ‖∂L_t/∂c_k‖ on
  // the rail), on one absolute log scale for every (t, k), so that a row which barely decays
  // (W_hh = 0.99) looks uniform, and cells compare by the same measure
  const t = sel.t;
  const P = pathNorms(resp, seq);
  const hN = names.h || "h";
  if (P && mask[t]) {
    const rowH = P.h[t], rowC = P.c ? P.c[t] : null;
    const ranges = [logRange(resp, P.h, sel.b ?? 0, P.kind), P.c ? logRange(resp, P.c, sel.b ?? 0, "dh") : null].filter(Boolean);
    const llo = ranges.length ? Math.min(...ranges.map((r) => r[0])) : 0;
    const lhi = ranges.length ? Math.max(...ranges.map((r) => r[1])) : 0;
    const span = Math.max(lhi - llo, 1e-9);
    const buckets = VIRIDIS.map(() => ({ x: [], y: [] }));
    const level = (v) => (v === null || v === undefined || !(v > 0) ? -1 : Math.max(0, Math.min(4, Math.floor(((Math.log10(v) - llo) / span) * 4.999))));
    const put = (v, x0, y0, x1, y1) => { const b = level(v); if (b >= 0) seg(buckets[b].x, buckets[b].y, x0, y0, x1, y1); };
    // ‖δ‖: the edge h_k → h_{k+1} carries δ_{t,k+1} (0-based row[k]); ‖∂L/∂h‖: the edge into h_k and
    // the edge h_k → h_{k+1} have brought ∂L_t/∂h_k (row[k − 1]), h_t's own at the top
    const at = P.kind === "dh" ? (s) => (s >= 1 ? rowH[s - 1] : null) : (s) => rowH[s];
    for (let k = Math.max(0, lo - 1); k <= Math.min(t, hi - 1); k++) {
      put(at(k), k, R.h, k + 1, R.h);  // h_k → h_{k+1}
      put(rowH[k], k + 1, R.x, k + 1, R.h);  // into step k+1's copy
      if (lstm && rowC) {
        put(k >= 1 ? rowC[k - 1] : null, k - CX, R.c, k + 1 - CX, R.c);  // the rail: ε^c_{t,k}
        // (the edge c_{k+1} → h_{k+1} stays grey: the rail's colour is what the eye should follow)
      }
    }
    if (t + 1 <= hi) {
      const top = rowH[t];
      if (out) { put(top, t + 1, R.h, t + 1, R.y); put(top, t + 1, R.y, t + 1, R.L); } else put(top, t + 1, R.h, t + 1, Lrow);
    }
    buckets.forEach((bk, i) => {
      if (bk.x.length) traces.push({ x: bk.x, y: bk.y, mode: "lines", line: { color: VIRIDIS[i], width: 2 + i * 1.6 }, hoverinfo: "skip", showlegend: false });
    });
    // hover points on the path's edges: the norms they carry
    const ks = [];
    for (let k = Math.max(0, lo - 1); k <= Math.min(t, hi - 1); k++) ks.push(k);
    const dAt = (k) => (P.delta ? `‖δ<sub>${t + 1},${k + 1}</sub>‖ = ${fmt(P.delta[t][k])}` : "");
    const hText = (k) => (P.kind === "dh"
      ? [k >= 1 ? tr("graph.dh", { t: `<sub>${t + 1}</sub>`, h: hN, k: `<sub>${k}</sub>`, v: fmt(rowH[k - 1]) }) : "", dAt(k)].filter(Boolean).join("<br>")
      : dAt(k));
    traces.push({
      x: ks.map((k) => k + 0.5), y: ks.map(() => R.h), mode: "markers",
      marker: { size: 14, color: "rgba(0,0,0,0)" }, showlegend: false,
      hovertemplate: ks.map((k) => `${hText(k) || "—"}<extra></extra>`),
      customdata: ks.map((k) => ["k", k]),
    });
    if (lstm && rowC) {
      const cs = ks.filter((k) => k >= 1);
      traces.push({
        x: cs.map((k) => k + 0.5 - CX), y: cs.map(() => R.c), mode: "markers", marker: { size: 14, color: "rgba(0,0,0,0)" }, showlegend: false,
        hovertemplate: cs.map((k) => `${tr("graph.dc", { t: `<sub>${t + 1}</sub>`, k: `<sub>${k}</sub>`, v: fmt(rowC[k - 1]) })}<extra></extra>`),
        customdata: cs.map((k) => ["k", Math.max(0, k - 1)]),
      });
    }
  }
  // what flows into z_k and out of h_k
  const k = sel.k;
  const ix = [], iy = [], ox = [], oy = [];
  seg(ix, iy, k + 1, R.x, k + 1, R.h);
  seg(ix, iy, k, R.h, k + 1, R.h);
  if (lstm) seg(ix, iy, k - CX, R.c, k + 1 - CX, R.c);
  if (k + 1 < T) seg(ox, oy, k + 1, R.h, k + 2, R.h);
  if (lstm && k + 1 < T) seg(ox, oy, k + 1 - CX, R.c, k + 2 - CX, R.c);
  if (out) seg(ox, oy, k + 1, R.h, k + 1, R.y); else seg(ox, oy, k + 1, R.h, k + 1, Lrow);
  traces.push({ x: ix, y: iy, mode: "lines", line: { color: C.in, width: 2, dash: "dot" }, hoverinfo: "skip", showlegend: false });
  traces.push({ x: ox, y: oy, mode: "lines", line: { color: C.out, width: 2, dash: "dot" }, hoverinfo: "skip", showlegend: false });

  // nodes
  const ncols = hi - lo + 1;
  const labels = ncols <= 16;
  // many columns: label the first, the selected, every d-th and the last column, d such that
  // about 25 labels at most share the width (every 5th of the window's 40 steps)
  const d = [5, 10, 25].find((n) => ncols / n <= 25) || 50;
  const shownAt = (s) => labels || s === lo - 1 || s === lo || s === hi || s % d === 0 || s === t + 1 || s === k + 1;
  const h = seq(resp.forward.h);
  const vec = (v) => (v ? `[${v.slice(0, 4).map((x) => fmt(x, 3)).join(", ")}${v.length > 4 ? ", …" : ""}]` : "");
  const node = (name, row, color, xs, text, hover, custom, extra = {}) => traces.push({
    name, x: xs, y: xs.map(() => row), mode: "markers+text", text: labels ? text : text.map((s, i) => (shownAt(xs[i]) ? s : "")),
    textposition: labels ? "middle center" : "bottom center",
    textfont: { color: labels ? "#fff" : "#1d232b", size: labels ? 11 : 9 }, marker: { size: labels ? 26 : 10, color, line: { width: 0 } },
    hovertemplate: hover.map((s) => `${s}<extra></extra>`), customdata: custom, showlegend: false, ...extra,
  });
  const steps = Array.from({ length: ncols }, (_, i) => lo + i);
  const x = seq(ctx.req.inputs);
  node(tr("legend.x"), R.x, C.x, steps, steps.map((s) => `x${s}`), steps.map((s) => `x<sub>${s}</sub> = ${vec(x?.[s - 1])}`), steps.map((s) => ["k", s - 1]));
  // a gated cell's h_k names its gates at step k, with their values
  const gates = resp.forward.gates ? Object.entries(resp.forward.gates).map(([g, v]) => [g, seq(v)]) : [];
  const gateWords = gates.length ? gates.map(([g]) => g).join("") : "";
  const gateHover = (s) => (s >= 1 && gates.length
    ? "<br>" + tr("graph.gates", { k: s, g: "" }) + gates.map(([g, v]) => `<br>${tr(`gate.${gateWords}.${g}`)} = ${vec(v[s - 1])}`).join("")
    : "");
  const hs = [lo - 1, ...steps];
  node(tr("legend.h"), R.h, C.h, hs, hs.map((s) => `${hN}${s}`),
    hs.map((s) => `${hN}<sub>${s}</sub> = ${s === 0 ? vec(ctx.h0) : vec(h[s - 1])}${gateHover(s)}`), hs.map((s) => ["k", Math.max(0, s - 1)]));
  if (lstm) {
    const c = seq(resp.forward.c);
    node(tr("legend.c"), R.c, C.c, hs.map((s) => s - CX), hs.map((s) => `c${s}`),
      hs.map((s) => `c<sub>${s}</sub> = ${s === 0 ? vec(ctx.c0) : vec(c[s - 1])}`), hs.map((s) => ["k", Math.max(0, s - 1)]),
      { marker: { size: labels ? 22 : 8, color: C.c, line: { width: 0 } } });
  }
  if (out) {
    const yh = seq(resp.forward.y_hat);
    node(tr("legend.y"), R.y, C.y, steps, steps.map((s) => `ŷ${s}`), steps.map((s) => `ŷ<sub>${s}</sub> = ${vec(yh[s - 1])}`), steps.map((s) => ["t", s - 1]));
  }
  const lt = seq(resp.forward.loss_t);
  node(tr("legend.L"), Lrow, steps.map((s) => (mask[s - 1] ? C.L : C.off)), steps, steps.map((s) => `L${s}`),
    steps.map((s) => (mask[s - 1] ? `L<sub>${s}</sub> = ${fmt(lt[s - 1])}` : tr("legend.L.off"))), steps.map((s) => ["t", s - 1]),
    { meta: "loss" });
  // selection rings (the loss only when it is in the window)
  const ring = inWin(t + 1) ? [[t + 1, Lrow, "#111"], [k + 1, R.h, C.in]] : [[k + 1, R.h, C.in]];
  traces.push({
    x: ring.map((r) => r[0]), y: ring.map((r) => r[1]), mode: "markers", hoverinfo: "skip", showlegend: false,
    marker: { size: labels ? 36 : 20, color: "rgba(0,0,0,0)", line: { width: 3, color: ring.map((r) => r[2]) } },
  });

  // weight names on the edges of the selected step k (every step's when T is small)
  const every = ncols <= 6;
  const Wx = names.W_xh ?? names.W_ih;
  for (const s of every ? steps : [k + 1]) {
    annotations.push(label(s, (R.x + R.h) / 2, subName(Wx)));
    annotations.push(label(s - 0.5, R.h - 0.22, subName(names.W_hh), 0));
    if (out) annotations.push(label(s, (R.h + R.y) / 2 + (lstm ? 0.3 : 0), subName(names.W_hy)));
    if (lstm) annotations.push(label(s - 0.5 - CX, R.c + 0.2, "⊙f", 0));
  }
  // a window of a longer sequence: say what lies beyond its edges
  const edge = (x, text, anchor) => annotations.push({ x, y: Lrow, text, showarrow: false, xanchor: anchor,
    font: { size: 11, color: "#5b6573" } });
  if (t + 1 > hi) edge(hi + 0.55, `→ L${t + 1}`, "left");
  if (lo > 1) edge(lo - 1 - 0.55, "…", "right");
  const layout = {
    margin: { l: 10, r: lo > 1 || t + 1 > hi ? 36 : 10, t: 6, b: 6 }, dragmode: false, hovermode: "closest",
    xaxis: { visible: false, range: [lo - 1 - 0.6 - (lstm ? CX : 0), hi + 0.6], fixedrange: true },
    yaxis: { visible: false, range: [-0.5, Lrow + 0.5], fixedrange: true },
    annotations, plot_bgcolor: "#fff", paper_bgcolor: "#fff", showlegend: false,
  };
  return { data: traces, layout };
}

function label(x, y, text, xshift = 14) {
  return { x, y, text, showarrow: false, font: { size: 11, color: "#5b6573" }, bgcolor: "rgba(255,255,255,0.85)", xshift };
}
