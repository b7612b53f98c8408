// Heatmaps and the vanishing/exploding plot (figures for Plotly.react).

import { tr } from "./i18n.js";
import { fmt, subName } from "./util.js";

// colour-blind-safe scales: viridis (sequential) and RdBu reversed (diverging, centred on 0)
const DIVERGING = [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]];
const OVERFLOW = "#9aa1ab";
// δ-norm cells with no colour on the scale: dropped by truncation; exactly 0 (log scale)
const TRUNCATED = "#e4ddd0", ZERO = "#e6ebf2";
const base = (extra = {}) => ({
  margin: { l: 48, r: 10, t: 8, b: 40 }, font: { size: 11 }, plot_bgcolor: "#fff", paper_bgcolor: "#fff", ...extra,
});
const steps = (n) => Array.from({ length: n }, (_, i) => i + 1);
/** Tick spacing for an axis of n steps: every step up to 20, then 5, 10, 25, 50, … */
const tick = (n) => (n <= 20 ? 1 : [5, 10, 25, 50, 100, 250].find((d) => n / d <= 12) || 500);
/** The largest |v| of the finite numbers in z (0 when there are none). */
const absMax = (z) => z.flat(Infinity).reduce((a, v) => (v !== null && Math.abs(v) > a ? Math.abs(v) : a), 0);
/** A diverging colour range centred on 0: ±max|v|, and no colour bar when every number is 0
 *  (a bar from −1e−300 to 1e−300 would say nothing true). */
const centred = (M) => ({ zmin: -(M || 1), zmax: M || 1, showscale: M > 0 });
/** A colour bar's numbers as 4×10⁻⁴, not Plotly's SI "400μ" (a gradient has no unit). */
const COLORBAR = { thickness: 10, exponentformat: "power" };
const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (n) => String(n).split("").map((d) => SUBS[d]).join("");
/** The rows of a gated cell's stacked array named by gate and unit, "f₂" (the editor's grids
 *  name them so), or null for an array that is not stacked (the output layer; ungated cells). */
function gateRows(resp, canon = null) {
  const gates = resp.forward?.gates ? Object.keys(resp.forward.gates) : [];
  if (!gates.length || canon === "W_hy" || canon === "b_y") return null;
  const out = [];
  for (const g of gates) for (let u = 1; u <= resp.shapes.m; u++) out.push(`${g}${sub(u)}`);
  return out;
}
/** Small arrays (a 1×1 weight of note 003, a 4×4 gradient) print their numbers in the cells. */
const SMALL_CELLS = 48;
/** A cell narrower than this many pixels cannot hold "−0.0263" in 10 px type: its number stays
 *  in the hover (printed anyway, neighbours' numbers run into each other). */
const NUMBER_PX = 40;
/** ... and a cell lower than this many pixels cannot hold a line of it. */
const NUMBER_ROW_PX = 14;
const numbersIn = (rows, cols, cellPx = Infinity, cellRowPx = Infinity) =>
  (rows * cols <= SMALL_CELLS && cellPx >= NUMBER_PX && cellRowPx >= NUMBER_ROW_PX
    ? { texttemplate: "%{z:.3g}", textfont: { size: 10 } } : {});

/** A one-colour layer over the cells where on(i, j) holds (rows × cols), null elsewhere; null
 *  when no cell is on. hover: a hovertemplate for those cells (label(i, j) fills %{text} when
 *  given), or no hover at all. Cells with no number to colour still say what they are. */
function maskLayer(rows, cols, x, y, color, on, hover = null, label = null) {
  const z = [], text = label ? [] : undefined;
  let any = false;
  for (let i = 0; i < rows; i++) {
    const zr = [], tx = [];
    for (let j = 0; j < cols; j++) {
      const yes = on(i, j);
      any ||= yes;
      zr.push(yes ? 1 : null);
      if (label) tx.push(yes ? label(i, j) : "");
    }
    z.push(zr);
    if (label) text.push(tx);
  }
  if (!any) return null;
  return { type: "heatmap", z, text, x, y, colorscale: [[0, color], [1, color]], showscale: false, hoverongaps: false,
    ...(hover ? { hovertemplate: hover } : { hoverinfo: "skip" }) };
}

/** Grey cells where a number overflowed (null where a value should be, in the cells inLower
 *  allows); no hover unless hover is given. */
