// The exercise builder: a teacher ticks what to hide (every ?hide= flag, named in the page's
// language), picks the model (this one as it is, or a preset) and optionally a quiz question,
// and gets the link (copy, preview in a frame). The link is the page's own URL format:
// ?lang=…&hide=…&quiz=…, the model in #s=… (state.js) or ?preset=….

import { getJSON } from "./api.js";
import { tr } from "./i18n.js";
import { quizValue } from "./quiz.js";
import { CANONICAL, hasOutput, namesOf, sizes } from "./state.js";
import { toBase64Url } from "./util.js";

const $ = (id) => document.getElementById(id);
let ctrl = null;
const presetReqs = new Map();

/** ctrl: { state(), response(), presets(), hideable() → [{ name, panel }] } */
export function initExercise(controller) {
  ctrl = controller;
  $("exercise-open").addEventListener("click", () => { $("exercise-open").closest("details")?.removeAttribute("open"); open(); });
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...kids.filter((x) => x !== null && x !== undefined));
  return e;
}

/** A flag's name in the page's language: the page's own word for it, else its heading. */
function flagName(f) {
  const key = `hide.flag.${f.name}`;
  if (tr(key) !== key) return tr(key);
  const h = document.querySelector(`#panel-${CSS.escape(f.name)} h2, [data-hide="${CSS.escape(f.name)}"] h2`);
  return h?.textContent?.trim() || f.name;
}

function open() {
  const dlg = $("exercise");
  const st = ctrl.state();
  dlg.replaceChildren(build(st));
  if (!dlg.open) dlg.showModal();
  update();
}

function num(id, value, min = 1) {
  return el("input", { id, type: "number", min: String(min), step: "1", value: String(value), class: "ex-num" });
}

function build(st) {
  const form = el("form", { method: "dialog", class: "ex-form" });
  form.append(el("h2", { id: "ex-title", text: tr("ex.title") }), el("p", { class: "muted", text: tr("ex.intro") }));
  // the model
  const psel = el("select", { id: "ex-preset" });
  for (const p of ctrl.presets()) psel.append(new Option(p.title[st.lang] || p.title.en, p.id));
  psel.value = st.preset || ctrl.presets()[0]?.id || "";
  form.append(el("fieldset", {}, el("legend", { text: tr("ex.model") }),
    el("label", {}, el("input", { type: "radio", name: "ex-model", value: "current", checked: true }), " ", tr("ex.model.current")),
    el("label", {}, el("input", { type: "radio", name: "ex-model", value: "preset" }), " ", tr("ex.model.preset"), " ", psel)));
  // what to hide
  const flags = ctrl.hideable();
  const group = (panel) => el("div", { class: "ex-flags" }, ...flags.filter((f) => f.panel === panel).map((f) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "ex-hide", value: f.name, checked: st.hide.includes(f.name) }),
      " ", flagName(f), " ", el("code", { text: f.name }))));
  form.append(el("fieldset", {}, el("legend", { text: tr("ex.hide") }),
    el("div", { class: "ex-sub", text: tr("ex.hide.controls") }), group(false),
    el("div", { class: "ex-sub", text: tr("ex.hide.panels") }), group(true)));
  // the quiz
  const kind = el("select", { id: "ex-quiz" },
    new Option(tr("ex.quiz.none"), ""), new Option(tr("ex.quiz.delta"), "delta:fixed"), new Option(tr("ex.quiz.delta.free"), "delta"),
    new Option(tr("ex.quiz.grad"), "grad:fixed"), new Option(tr("ex.quiz.grad.free"), "grad"));
  const t = st.sel.t + 1, k = st.sel.k + 1;
  const notation = st.req?.notation || "canonical";
  const param = el("select", { id: "ex-param" }, ...CANONICAL.map((c) => {
    const shown = namesOf(notation, c).join(" + ");
    return new Option(shown === c ? c : `${shown} (${c})`, c);
  }));
  param.value = "W_hh";
  form.append(el("fieldset", {}, el("legend", { text: tr("ex.quiz") }),
    el("label", {}, kind),
    el("div", { id: "ex-q-delta", class: "row", hidden: true },
      el("label", {}, "t ", num("ex-t", t)), el("label", {}, "k ", num("ex-k", k)), el("label", {}, tr("quiz.entry"), " i ", num("ex-i", 1))),
    el("div", { id: "ex-q-grad", class: "row", hidden: true },
      el("label", {}, tr("quiz.param"), " ", param), el("label", {}, tr("quiz.row"), " ", num("ex-gi", 1)), el("label", {}, tr("quiz.col"), " ", num("ex-gj", 1))),
    el("p", { class: "muted", text: tr("ex.quiz.note") })));
  // language, the link
  const langSel = el("select", { id: "ex-lang" }, new Option("简体中文", "zh"), new Option("English", "en"));
  langSel.value = st.lang;
  form.append(el("label", {}, tr("ex.lang"), " ", langSel));
  form.append(el("div", { class: "row ex-link" },
    el("input", { id: "ex-link", type: "text", readonly: true, "aria-label": tr("ex.link") }),
    el("button", { type: "button", id: "ex-copy", text: tr("ex.copy") }),
    el("button", { type: "button", id: "ex-preview", text: tr("ex.preview") }),
    el("button", { type: "submit", id: "ex-close", text: tr("ex.close") })));
  form.append(el("p", { id: "ex-summary", class: "muted", role: "status" }), el("p", { id: "ex-error", class: "field-error" }));
  form.append(el("iframe", { id: "ex-frame", title: tr("ex.preview"), hidden: true }));
  form.addEventListener("input", () => update());
  form.addEventListener("change", () => update());
  form.querySelector("#ex-copy").addEventListener("click", copy);
  form.querySelector("#ex-preview").addEventListener("click", preview);
  return form;
}

