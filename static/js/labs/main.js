// The labs page: four labs (compare cells, vanishing, remedies, truncation), each a module with
// run(values, signal). One table of controls drives the inputs and the URL; the selected lab
// and its settings live in the URL's hash (?lang=zh#lab=cells&cells.delay=49), so a copied link
// opens the same lab with the same numbers. Every number drawn comes from the API.

import { apply as applyLang, lang, tr } from "../i18n.js";
import { errorText } from "../editor.js";
import { ZH_LOCALE } from "./plots.js";
import * as cells from "./cells.js";
import * as vanish from "./vanish.js";
import * as remedies from "./remedies.js";
import * as truncation from "./truncation.js";

const $ = (id) => document.getElementById(id);
const LABS = { cells, vanish, remedies, truncation };

/** Every control: lab, key (in the URL: lab.key), element id, kind, default. */
export const CONTROLS = [
  { lab: "cells", key: "task", id: "cells-task", kind: "str", def: "recall" },
  { lab: "cells", key: "T", id: "cells-T", kind: "int", def: 50 },
  { lab: "cells", key: "m", id: "cells-m", kind: "int", def: 16 },
  { lab: "cells", key: "seed", id: "cells-seed", kind: "int", def: 0 },
  { lab: "cells", key: "bias", id: "cells-bias", kind: "num", def: 3 },
  { lab: "vanish", key: "act", id: "vanish-act", kind: "str", def: "tanh" },
  { lab: "vanish", key: "T", id: "vanish-T", kind: "int", def: 40 },
  { lab: "vanish", key: "m", id: "vanish-m", kind: "int", def: 16 },
  { lab: "vanish", key: "seed", id: "vanish-seed", kind: "int", def: 0 },
  { lab: "vanish", key: "radii", id: "vanish-radii", kind: "str", def: "0.5, 1, 1.5, 2, 3" },
  { lab: "remedies", key: "delay", id: "rem-delay", kind: "int", def: 40 },
  { lab: "remedies", key: "m", id: "rem-m", kind: "int", def: 16 },
  { lab: "remedies", key: "updates", id: "rem-updates", kind: "int", def: 300 },
  { lab: "remedies", key: "lr", id: "rem-lr", kind: "num", def: 0.01 },
  { lab: "remedies", key: "seed", id: "rem-seed", kind: "int", def: 0 },
  { lab: "remedies", key: "bias", id: "rem-bias", kind: "num", def: 3 },
  { lab: "remedies", key: "c", id: "clip-c", kind: "num", def: 1 },
  { lab: "remedies", key: "scale", id: "clip-scale", kind: "num", def: 1 },
  { lab: "remedies", key: "clr", id: "clip-lr", kind: "num", def: 0.2 },
  { lab: "remedies", key: "cupdates", id: "clip-updates", kind: "int", def: 200 },
  { lab: "truncation", key: "K", id: "trunc-K", kind: "int", def: 4 },
  { lab: "truncation", key: "delay", id: "trunc-delay", kind: "int", def: 8 },
  { lab: "truncation", key: "updates", id: "trunc-updates", kind: "int", def: 300 },
  { lab: "truncation", key: "seed", id: "trunc-seed", kind: "int", def: 0 },
];
/** labs computed as soon as they open or a control changes (one quick request each) */
const AUTO = new Set(["cells", "vanish"]);

const state = { lab: "cells", lang: "en", values: {} };
const runs = {};  // lab → AbortController of its run in flight
const views = {};  // lab → what its last run drew (redrawn on a language switch)
window.labs = { state, views, busy: () => Object.keys(runs).length };

function readControl(c) {
  const el = $(c.id);
  if (c.kind === "str") return el.value;
  const v = Number(el.value);
  return el.value.trim() === "" || !Number.isFinite(v) ? c.def : v;
}

function valuesOf(lab) {
  const out = {};
  for (const c of CONTROLS) if (c.lab === lab) out[c.key] = state.values[`${lab}.${c.key}`] ?? c.def;
  return out;
}

function readURL() {
  const q = new URLSearchParams(location.search);
  const h = new URLSearchParams(location.hash.slice(1));
  const fallback = document.querySelector('meta[name="bptt-default-lang"]')?.content || "en";
  state.lang = q.get("lang") === "zh" || q.get("lang") === "en" ? q.get("lang") : fallback;
  state.lab = LABS[h.get("lab")] ? h.get("lab") : "cells";
  for (const c of CONTROLS) {
    const raw = h.get(`${c.lab}.${c.key}`);
    if (raw === null) continue;
    const v = c.kind === "str" ? raw : Number(raw);
    if (c.kind === "str" || Number.isFinite(v)) state.values[`${c.lab}.${c.key}`] = v;
  }
}

function writeURL() {
  const h = new URLSearchParams();
  h.set("lab", state.lab);
  for (const c of CONTROLS) {
    const v = state.values[`${c.lab}.${c.key}`];
    if (v !== undefined && v !== c.def) h.set(`${c.lab}.${c.key}`, String(v));
  }
  history.replaceState(null, "", `${location.pathname}?lang=${state.lang}#${h.toString()}`);
}