function overflowLayer(z, x, y, inLower = () => true, hover = null) {
  return maskLayer(z.length, z[0]?.length ?? 0, x, y, OVERFLOW, (i, j) => z[i][j] === null && inLower(i, j), hover);
}

/** A layer over the lower triangle's cells (k ≤ t) where which(t, k) holds, hover text from label(t, k). */
function flatLayer(T, color, which, label) {
  return maskLayer(T, T, steps(T), steps(T), color, (t, k) => k <= t && which(t, k), "%{text}<extra></extra>", label);
}

/** [min, max] of log₁₀‖δₜ,ₖ‖ over the lower triangle (finite, > 0, kept by truncation): the
 *  colour range of the ‖δ‖ heatmap and of the graph's edges, so both say the same thing (one
 *  scale for every (t, k), not one per row); null when there is no such number. kind "delta":
 *  truncation K keeps δ_{t,k} for t − k < K; "dh" (‖∂L_t/∂h_k‖, ‖∂L_t/∂c_k‖): for t − k ≤ K, since
 *  h_k feeds copy k + 1 (the API's ε rows reach t − k = K), so that row is on the scale too. */
const logRanges = new WeakMap();  // by the T×T array itself (‖δ‖, ‖∂L/∂h‖, ‖∂L/∂c‖ of one sequence)
export function logRange(resp, dn, b = 0, kind = "delta") {
  const c = logRanges.get(dn);
  if (c && c.kind === kind) return c.range;
  const K = resp.truncation ?? Infinity;
  const reach = kind === "dh" ? K : K - 1;  // the largest t − k kept
  let lo = Infinity, hi = -Infinity;
  for (let t = 0; t < dn.length; t++) for (let k = Math.max(0, t - reach); k <= t; k++) {
    const v = dn[t][k];
    if (v !== null && v > 0) { const l = Math.log10(v); if (l < lo) lo = l; if (l > hi) hi = l; }
  }
  const range = lo <= hi ? [lo, hi] : null;
  logRanges.set(dn, { range, kind });
  return range;
}

// the ‖δ‖ heatmap's traces depend on the response, the sequence, the scale and the language,
// not on the selection (only its frame moves): built once per response and reused, so a click
// or an arrow key costs a moved rectangle (T = 1024 with truncation: ~1.3 s to build), and
// Plotly.react sees the same arrays and redraws nothing else
const deltaNormTraces = new WeakMap();

export function deltaNormFigure(ctx) {
  const { resp, sel, view } = ctx;
  const T = resp.shapes.T;
  const key = `${sel.b ?? 0}|${view.log}|${ctx.lang}|${measureOf(ctx).kind}`;
  const cached = deltaNormTraces.get(resp);
  let data = cached?.key === key ? cached.data : null;
  if (!data) {
    data = deltaNormData(ctx);
    deltaNormTraces.set(resp, { key, data });
  }
  const layout = base({
    xaxis: { title: { text: tr("axis.step.k") }, dtick: tick(T), constrain: "domain" },
    yaxis: { title: { text: tr("axis.step.t") }, autorange: "reversed", dtick: tick(T) },
  });
  return { data, layout };
}

/** The frame around the selection in a heatmap, in data coordinates (x: null = the whole
 *  width): drawn by the page as a box over the plot (main.js placeFrame), so a selection that
 *  moves only the frame costs no Plotly redraw (a shape in the layout re-renders the whole
 *  heatmap: 50–400 ms at T = 256). */
export const FRAMES = {
  "heat-delta": (sel) => ({ x0: sel.k + 0.5, x1: sel.k + 1.5, y0: sel.t + 0.5, y1: sel.t + 1.5, cls: "frame-cell" }),
  "heat-deltarow": (sel) => ({ x0: null, x1: null, y0: sel.k + 0.5, y1: sel.k + 1.5, cls: "frame-row" }),
};

/** What the ‖·‖ heatmap shows: ‖δ_{t,k}‖ (delta_norm), or ‖∂L_t/∂h_k‖ (delta_h_norm, the measure
 *  every cell has) when the view asks for it and the response has it. */
export function measureOf(ctx) {
  const { resp, seq, view } = ctx;
  if (view.measure === "dh" && resp.delta_h_norm) return { kind: "dh", dn: seq(resp.delta_h_norm) };
  return { kind: "delta", dn: resp.delta_norm ? seq(resp.delta_norm) : null };
}

