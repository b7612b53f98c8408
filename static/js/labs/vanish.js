// Lab 2: W_hh rescaled to several spectral radii ρ (POST /api/v1/radius-sweep): ‖δ_{t,1}‖ against
// t on one log axis, and for each ρ the API's verdict (vanishing, exploding, steady).

import { tr } from "../i18n.js";
import { fmt } from "../util.js";
import { postJSON } from "./stream.js";
import { draw, layout } from "./plots.js";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];

/** "0.5, 1, 1.5" → [0.5, 1, 1.5]; a word that is not a number is the page's own error. */
export function radiiOf(text) {
  const parts = String(text).split(/[,，\s]+/).filter(Boolean);
  const out = parts.map(Number);
  const bad = parts.find((p, i) => !Number.isFinite(out[i]));
  if (bad !== undefined || !out.length) {
    const e = new Error(tr("labs.radii.bad", { got: bad ?? "" }));
    e.error = { local: true, message: e.message };
    throw e;
  }
  return out;
}

export function request(v) {
  return {
    task: { name: "sum", T: v.T, seed: v.seed }, init: { seed: v.seed, hidden: v.m },
    activation: v.act, radii: radiiOf(v.radii),
  };
}

export async function run(v, signal, { drawn }) {
  const data = await postJSON("/api/v1/radius-sweep", request(v), signal);
  const view = { data, v };
  render(view);
  drawn(view);
}

export function render({ data }) {
  const traces = data.runs.map((r, i) => ({
    x: data.t, y: r.delta_t1, name: `ρ = ${fmt(r.radius, 3)}`, mode: "lines+markers", marker: { size: 4 },
    line: { color: PALETTE[i % PALETTE.length], width: 2 },
    hovertemplate: `ρ = ${fmt(r.radius, 3)}<br>t = %{x}<br>‖δ<sub>t,1</sub>‖ = %{y:.3e}<extra></extra>`,
  }));
  draw($("vanish-plot"), traces, layout({
    height: 380,
    xaxis: { title: { text: tr("labs.axis.t") } },
    yaxis: { title: { text: "‖δ<sub>t,1</sub>‖ = ‖∂L<sub>t</sub>/∂z<sub>1</sub>‖" }, type: "log", exponentformat: "power" },
  }));
  const ul = $("vanish-reading");
  ul.replaceChildren(...data.runs.map((r) => {
    const li = document.createElement("li");
    li.dataset.verdict = r.verdict;
    li.textContent = tr(`labs.vanish.${r.verdict}`, { rho: fmt(r.radius, 3), rate: fmt(r.rate, 3), factor: fmt(r.factor, 2), T: data.T });
    return li;
  }));
  const head = document.createElement("li");
  head.className = "muted";
  head.textContent = tr("labs.vanish.drawn", { rho: fmt(data.spectral_radius_drawn, 3), act: data.activation === "identity" ? tr("act.identity") : data.activation });
  ul.prepend(head);
}
