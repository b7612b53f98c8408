// Lab 1: the same sequence through vanilla, residual, LSTM and GRU (POST /api/v1/compare-cells):
// ‖∂L_T/∂h_k‖ against T − k on one log axis, ‖∂L_t/∂h_k‖ heatmaps on one colour scale, the keep
// gate (LSTM f, GRU u) over time, and a sentence read off the numbers.

import { tr } from "../i18n.js";
import { fmt } from "../util.js";
import { postJSON } from "./stream.js";
import { COLORS, draw, layout, log10 } from "./plots.js";

const $ = (id) => document.getElementById(id);
export const CELLS = ["vanilla", "residual", "lstm", "gru"];

export function request(v) {
  return {
    // recall: a symbol at step 1 and the loss at T (delay T − 1); sum: random inputs, a loss at every step
    task: v.task === "sum" ? { name: "sum", T: v.T, n: 4, seed: v.seed } : { name: "recall", delay: v.T - 1, seed: v.seed },
    // the LSTM's forget-gate bias is init.forget_bias (as /bptt and /train take it); keep_bias
    // carries only the GRU's update-gate bias (no init field for it)
    init: { seed: v.seed, hidden: v.m, outputs: 4, forget_bias: v.bias },
    keep_bias: { gru: v.bias }, cells: CELLS,
  };
}

export async function run(v, signal, { drawn }) {
  const data = await postJSON("/api/v1/compare-cells", request(v), signal);
  const view = { data, v };
  render(view);
  drawn(view);
}

export function render({ data }) {
  const name = (c) => tr(`labs.cell.${c}`);
  const reach = CELLS.map((c) => ({
    x: data.lag, y: data.cells[c].reach, name: name(c), mode: "lines", line: { color: COLORS[c], width: 2 },
    hovertemplate: `${name(c)}<br>T − k = %{x}<br>‖∂L<sub>T</sub>/∂h<sub>k</sub>‖ = %{y:.3e}<extra></extra>`,
  }));
  draw($("cells-reach"), reach, layout({
    xaxis: { title: { text: tr("labs.axis.lag") } },
    yaxis: { title: { text: "‖∂L<sub>T</sub>/∂h<sub>k</sub>‖" }, type: "log", exponentformat: "power" },
  }));
  const gates = CELLS.filter((c) => data.cells[c].gate).map((c) => ({
    x: data.t, y: data.cells[c].gate.mean, name: tr(`labs.gate.${data.cells[c].gate.name}`), mode: "lines",
    line: { color: COLORS[c], width: 2, dash: c === "gru" ? "dash" : "solid" },  // both visible where they coincide
    hovertemplate: `${tr(`labs.gate.${data.cells[c].gate.name}`)}<br>t = %{x}<br>%{y:.4f}<extra></extra>`,
  }));
  draw($("cells-gates"), gates, layout({
    xaxis: { title: { text: tr("labs.axis.t") } },
    yaxis: { title: { text: tr("labs.axis.gate") }, range: [0, 1.02] },
  }));
  const zmin = log10(data.scale.min), zmax = log10(data.scale.max);
  CELLS.forEach((c, i) => {
    const z = data.cells[c].delta_h_norm.map((row) => row.map(log10));
    draw($(`cells-heat-${c}`), [{
      type: "heatmap", z, x: data.t, y: data.t, zmin, zmax, colorscale: "Viridis", showscale: i === CELLS.length - 1,
      colorbar: { title: { text: "log₁₀" }, thickness: 10 },
      customdata: data.cells[c].delta_h_norm,
      hovertemplate: `${name(c)}<br>t = %{y}, k = %{x}<br>‖∂L<sub>t</sub>/∂h<sub>k</sub>‖ = %{customdata:.3e}<extra></extra>`,
    }], layout({
      height: 260, margin: { l: 40, r: 8, t: 30, b: 36 }, title: { text: name(c), font: { size: 13 } },
      xaxis: { title: { text: "k" } }, yaxis: { title: { text: "t" }, autorange: "reversed" },
    }));
  });
  $("cells-reading").textContent = reading(data);
}

/** "49 steps back the LSTM keeps 6.0e−2 of the gradient; the GRU 1.1e−1; …" from kept[T−1]. */
export function reading(data) {
  const d = data.lag[data.lag.length - 1];
  const kept = (c) => data.cells[c].kept[data.lag.length - 1];
  const order = ["lstm", "gru", "residual", "vanilla"];
  const parts = order.map((c) => tr("labs.cells.kept", { cell: tr(`labs.cell.${c}`), x: fmt(kept(c), 2) }));
  const gates = order.filter((c) => data.cells[c].gate).map((c) =>
    tr("labs.cells.gatemean", { gate: tr(`labs.gate.${data.cells[c].gate.name}`), x: fmt(data.cells[c].gate.mean_all, 3) }));
  return tr("labs.cells.reading", { d, parts: parts.join(tr("labs.sep")), gates: gates.join(tr("labs.sep")) });
}