function deltaNormData(ctx) {
  const { resp, view } = ctx;
  const T = resp.shapes.T;
  const { kind, dn } = measureOf(ctx);
  const name = (t, k) => (kind === "dh" ? `‖∂L<sub>${t}</sub>/∂h<sub>${k}</sub>‖` : `‖δ<sub>${t},${k}</sub>‖`);
  const K = resp.truncation ?? Infinity;
  // truncation keeps δ_{t,k} for t − k < K only (and ∂L_t/∂h_k for t − k ≤ K: h_k feeds copy k + 1)
  const dropped = (t, k) => (kind === "dh" ? t - k > K : t - k >= K);
  const at = (t, k) => `t = ${t + 1}, k = ${k + 1}<br>`;
  // a row without a loss is 0 by definition: its own colour on either scale, not the scale's
  // bottom colour (which on the linear scale reads as "tiny" beside small δ)
  const noLoss = (t) => !resp.loss_steps[t];
  const z = dn.map((r, t) => r.map((v, k) => (
    dropped(t, k) || v === null || (!view.log && noLoss(t)) ? null : !view.log ? v : v > 0 ? Math.log10(v) : null)));
  const text = dn.map((r, t) => r.map((v, k) => (k > t ? "" : `${at(t, k)}${name(t + 1, k + 1)} = ${fmt(v)}`)));
  const range = view.log ? logRange(resp, dn, ctx.sel.b ?? 0, kind) : null;
  const data = [{
    type: "heatmap", z, x: steps(T), y: steps(T), text, hovertemplate: "%{text}<extra></extra>",
    ...(range && range[1] > range[0] ? { zmin: range[0], zmax: range[1] } : {}),
    colorscale: "Viridis", colorbar: { title: { text: view.log ? `log₁₀${tr(`measure.cb.${kind}`)}` : tr(`measure.cb.${kind}`), side: "right" }, thickness: 10, exponentformat: "power" },
    hoverongaps: false,
  }];
  // cells with no colour of their own: dropped by truncation, or (log scale) exactly 0
  const cut = flatLayer(T, TRUNCATED, (t, k) => dropped(t, k), (t, k) => at(t, k) + tr("hover.truncated", { d: t - k, K }));
  if (cut) data.push(cut);
  const zero = flatLayer(T, ZERO, (t, k) => !dropped(t, k) && (view.log ? dn[t][k] === 0 : noLoss(t)),
    (t, k) => at(t, k) + tr(resp.loss_steps[t] ? "hover.zero" : "hover.zero.noloss", { t: t + 1 }));
  if (zero) data.push(zero);
  const grey = overflowLayer(dn, steps(T), steps(T), (t, k) => k <= t);
  if (grey) data.push(grey);
  return data;
}

export function deltaRowFigure(ctx) {
  const { resp, sel, seq } = ctx;
  const t = sel.t;
  // row t (the API's delta_row, or the whole table's row when the response has it)
  const rows = resp.delta ? seq(resp.delta)[t] : ctx.deltaRow ? ctx.deltaRow(t) : null;
  if (rows === undefined) return null;  // on its way: the plot keeps the last row until it comes
  if (!rows) {
    return { data: [], layout: base({ xaxis: { visible: false }, yaxis: { visible: false },
      annotations: [{ text: tr("banner.norms"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 12 } }] }) };
  }
  // a gated cell's δ_{t,k} = ∂L_t/∂a_k has G·m entries, one block per gate: named "f₂" as in the editor
  const gated = gateRows(resp);
  const x = gated ?? steps(resp.shapes.m);
  const M = absMax(rows);
  const data = [{
    type: "heatmap", z: rows, x, y: steps(t + 1), ...centred(M), colorscale: DIVERGING, ...numbersIn(t + 1, x.length),
    colorbar: { ...COLORBAR, title: { text: "δ" } },
    hovertemplate: `δ<sub>${t + 1},%{y}</sub>[%{x}] = %{z:.10g}<extra></extra>`,
  }];
  const grey = overflowLayer(rows, x, steps(t + 1));
  if (grey) data.push(grey);
  return {
    data, layout: base({
      xaxis: gated ? { title: { text: tr("axis.gate.unit") }, type: "category", tickfont: { size: 9 } }
        : { title: { text: tr("axis.unit") }, dtick: tick(x.length) },
      yaxis: { title: { text: `${tr("axis.step.k")} (t = ${t + 1})` }, autorange: "reversed", dtick: tick(t) },
    }),
  };
}

