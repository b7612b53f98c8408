// The gated cells' own views: each gate's activations over time (forward.gates) and, for the
// LSTM, the cell state c_t (forward.c), one band of m rows per gate; and the panel that sets
// BPTT beside RTRL (the API's "methods" field, times from Server-Timing). Every number is the
// response's own: the page computes none of them.

import { tr } from "./i18n.js";
import { fmt } from "./util.js";

const DIVERGING = [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]];
/** gates in [0, 1] (σ) and in [−1, 1] (tanh: the LSTM's g, the GRU's n) */
const TANH_GATES = new Set(["g", "n"]);
const steps = (n) => Array.from({ length: n }, (_, i) => i + 1);
const tick = (n) => (n <= 20 ? 1 : [5, 10, 25, 50, 100, 250].find((d) => n / d <= 12) || 500);

/** The bands the gates panel draws: [name, T×m values, kind] (kind: sigmoid, tanh or state). */
function bands(ctx) {
  const { resp, seq } = ctx;
  const g = resp.forward?.gates;
  if (!g) return [];
  const out = Object.entries(g).map(([name, v]) => [name, seq(v), TANH_GATES.has(name) ? "tanh" : "sigmoid"]);
  if (resp.forward.c) out.push(["c", seq(resp.forward.c), "state"]);
  return out;
}

/** ±max|c| (1 when every number is 0 or overflowed). */
function absMax(z) {
  let M = 0;
  for (const row of z) for (const v of row) if (v !== null && Math.abs(v) > M) M = Math.abs(v);
  return M || 1;
}

export function gatesFigure(ctx) {
  const { resp } = ctx;
  const B = bands(ctx);
  const T = resp.shapes.T, m = resp.shapes.m;
  const words = Object.keys(resp.forward?.gates || {}).join("");
  const gap = 0.03;
  const h = (1 - gap * (B.length - 1)) / Math.max(1, B.length);
  const data = [], annotations = [];
  const layout = { margin: { l: 64, r: 10, t: 8, b: 40 }, font: { size: 11 }, plot_bgcolor: "#fff", paper_bgcolor: "#fff", annotations };
  const bars = new Set();  // one colour bar per kind of range
  B.forEach(([name, v, kind], i) => {
    const ax = i === 0 ? "" : String(i + 1);
    const top = 1 - i * (h + gap);
    const z = Array.from({ length: m }, (_, u) => v.map((row) => row[u]));  // units × steps
    const title = name === "c" ? tr("gate.c") : tr(`gate.${words}.${name}`);
    const range = kind === "sigmoid" ? { zmin: 0, zmax: 1, colorscale: "Viridis" }
      : kind === "tanh" ? { zmin: -1, zmax: 1, colorscale: DIVERGING }
        : { zmin: -absMax(z), zmax: absMax(z), colorscale: DIVERGING };
    const bar = !bars.has(kind);
    bars.add(kind);
    data.push({
      type: "heatmap", z, x: steps(T), y: steps(m), xaxis: `x${ax}`, yaxis: `y${ax}`, ...range, hoverongaps: false,
      showscale: bar, colorbar: { thickness: 8, len: h * 0.95, y: top - h / 2, yanchor: "middle", tickfont: { size: 9 } },
      hovertemplate: `${title}<br>t = %{x}, ${tr("axis.unit")} %{y}: %{z:.6g}<extra></extra>`,
    });
    layout[`yaxis${ax}`] = { domain: [Math.max(0, top - h), top], anchor: `x${ax}`, autorange: "reversed", dtick: tick(m), tickfont: { size: 9 } };
    layout[`xaxis${ax}`] = { anchor: `y${ax}`, matches: i === 0 ? undefined : "x", dtick: tick(T), showticklabels: i === B.length - 1,
      ...(i === B.length - 1 ? { title: { text: "t" } } : {}) };
    annotations.push({ text: `<b>${name}</b>`, xref: "paper", yref: "paper", x: 0, xanchor: "right", xshift: -34, y: top - h / 2,
      yanchor: "middle", showarrow: false, font: { size: 13 }, hovertext: title });
  });
  return { data, layout };
}

/** The gates panel's sentence for the cell at hand (empty for cells without gates). */
export function gatesHelp(resp) {
  if (!resp.forward?.gates) return "";
  return tr(resp.forward.c ? "gates.help.lstm" : "gates.help.gru");
}

/** "parse;dur=0.5, bptt;dur=0.05, rtrl;dur=0.2" → { parse: 0.5, bptt: 0.05, rtrl: 0.2 } (ms). */
export function serverTiming(header) {
  const out = {};
  for (const part of (header || "").split(",")) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** The BPTT-beside-RTRL panel: el, the API's methods report (or null), its Server-Timing, the
 *  refusal (an error text) or the state "computing". */
export function renderRtrl(el, { methods, timing, T, error, computing }) {
  el.replaceChildren();
  const p = (text, cls = "") => { const e = document.createElement("p"); e.textContent = text; if (cls) e.className = cls; el.append(e); return e; };
  if (computing) { p(tr("rtrl.computing"), "muted"); return; }
  if (error) { p(tr("rtrl.refused", { msg: error }), "bad"); return; }
  if (!methods) return;
  const d = methods.max_rel_diff;
  if (d === null || d === undefined) p(tr("rtrl.overflow"), "bad verdict");
  else p(tr(d < 1e-10 ? "rtrl.same" : "rtrl.differ", { d: fmt(d, 2) }), `${d < 1e-10 ? "ok" : "bad"} verdict`).dataset.maxRelDiff = String(d);
  const ms = serverTiming(timing);
  const t = document.createElement("table");
  const head = t.insertRow();
  for (const k of ["rtrl.col.route", "rtrl.col.time", "rtrl.col.floats", "rtrl.col.work", "rtrl.col.orderTime", "rtrl.col.orderMem"]) {
    const th = document.createElement("th"); th.textContent = tr(k); head.append(th);
  }
  for (const route of ["bptt", "rtrl"]) {
    const r = methods[route];
    const row = t.insertRow();
    row.dataset.route = route;
    row.insertCell().textContent = tr(`rtrl.${route}`);
    const cells = [ms[route] !== undefined ? `${fmt(ms[route], 3)} ms` : "—", fmt(r.floats), fmt(r.work), r.time, r.memory];
    cells.forEach((v, i) => { const c = row.insertCell(); c.textContent = v; if (i < 3) c.className = "num"; });
  }
  el.append(t);
  p(tr("rtrl.sizes", { S: methods.state_size, c: methods.state_size > 0 && methods.arrays.c0 !== undefined ? ", c" : "", P: methods.n_params, T }), "muted");
  const det = document.createElement("details");
  const sum = document.createElement("summary");
  sum.textContent = tr("rtrl.arrays");
  const list = document.createElement("table");
  for (const [name, v] of Object.entries(methods.arrays)) {
    const r = list.insertRow();
    r.insertCell().textContent = name;
    const c = r.insertCell(); c.textContent = fmt(v, 2); c.className = "num";
  }
  det.append(sum, list);
  el.append(det);
}