/** The request a link would carry (its sizes bound the question). */
async function modelOf(choice) {
  if (choice === "current") return ctrl.state().req;
  const id = $("ex-preset").value;
  if (!presetReqs.has(id)) presetReqs.set(id, await getJSON(`/api/v1/presets/${encodeURIComponent(id)}`));
  return presetReqs.get(id);
}

/** The question the form describes, checked against the model's sizes: { q } or { error }. */
function questionOf(req) {
  const v = $("ex-quiz").value;
  $("ex-q-delta").hidden = v !== "delta:fixed";
  $("ex-q-grad").hidden = v !== "grad:fixed";
  if (!v) return { q: null };
  if (v === "delta") return { q: { kind: "delta", fixed: null } };
  if (v === "grad") return { q: { kind: "grad", fixed: null } };
  const { T, n, m, p } = sizes(req);
  const int = (id) => Number($(id).value);
  const bad = (name, lo, hi) => ({ error: tr("ex.range", { name, lo, hi }) });
  if (v === "delta:fixed") {
    const t = int("ex-t"), k = int("ex-k"), i = int("ex-i");
    if (!(Number.isInteger(t) && t >= 1 && t <= T)) return bad("t", 1, T);
    if (!(Number.isInteger(k) && k >= 1 && k <= t)) return bad("k", 1, t);
    if (!(Number.isInteger(i) && i >= 1 && i <= m)) return bad("i", 1, m);
    return { q: { kind: "delta", fixed: { t: t - 1, k: k - 1, i: i - 1 } } };
  }
  const c = $("ex-param").value;
  if ((c === "W_hy" || c === "b_y") && !hasOutput(req)) return { error: tr("ex.nooutput") };
  const shape = { W_xh: [m, n], W_hh: [m, m], b_h: [m], W_hy: [p, m], b_y: [p] }[c];
  $("ex-gj").closest("label").hidden = shape.length === 1;
  const i = int("ex-gi"), j = int("ex-gj");
  if (!(Number.isInteger(i) && i >= 1 && i <= shape[0])) return bad(tr("quiz.row"), 1, shape[0]);
  if (shape.length === 2 && !(Number.isInteger(j) && j >= 1 && j <= shape[1])) return bad(tr("quiz.col"), 1, shape[1]);
  return { q: { kind: "grad", fixed: { param: c, i: i - 1, j: shape.length === 2 ? j - 1 : null } } };
}

let seq = 0;
async function update() {
  const mine = ++seq;
  const choice = document.querySelector('input[name="ex-model"]:checked')?.value || "current";
  const req = await modelOf(choice);
  if (mine !== seq) return;
  const { q, error } = questionOf(req);
  $("ex-error").textContent = error || "";
  const hide = [...document.querySelectorAll('input[name="ex-hide"]:checked')].map((x) => x.value);
  const st = ctrl.state();
  const base = new URL(location.href);
  const query = new URLSearchParams();
  query.set("lang", $("ex-lang").value);
  if (choice === "preset") query.set("preset", $("ex-preset").value);
  if (hide.length) query.set("hide", hide.join(","));
  if (q) query.set("quiz", quizValue(q));
  let hash = "";
  if (choice === "current") {
    const blob = await toBase64Url(JSON.stringify({ r: st.req, s: [st.sel.t, st.sel.k, st.sel.b], v: st.view, p: st.preset }));
    if (mine !== seq) return;
    hash = `#s=${blob}`;
  }
  const link = error ? "" : `${base.origin}${base.pathname}?${query.toString().replaceAll("%2C", ",").replaceAll("%3A", ":")}${hash}`;
  $("ex-link").value = link;
  $("ex-copy").disabled = $("ex-preview").disabled = !link;
  const names = hide.map((f) => flagName({ name: f }));
  $("ex-summary").textContent = [
    hide.length ? tr("ex.summary.hide", { list: names.join(st.lang === "zh" ? "、" : ", ") }) : tr("ex.summary.nohide"),
    q ? tr("ex.summary.quiz") : "",
  ].filter(Boolean).join(" ");
}

async function copy() {
  const link = $("ex-link").value;
  try {
    await navigator.clipboard.writeText(link);
    $("ex-summary").textContent = tr("ex.copied");
  } catch {
    $("ex-link").select();
    $("ex-summary").textContent = tr("share.failed");
  }
}

function preview() {
  const f = $("ex-frame");
  f.hidden = false;
  f.src = $("ex-link").value;
  f.scrollIntoView({ block: "nearest" });
}