export function hiddenFigure(ctx) {
  const { resp, seq, names } = ctx;
  const h = seq(resp.forward.h);
  const M = absMax(h);
  const hn = names.h || "h";
  const data = [{
    type: "heatmap", z: h, x: steps(resp.shapes.m), y: steps(resp.shapes.T), ...centred(M), colorscale: DIVERGING, ...numbersIn(resp.shapes.T, resp.shapes.m),
    colorbar: COLORBAR, hovertemplate: `${hn}<sub>%{y}</sub>[%{x}] = %{z:.10g}<extra></extra>`,
  }];
  const grey = overflowLayer(h, steps(resp.shapes.m), steps(resp.shapes.T));
  if (grey) data.push(grey);
  return { data, layout: base({
    xaxis: { title: { text: tr("axis.unit") }, dtick: tick(resp.shapes.m) },
    yaxis: { title: { text: "t" }, autorange: "reversed", dtick: tick(resp.shapes.T) },
  }) };
}

/** The parameters of the response in display order: [{canon, name, value}] (PyTorch's biases: both). */
export function paramList(resp, field = "grads") {
  const out = [];
  // the response's names, in the cell's order (W_xh, W_hh, b_h or W_ih, W_hh, b_ih, b_hh; W_hy, b_y)
  for (const c of Object.keys(resp.names).filter((k) => k !== "h" && k !== "c")) {
    const shown = resp.names[c];
    if (!shown) continue;
    for (const name of shown.split(" + ")) if (resp[field]?.[name] !== undefined) out.push({ canon: c, name, value: resp[field][name] });
  }
  return out;
}

/** The factor clipping by norm multiplied every gradient by (the API's clip.scale, min(1, c/‖g‖)),
 *  or null (clipping by value has no one factor). */
export function clipFactor(resp) {
  const c = resp.clip;
  return c && c.method === "norm" && Number.isFinite(c.scale) ? c.scale : null;
}

