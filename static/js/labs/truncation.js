// Lab 4: truncation compared. (a) On one batch of the echo task, the gradients of window-K,
// chunked-K and randomized truncation and RTRL against full BPTT (POST /api/v1/compare-gradients:
// cosine and norm ratio), K on a slider. (b) Training curves of full, window, chunked and
// randomized truncation on the same task (four /api/v1/train streams).

import { tr } from "../i18n.js";
import { fmt } from "../util.js";
import { postJSON, train } from "./stream.js";
import { COLORS, draw, layout } from "./plots.js";

const $ = (id) => document.getElementById(id);
export const VARIANTS = ["full", "window", "chunked", "randomized", "randomized_mean", "rtrl"];
export const TRAINED = ["full", "window", "chunked", "randomized"];
export const auto = true;  // the comparison runs when the lab opens (the training waits for Run)

const task = (v) => ({ name: "echo", T: 20, delay: v.delay, seed: v.seed });
const model = (v) => ({ cell: "vanilla", init: { seed: v.seed, hidden: 16 }, reduction: "mean" });

export function compareBody(v) {
  return { ...model(v), task: task(v), truncation: { kind: "window", K: v.K }, seed: v.seed, draws: 100 };
}

export function truncationOf(kind, v, p) {
  if (kind === "full") return null;
  if (kind === "randomized") return { kind, p };
  return { kind, K: v.K };
}

export function trainBody(kind, v, p) {
  return { ...model(v), task: task(v), truncation: truncationOf(kind, v, p), optimizer: { name: "adam", lr: 0.01 },
    updates: v.updates, seed: v.seed };
}

function series() { return { update: [], loss: [], done: null }; }

export async function run(v, signal, { drawn, part }) {
  const view = { v, cmp: null, curves: null };
  view.cmp = await postJSON("/api/v1/compare-gradients", compareBody(v), signal);
  render(view);
  drawn(view);
  if (part === "auto" || part === "compare") return;  // Run trains too
  view.curves = Object.fromEntries(TRAINED.map((k) => [k, series()]));
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(view); drawn(view); });
  };
  const collect = (s) => (line) => {
    if (line.done) s.done = line; else { s.update.push(line.update); s.loss.push(line.loss); }
    redraw();
  };
  const out = await Promise.allSettled(TRAINED.map((k) =>
    train(trainBody(k, v, view.cmp.p), { signal, onLine: collect(view.curves[k]) })));
  const failed = out.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  render(view);
  drawn(view);
}

/** A change of K (or the task) redoes the comparison at once; the curves wait for Run. */
export function onChange(key, v, play) { play("compare"); }

const label = (k, v, p) => tr(`labs.trunc.${k}`, { K: v.K, p: fmt(p) });

export function render(view) {
  const { cmp, v } = view;
  if (cmp) {
    const ks = VARIANTS.filter((k) => cmp.variants[k]);
    const names = ks.map((k) => label(k, v, cmp.p));
    const rows = ks.map((k, i) => names[i]).reverse(), rev = (f) => ks.map(f).reverse();  // the first on top
    draw($("trunc-bars"), [
      { type: "bar", orientation: "h", y: rows, x: rev((k) => cmp.variants[k].cosine), name: tr("labs.trunc.cosine"), marker: { color: "#1f77b4" },
        hovertemplate: `%{y}<br>${tr("labs.trunc.cosine")} %{x:.4f}<extra></extra>` },
      { type: "bar", orientation: "h", y: rows, x: rev((k) => cmp.variants[k].norm_ratio), name: tr("labs.trunc.ratio"), marker: { color: "#ff7f0e" },
        hovertemplate: `%{y}<br>${tr("labs.trunc.ratio")} %{x:.4f}<extra></extra>` },
    ], layout({ barmode: "group", height: 360, margin: { l: 16, r: 16, t: 36, b: 48 },
      xaxis: { title: { text: tr("labs.trunc.vsfull") } }, yaxis: { automargin: true } }));
    const table = $("trunc-table");
    const head = `<tr><th></th><th>${tr("labs.trunc.cosine")}</th><th>${tr("labs.trunc.ratio")}</th></tr>`;
    table.innerHTML = head + ks.map((k, i) => `<tr data-variant="${k}"><th>${names[i]}</th><td>${fmt(cmp.variants[k].cosine, 5)}</td><td>${fmt(cmp.variants[k].norm_ratio, 5)}</td></tr>`).join("");
    $("trunc-reading").textContent = tr("labs.trunc.reading", {
      K: v.K, delay: v.delay,
      wc: fmt(cmp.variants.window.cosine, 3), wr: fmt(cmp.variants.window.norm_ratio, 3),
      cc: fmt(cmp.variants.chunked.cosine, 3), cr: fmt(cmp.variants.chunked.norm_ratio, 3),
      rc: fmt(cmp.variants.randomized.cosine, 3), mc: fmt(cmp.variants.randomized_mean.cosine, 3),
      draws: cmp.draws, tc: fmt(cmp.variants.rtrl.cosine, 6), p: fmt(cmp.p),
    });
  }
  const curves = view.curves;
  draw($("trunc-loss"), curves ? TRAINED.map((k) => ({
    x: curves[k].update.slice(), y: curves[k].loss.slice(), name: label(k, v, cmp?.p ?? 0.5), mode: "lines", line: { color: COLORS[k], width: 2 },
    hovertemplate: `${label(k, v, cmp?.p ?? 0.5)}<br>${tr("labs.axis.update")} %{x}<br>${tr("labs.axis.loss")} %{y:.4g}<extra></extra>`,
  })) : [], layout({
    xaxis: { title: { text: tr("labs.axis.update") } }, yaxis: { title: { text: tr("labs.axis.loss") }, type: "log", exponentformat: "power" },
    annotations: curves ? [] : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: tr("labs.trunc.press") }],
  }));
}