function fillControls() {
  for (const c of CONTROLS) $(c.id).value = String(state.values[`${c.lab}.${c.key}`] ?? c.def);
  $("trunc-K-out").textContent = $("trunc-K").value;
}

function showLab(lab) {
  if (state.lab !== lab) stop(state.lab);  // leaving a lab stops its run
  state.lab = lab;
  for (const s of document.querySelectorAll("section.lab")) s.hidden = s.dataset.lab !== lab;
  for (const b of document.querySelectorAll("#lab-tabs button")) b.setAttribute("aria-selected", String(b.dataset.lab === lab));
  writeURL();
  if (views[lab]) LABS[lab].render(views[lab]);
  else if (AUTO.has(lab) || LABS[lab].auto) play(lab, "auto");
}

function labError(lab, err) {
  const box = document.querySelector(`[data-lab-error="${lab}"]`);
  if (!err) { box.textContent = ""; box.title = ""; return; }
  const e = err.error || { local: true, message: err.message };
  box.textContent = errorText(e);
  box.title = e.message || "";
}

function setBusy(lab, busy) {
  const sec = $(`lab-${lab}`);
  // Run stays enabled (it restarts): a change committed by the click's own blur starts a run
  // first, and a disabled button would swallow that click
  sec.querySelector(".stop").disabled = !busy;
  sec.classList.toggle("busy", busy);
  document.body.dataset.busy = String(Object.keys(runs).length);
}

export async function play(lab, part = null) {
  stop(lab);
  const ctl = new AbortController();
  runs[lab] = ctl;
  setBusy(lab, true);
  labError(lab, null);
  $("status").textContent = tr("labs.status.running");
  try {
    await LABS[lab].run(valuesOf(lab), ctl.signal, {
      drawn: (view) => { views[lab] = view; bump(lab); }, part,
    });
    if (runs[lab] === ctl) $("status").textContent = tr("labs.status.done");
  } catch (e) {
    if (runs[lab] !== ctl && e.name === "AbortError") { /* replaced by a newer run, or stopped by stop() */ }
    else if (e.name === "AbortError") $("status").textContent = tr("labs.status.stopped");
    else { labError(lab, e); $("status").textContent = ""; if (!e.error) console.error(e); }
  } finally {
    if (runs[lab] === ctl) { delete runs[lab]; setBusy(lab, false); }
  }
}

export function stop(lab) {
  const ctl = runs[lab];
  if (!ctl) return;
  delete runs[lab];
  ctl.abort();
  setBusy(lab, false);
}

/** Each redraw of a lab bumps data-renders (tests wait on it) and data-renders-<lab>. */
function bump(lab) {
  const b = document.body.dataset;
  b.renders = String(Number(b.renders || 0) + 1);
  b[`renders${lab[0].toUpperCase()}${lab.slice(1)}`] = String(Number(b[`renders${lab[0].toUpperCase()}${lab.slice(1)}`] || 0) + 1);
}

function setLang(l) {
  state.lang = l;
  applyLang(l);
  document.title = `${tr("app.title")} — ${tr("labs.title")}`;
  writeURL();
  for (const lab of Object.keys(LABS)) if (views[lab]) LABS[lab].render(views[lab]);
}

function wire() {
  for (const b of document.querySelectorAll("#lab-tabs button")) b.addEventListener("click", () => showLab(b.dataset.lab));
  for (const c of CONTROLS) {
    const el = $(c.id);
    const onChange = () => {
      state.values[`${c.lab}.${c.key}`] = readControl(c);
      if (c.id === "trunc-K") $("trunc-K-out").textContent = el.value;
      writeURL();
      if (AUTO.has(c.lab)) play(c.lab);
      else if (LABS[c.lab].onChange) LABS[c.lab].onChange(c.key, valuesOf(c.lab), (part) => play(c.lab, part));
    };
    el.addEventListener("change", onChange);
    if (el.type === "range") el.addEventListener("input", () => { $("trunc-K-out").textContent = el.value; });
  }
  for (const sec of document.querySelectorAll("section.lab")) {
    sec.querySelector(".play").addEventListener("click", () => play(sec.dataset.lab));
    sec.querySelector(".stop").addEventListener("click", () => { stop(sec.dataset.lab); $("status").textContent = tr("labs.status.stopped"); });
  }
  $("lang").addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
  $("share").addEventListener("click", async () => {
    writeURL();
    try { await navigator.clipboard.writeText(location.href); } catch { /* no clipboard: the URL bar has it */ }
    const b = $("banner-share");
    b.textContent = tr("labs.share.done");
    b.hidden = false;
    setTimeout(() => { b.hidden = true; }, 3000);
  });
  // a run stops when the user leaves the page
  window.addEventListener("pagehide", () => { for (const lab of Object.keys(runs)) stop(lab); });
  window.addEventListener("hashchange", () => { readURL(); fillControls(); showLab(state.lab); });
}

function start() {
  readURL();
  if (window.Plotly) window.Plotly.register(ZH_LOCALE);
  applyLang(state.lang);
  document.title = `${tr("app.title")} — ${tr("labs.title")}`;
  fillControls();
  wire();
  showLab(state.lab);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