export function gradsFigure(ctx) {
  const { resp } = ctx;
  // with clipping on: each array before and after, side by side on one colour scale (each on its
  // own scale the two look identical, since clipping by norm only multiplies by a factor)
  const before = resp.clip && resp.grads_unclipped ? paramList(resp, "grads_unclipped") : null;
  const f = clipFactor(resp);
  const ps = [], after = [];
  for (const p of paramList(resp)) {
    const u = before?.find((q) => q.name === p.name);
    if (!u) { ps.push(p); continue; }
    const M = Math.max(absMax([u.value].flat(Infinity)), absMax([p.value].flat(Infinity)));
    ps.push({ ...u, shared: M });
    after.push({ ...p, shared: M });
  }
  // rows: the cell's arrays above, the output layer's (W_hy, b_y) below; with clipping, the
  // gradients before clipping above and after below (each row says which). A row's arrays are
  // as wide as their columns (a vector no narrower than a fifth of the row's widest), so a 4×4
  // gradient's cells are as wide as a 4×2's instead of squeezed into an equal share of one row
  const OUTPUT = new Set(["W_hy", "b_y"]);
  const clipped = after.length > 0;
  const groups = clipped ? [ps.slice(), after]
    : [ps.filter((p) => !OUTPUT.has(p.canon)), ps.filter((p) => OUTPUT.has(p.canon))].filter((g) => g.length);
  const rowTitles = clipped ? [tr("grads.clip.before"), f === null ? tr("grads.clip.after.value") : tr("grads.clip.after", { f: fmt(f, 4) })] : [];
  ps.push(...after);
  const grids = ps.map((p) => (Array.isArray(p.value[0]) ? p.value : p.value.map((v) => [v])));
  const gap = 0.05, vgap = groups.length > 1 ? 0.16 : 0;
  // (layout sizes from the arrays' shapes, not the response's numbers)
  const tallest = groups.map((g) => Math.max(...g.map((p) => grids[ps.indexOf(p)].length)));
  const heights = tallest.map((r) => Math.max(r, Math.max(...tallest) / 3));
  let sumH = 0;
  for (const h of heights) sumH += h;
  const plotPx = (ctx.width ?? 420) - 40;  // the element's size less the margins
  const plotRowPx = (ctx.height ?? 300) - 58;
  const data = [], layout = base({ margin: { l: 30, r: 10, t: clipped ? 50 : 34, b: 24 }, annotations: [] });
  let top = 1;
  groups.forEach((g, gi) => {
    const rowH = (1 - vgap * (groups.length - 1)) * heights[gi] / sumH;
    const widest = Math.max(...g.map((p) => grids[ps.indexOf(p)][0].length));
    const share = g.map((p) => Math.max(grids[ps.indexOf(p)][0].length, widest / 5));
    let total = 0;
    for (const c of share) total += c;
    let x0 = 0;
    g.forEach((p, j) => {
      const i = ps.indexOf(p), z = grids[i];
      const w = (1 - gap * (g.length - 1)) * share[j] / total;
      const M = p.shared ?? absMax(z);
      const ax = i === 0 ? "" : String(i + 1);
      const cols = z[0].length, rows = z.length;
      data.push({
        type: "heatmap", z, xaxis: `x${ax}`, yaxis: `y${ax}`, ...centred(M), colorscale: DIVERGING, showscale: false,
        ...numbersIn(rows, cols, plotPx * w / cols, plotRowPx * rowH / rows),
        x: steps(cols), y: steps(rows), hoverongaps: false,
        hovertemplate: `∂L/∂${p.name}[%{y},%{x}] = %{z:.10g}<br>max |·| = ${fmt(M, 4)}<extra></extra>`,
      });
      // overflowed entries, as in every heatmap, with a hover of their own (the finite cells keep their numbers)
      const grey = overflowLayer(z, steps(cols), steps(rows), undefined, `∂L/∂${p.name}[%{y},%{x}]: ${tr("hover.overflow")}<extra></extra>`);
      if (grey) data.push({ ...grey, xaxis: `x${ax}`, yaxis: `y${ax}` });
      // the ranges of the array's own shape: a panel whose every entry overflowed keeps its frame
      layout[`xaxis${ax}`] = { domain: [x0, x0 + w], anchor: `y${ax}`, dtick: tick(cols), tickfont: { size: 9 }, range: [0.5, cols + 0.5] };
      const gated = gateRows(resp, p.canon);  // a gated cell's stacked rows: "f₂", as in the editor
      layout[`yaxis${ax}`] = { domain: [top - rowH, top], anchor: `x${ax}`, dtick: tick(rows), tickfont: { size: 9 }, range: [rows + 0.5, 0.5],
        ...(gated ? { tickmode: "array", tickvals: steps(rows), ticktext: gated } : {}) };
      const long = p.name.length > 6;
      // (the row after clipping has the columns of the row before: its names once, above)
      if (!(clipped && gi > 0)) {
        layout.annotations.push({ text: long ? `∂L/∂<br>${p.name}` : `∂L/∂${subName(p.name)}`,
          xref: "paper", yref: "paper", x: x0 + w / 2, y: top, yanchor: "bottom", showarrow: false, font: { size: long ? 9 : 11 } });
      }
      x0 += w + gap;
    });
    if (rowTitles[gi]) {  // above the row (above its names, in the first)
      layout.annotations.push({ text: `<b>${rowTitles[gi]}</b>`, xref: "paper", yref: "paper", x: 0, y: top, xanchor: "left",
        yanchor: "bottom", yshift: gi === 0 ? 16 : 0, showarrow: false, font: { size: 10 } });
    }
    top -= rowH + vgap;
  });
  return { data, layout };
}

