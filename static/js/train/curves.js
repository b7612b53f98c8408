// Plotly figures of a training run: loss curves, the gradient norm with the clipping threshold
// and the clipped updates marked, parameter norms, and one checkpoint's ‖δ_{t,k}‖ matrix.
// Each function returns {data, layout} for Plotly.react; the numbers are the API's (the page
// does no maths: log10 below is only the heatmap's colour scale, as on the explorer). Arrays
// are copied: Plotly.react redraws only data whose arrays are new.

import { tr } from "../i18n.js";
import { fmt } from "../util.js";

const COLORS = ["#1f4e79", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#8a8f98", "#3d7dca", "#9c6644"];
const FONT = { family: '"Noto Sans", "Noto Sans CJK SC", system-ui, sans-serif', size: 12 };

function base(xTitle, yTitle, { log = false } = {}) {
  return {
    margin: { l: 58, r: 12, t: 26, b: 42 }, font: FONT, showlegend: true,
    legend: { orientation: "h", y: 1.01, yanchor: "bottom", x: 0, font: { size: 11 } },
    xaxis: { title: { text: xTitle }, zeroline: false, rangemode: "tozero" },
    yaxis: { title: { text: yTitle }, type: log ? "log" : "linear", exponentformat: "power", zeroline: false },
    hovermode: "x unified",
  };
}

/** Loss against update of one run or several on one axis: runs = [{name, update[], loss[]}]. */
export function lossFigure(runs, { log = true } = {}) {
  const data = runs.map((r, i) => ({
    type: "scatter", mode: r.update.length > 1 ? "lines" : "markers", name: r.name ?? tr("train.curve.loss"),
    x: r.update.slice(), y: r.loss.slice(), line: { color: r.color ?? COLORS[i % COLORS.length], width: 2 },
    hovertemplate: `%{y:.4g}<extra>${r.name ?? ""}</extra>`,
  }));
  const layout = base(tr("train.axis.update"), tr("train.axis.loss"), { log });
  layout.showlegend = runs.length > 1;
  return { data, layout };
}

/** ‖g‖ before clipping per reported update, the threshold max_norm (dashed) and the updates
 *  that clipping changed (red crosses). series = {update[], grad_norm[], clipped[]}. */
export function gradNormFigure(series, { maxNorm = null } = {}) {
  const x = [], y = [];
  series.update.forEach((u, i) => { if (series.clipped[i]) { x.push(u); y.push(series.grad_norm[i]); } });
  const data = [{
    type: "scatter", mode: series.update.length > 1 ? "lines" : "markers", name: tr("train.curve.grad"),
    x: series.update.slice(), y: series.grad_norm.slice(), line: { color: COLORS[0], width: 1.6 }, hovertemplate: "%{y:.4g}<extra></extra>",
  }];
  if (maxNorm !== null) {
    const last = series.update.length ? series.update[series.update.length - 1] : 1;
    data.push({
      type: "scatter", mode: "lines", name: tr("train.curve.threshold", { c: fmt(maxNorm) }),
      x: [series.update[0] ?? 0, last], y: [maxNorm, maxNorm], line: { color: COLORS[1], dash: "dash", width: 1.5 },
      hoverinfo: "skip",
    });
    data.push({
      type: "scatter", mode: "markers", name: tr("train.curve.clipped"), x, y,
      marker: { symbol: "x-thin-open", size: 9, color: COLORS[1], line: { width: 2 } }, hovertemplate: "%{y:.4g}<extra></extra>",
    });
  }
  const layout = base(tr("train.axis.update"), "‖g‖", { log: true });
  layout.showlegend = data.length > 1;
  return { data, layout };
}

/** ‖θ‖ of each parameter array per reported update (before that update): series =
 *  {update[], param_norms: {name: []}}. */
export function paramNormFigure(series) {
  const data = Object.entries(series.param_norms).map(([name, ys], i) => ({
    type: "scatter", mode: series.update.length > 1 ? "lines" : "markers", name, x: series.update.slice(), y: ys.slice(),
    line: { color: COLORS[i % COLORS.length], width: 1.6 }, hovertemplate: `${name} %{y:.4g}<extra></extra>`,
  }));
  return { data, layout: base(tr("train.axis.update"), "‖θ‖", { log: false }) };
}

/** The lower-triangular ‖δ_{t,k}‖ of a checkpoint line (rows t = 1…T, row t has t entries;
 *  null = overflowed) as a heatmap on a log colour scale: x step k, y loss step t. */
export function deltaFigure(deltaNorm) {
  const T = deltaNorm.length;
  const steps = Array.from({ length: T }, (_, i) => i + 1);
  const z = deltaNorm.map((row) => steps.map((_, k) => (k < row.length && row[k] > 0 ? Math.log10(row[k]) : null)));
  const text = deltaNorm.map((row) => steps.map((_, k) => (k < row.length ? fmt(row[k]) : "")));
  const data = [{
    type: "heatmap", x: steps, y: steps, z, text, colorscale: "Viridis", hoverongaps: false,
    colorbar: { title: { text: "log₁₀‖δ‖", side: "right" }, thickness: 12 },
    hovertemplate: `t = %{y}, k = %{x}<br>‖δₜ,ₖ‖ = %{text}<extra></extra>`,
  }];
  const layout = {
    margin: { l: 52, r: 12, t: 8, b: 42 }, font: FONT,
    xaxis: { title: { text: tr("axis.step.k") }, dtick: T > 30 ? undefined : 1, constrain: "domain" },
    yaxis: { title: { text: tr("axis.step.t") }, autorange: "reversed", dtick: T > 30 ? undefined : 1 },
  };
  return { data, layout };
}
