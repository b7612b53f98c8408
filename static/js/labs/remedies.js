// Lab 3: the remedies. (a) The recall task trained with vanilla, LSTM and GRU from the same seed,
// one loss axis (three POST /api/v1/train streams, as many at a time as the server allows).
// (b) An exploding vanilla run with and without gradient clipping: loss and ‖g‖ with the threshold.
// The LSTM's forget-gate bias is init.forget_bias of POST /api/v1/compare-cells (as /bptt and
// /train take it), which answers the initial parameters of each cell drawn from the seed.

import { tr } from "../i18n.js";
import { fmt } from "../util.js";
import { postJSON, train } from "./stream.js";
import { COLORS, draw, layout } from "./plots.js";

const $ = (id) => document.getElementById(id);
export const CELLS = ["vanilla", "lstm", "gru"];
const CLIP_COLORS = { off: "#d62728", on: "#1f77b4" };

export function trainBody(v, cell, params) {
  return {
    cell, params, task: { name: "recall", delay: v.delay, seed: v.seed }, reduction: "mean",
    optimizer: { name: "adam", lr: v.lr }, updates: v.updates, seed: v.seed,
  };
}

export function clipBody(v, clip) {
  const body = {
    cell: "vanilla", task: { name: "sum", T: 20, seed: v.seed }, init: { seed: v.seed, hidden: 16, scale: v.scale },
    reduction: "mean", optimizer: { name: "sgd", lr: v.clr }, updates: v.cupdates, seed: v.seed,
  };
  if (clip) body.clip = { max_norm: v.c };
  return body;
}

function series() { return { update: [], loss: [], grad_norm: [], done: null, stopped: null }; }

export async function run(v, signal, { drawn }) {
  const view = { v, cells: Object.fromEntries(CELLS.map((c) => [c, series()])), clip: { off: series(), on: series() } };
  let pending = false;
  const redraw = () => {  // at most one redraw a frame, however fast the lines come
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(view); drawn(view); });
  };
  const collect = (s) => (line) => {
    if (line.done) { s.done = line; if (line.stopped) s.stopped = line.stopped; }
    else { s.update.push(line.update); s.loss.push(line.loss); s.grad_norm.push(line.grad_norm); }
    redraw();
  };
  render(view);
  const init = await postJSON("/api/v1/compare-cells", {
    task: { name: "recall", delay: v.delay, seed: v.seed }, init: { seed: v.seed, hidden: v.m, forget_bias: v.bias },
    cells: CELLS,
  }, signal);
  view.bias = v.bias;
  const jobs = [
    ...CELLS.map((c) => train(trainBody(v, c, init.cells[c].params), { signal, onLine: collect(view.cells[c]) })),
    train(clipBody(v, false), { signal, onLine: collect(view.clip.off) }),
    train(clipBody(v, true), { signal, onLine: collect(view.clip.on) }),
  ];
  const out = await Promise.allSettled(jobs);
  const failed = out.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  render(view);
  drawn(view);
}

export function render(view) {
  const cellName = (c) => tr(`labs.cell.${c}`);
  draw($("rem-loss"), CELLS.map((c) => ({
    x: view.cells[c].update.slice(), y: view.cells[c].loss.slice(), name: cellName(c), mode: "lines", line: { color: COLORS[c], width: 2 },
    hovertemplate: `${cellName(c)}<br>${tr("labs.axis.update")} %{x}<br>${tr("labs.axis.loss")} %{y:.4f}<extra></extra>`,
  })), layout({
    xaxis: { title: { text: tr("labs.axis.update") } }, yaxis: { title: { text: tr("labs.axis.loss") } },
  }));
  const clipName = (k) => (k === "on" ? tr("labs.clip.on", { c: fmt(view.v.c) }) : tr("labs.clip.off"));
  const clipTraces = (field) => ["off", "on"].map((k) => ({
    x: view.clip[k].update.slice(), y: view.clip[k][field].slice(), name: clipName(k), mode: "lines",
    line: { color: CLIP_COLORS[k], width: 2 },
    hovertemplate: `${clipName(k)}<br>${tr("labs.axis.update")} %{x}<br>%{y:.4g}<extra></extra>`,
  }));
  draw($("clip-loss"), clipTraces("loss"), layout({
    xaxis: { title: { text: tr("labs.axis.update") } }, yaxis: { title: { text: tr("labs.axis.loss") }, type: "log", exponentformat: "power" },
  }));
  draw($("clip-norm"), clipTraces("grad_norm"), layout({
    xaxis: { title: { text: tr("labs.axis.update") } },
    yaxis: { title: { text: tr("labs.axis.gradnorm") }, type: "log", exponentformat: "power" },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: view.v.c, y1: view.v.c, line: { color: "#1f77b4", dash: "dash", width: 1.5 } }],
    annotations: [{ xref: "paper", x: 1, y: Math.log10(view.v.c), xanchor: "right", yanchor: "bottom", showarrow: false,
      text: tr("labs.clip.threshold", { c: fmt(view.v.c) }), font: { color: "#1f77b4", size: 11 } }],
  }));
  $("rem-reading").textContent = remReading(view);
  $("clip-reading").textContent = clipReading(view);
}

function finalOf(s) {
  if (!s.done) return null;
  return s.stopped ? tr("labs.stopped.overflow") : fmt(s.done.loss, 3);
}

function remReading(view) {
  if (!CELLS.every((c) => view.cells[c].done)) return tr("labs.rem.wait");
  const parts = CELLS.map((c) => tr("labs.rem.part", { cell: tr(`labs.cell.${c}`), loss: finalOf(view.cells[c]), start: fmt(view.cells[c].loss[0], 3) }));
  return tr("labs.rem.reading", { N: view.v.updates, delay: view.v.delay, parts: parts.join(tr("labs.sep")), bias: fmt(view.bias) });
}

function clipReading(view) {
  const { off, on } = view.clip;
  if (!off.done || !on.done) return tr("labs.rem.wait");
  return tr("labs.clip.reading", { off: finalOf(off), on: finalOf(on), c: fmt(view.v.c), N: view.v.cupdates,
    maxoff: off.stopped ? tr("labs.stopped.overflow") : fmt(off.done.loss, 3) });
}