export function contribFigure(ctx) {
  const { resp, view } = ctx;
  const byCopy = view.contribBy === "copy";
  // the terms as the API sends them: per copy k (grads_per_copy) or per loss step t (grads_per_step)
  const terms = byCopy ? resp.grads_per_copy : resp.grads_per_step;
  if (!terms) {
    return { data: [], layout: base({ xaxis: { visible: false }, yaxis: { visible: false },
      annotations: [{ text: tr("banner.norms"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }] }) };
  }
  const ps = paramList(resp);
  const p = ps.find((q) => q.canon === view.contribParam) || ps[0];
  const value = terms[p.name];
  const T = resp.shapes.T;
  const labels = [];
  const rowName = gateRows(resp, p.canon);  // a gated cell's rows by gate: "f₂,1", not "6,1"
  const rowOf = (i) => (rowName ? rowName[i] : String(i + 1));
  const z = value.map((g, t) => {
    const flat = [];
    if (Array.isArray(g[0])) g.forEach((row, i) => row.forEach((v, j) => { flat.push(v); if (t === 0) labels.push(`${rowOf(i)},${j + 1}`); }));
    else g.forEach((v, i) => { flat.push(v); if (t === 0) labels.push(rowOf(i)); });
    return flat;
  });
  const M = absMax(z);
  const data = [{
    type: "heatmap", z, x: labels, y: steps(T), ...centred(M), colorscale: DIVERGING, colorbar: COLORBAR,
    hovertemplate: (byCopy ? `${tr("hover.copy")} k = %{y}: ${p.name}[%{x}]` : `∂L<sub>%{y}</sub>/∂${p.name}[%{x}]`) + " = %{z:.10g}<extra></extra>",
  }];
  return { data, layout: base({
    xaxis: { title: { text: `${tr("axis.entry")} (${p.name})` }, type: "category", tickfont: { size: 9 }, nticks: 20 },
    yaxis: { title: { text: byCopy ? tr("axis.step.k") : tr("axis.step.t") }, autorange: "reversed", dtick: tick(T) },
  }) };
}

/** The bound max|f'(z_k)| Π_{τ=k+1}^{t} ‖J_τ‖ ‖ε_{t,t}‖ on ‖δ_{t,k}‖ for k = 0…t: row t of the
 *  response's diagnostics.delta_bound (in either detail), or null when it was not sent. */
function deltaBoundRow(ctx, t) {
  const given = ctx.seq(ctx.resp.diagnostics?.delta_bound);
  return Array.isArray(given) ? given[t].slice(0, t + 1) : null;
}

/** Up to this many pairs (t, k) the vanishing plot draws each as a point; beyond (T > 48),
 *  their density: one SVG point each would cost a second or more per redraw at T = 256. */
const CLOUD_POINTS = 1200;
const DENSITY_BINS = 40;
// the cloud of every (t, k) depends on the response, the sequence and the language, not on the
// selection: built once, and the same arrays handed to Plotly.react
const vanishClouds = new WeakMap();

function vanishCloud(ctx) {
  const { resp, seq } = ctx;
  const key = `${ctx.sel.b ?? 0}|${ctx.lang}`;
  const cached = vanishClouds.get(resp);
  if (cached?.key === key) return cached;
  const dn = seq(resp.delta_norm);
  const T = resp.shapes.T;
  const ax = [], ay = [];
  for (let t = 0; t < T; t++) for (let k = 0; k <= t; k++) {
    const v = dn[t][k];
    if (v !== null && v > 0) { ax.push(t - k); ay.push(v); }
  }
  let trace;
  if (ax.length <= CLOUD_POINTS) {
    const at = ax.map((d, i) => `t − k = ${d}: ${fmt(ay[i])}`);
    trace = { x: ax, y: ay, text: at, mode: "markers", name: tr("vanish.all"), marker: { size: 5, color: "#b8c0cc" }, hovertemplate: "%{text}<extra></extra>" };
  } else {
    // a 2-D histogram on the log axis: columns t − k, rows of equal width in log₁₀‖δ‖
    let lo = Infinity, hi = -Infinity;
    const ly = ay.map((v) => { const l = Math.log10(v); lo = Math.min(lo, l); hi = Math.max(hi, l); return l; });
    const w = hi > lo ? (hi - lo) / DENSITY_BINS : 1;
    const z = Array.from({ length: DENSITY_BINS }, () => new Array(T).fill(null));
    ly.forEach((l, i) => { const r = Math.min(DENSITY_BINS - 1, Math.floor((l - lo) / w)); z[r][ax[i]] = (z[r][ax[i]] || 0) + 1; });
    const y = Array.from({ length: DENSITY_BINS }, (_, r) => 10 ** (lo + (r + 0.5) * w));
    trace = { type: "heatmap", x: Array.from({ length: T }, (_, d) => d), y, z, name: tr("vanish.all"), showscale: false,
      colorscale: [[0, "#dfe3e9"], [1, "#6f7b8a"]], hoverongaps: false,
      hovertemplate: `t − k = %{x}, ‖δ‖ ≈ %{y:.2g}: %{z} ${tr("vanish.pairs")}<extra></extra>` };
  }
  const out = { key, trace, n: ax.length, density: trace.type === "heatmap" };
  vanishClouds.set(resp, out);
  return out;
}

/** ‖δ_{t,k}‖ against t − k on a log axis, the selected row, and its bound from ‖J_k‖. */
export function vanishFigure(ctx) {
  const { resp, sel, seq } = ctx;
  const dn = seq(resp.delta_norm);
  const T = resp.shapes.T;
  const cloud = vanishCloud(ctx);
  const t = sel.t;
  const boundRow = deltaBoundRow(ctx, t);
  const sx = [], sy = [], bx = [], byv = [];
  for (let k = t; k >= 0; k--) {
    const v = dn[t][k];
    if (v !== null && v > 0) { sx.push(t - k); sy.push(v); }
    const b = boundRow ? boundRow[k] : null;
    if (b !== null && b > 0) { bx.push(t - k); byv.push(b); }
  }
  const data = [
    cloud.trace,
    // the density has no legend entry of its own: a marker stands for it
    ...(cloud.density ? [{ x: [null], y: [null], mode: "markers", name: tr("vanish.all.density"), marker: { size: 8, symbol: "square", color: "#9aa4b1" }, hoverinfo: "skip" }] : []),
    { x: bx, y: byv, mode: "lines", name: tr(!boundRow ? "vanish.bound.none" : resp.diagnostics?.gamma === null ? "vanish.bound.gated" : "vanish.bound"), line: { color: "#f28e2b", dash: "dash", width: 2 }, hovertemplate: `${tr("hover.bound")} %{y:.4g}<extra></extra>` },
    { x: sx, y: sy, mode: "lines+markers", name: `${tr("vanish.selected")} (t = ${t + 1})`, line: { color: "#1f4e79", width: 2 }, marker: { size: 7 },
      hovertemplate: `t − k = %{x}: ‖δ<sub>${t + 1},k</sub>‖ = %{y:.4g}<extra></extra>` },
  ];
  const layout = base({
    margin: { l: 56, r: 10, t: 8, b: 40 },
    xaxis: { title: { text: tr("axis.distance") }, dtick: tick(T), rangemode: "tozero" },
    yaxis: { title: { text: tr("axis.norm") }, type: "log", exponentformat: "power", nticks: 6 },
    legend: { orientation: "h", y: -0.25, font: { size: 10 } },
  });
  if (!cloud.n && !byv.length) {  // nothing above 0: say so instead of empty log axes
    layout.yaxis.visible = false;
    layout.annotations = [{ text: tr("vanish.empty"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.6,
      font: { size: 12 } }];
  }
  return { data, layout };
}

/** A plain-language reading of the decay or growth along the last loss row: the API's
 *  ``vanish`` (the geometric-mean factor per step back, the factor over the span and the
 *  verdict, or why there is none), as a sentence with the remedies that apply. */
export function vanishReading(ctx) {
  const { resp, seq } = ctx;
  const v = seq(resp.vanish);
  if (!v) return "";
  const K = v.truncation;
  const truncNote = K !== null ? tr("vanish.reading.trunc", { K, Km1: K - 1 }) : "";
  // say why there is no trend: each of these is a lesson of its own, not "too few steps"
  const REASONS = {
    short: () => tr("vanish.reading.short"),
    // the forward pass itself overflowed: no clipping of the gradient can help there
    overflow_forward: () => tr("vanish.reading.overflow.forward", { n: v.overflowed }),
    overflow: () => tr("vanish.reading.overflow", { n: v.overflowed }),
    zero: () => tr("vanish.reading.zero", { n: v.zero }),
    truncation: () => tr("vanish.reading.shortK", { K: resp.truncation }),
    few: () => tr("vanish.reading.few"),
  };
  if (v.reason) return REASONS[v.reason]();
  const f = fmt(v.factor_per_step, 2), d = v.span, F = fmt(v.factor_over_span, 2);
  const span = tr("vanish.span", { d, F });
  // the verdict reads the whole span, not only the factor per step: ×0.81 a step is 0.15 over
  // 9 steps, which is vanishing for the first step's gradient
  if (v.verdict === "vanish") {
    return tr("vanish.reading.vanish", { f }) + span + (v.long ? tr("vanish.long", { d, F }) : "") + tr("vanish.remedies") + truncNote;
  }
  if (v.verdict === "explode") return tr("vanish.reading.explode", { f }) + span + tr(resp.clip ? "vanish.clip" : "vanish.noclip") + truncNote;
  return tr("vanish.reading.stable", { f }) + span + truncNote;
}
