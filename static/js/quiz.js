// Quiz mode (?quiz=… in a link the exercise builder makes): every number that would give the
// answer is hidden (heatmap cells and hovers, the selection line, the formula panel, the
// forward/backward tables, the JSON box and the exports), the student types one number and the
// API says whether it is right (POST /api/v1/check-answer: the page never holds the answer in
// its DOM before the student answered or asked for it).
//
//   ?quiz=delta            δ_{t,k}: the student picks the cell (t, k) and the entry i
//   ?quiz=delta:3,2,1      entry 1 of δ_{3,2} (1-based, as the page shows them)
//   ?quiz=grad             a gradient entry: the student picks the parameter and the entry
//   ?quiz=grad:W_hh:1,2    ∂L/∂W_hh, row 1, column 2 (canonical names, 1-based)
//
// A determined student can still read the page's own API responses in the browser's developer
// tools: quiz mode is for exercises in class, not for examinations.

import { url } from "./api.js";
import { displayNames } from "./display.js";
import { errorText } from "./editor.js";
import { lang, tr } from "./i18n.js";
import { CANONICAL } from "./state.js";
import { fmt } from "./util.js";

const $ = (id) => document.getElementById(id);
const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (n) => String(n).split("").map((d) => SUBS[d]).join("");

/** Numbers that carry a value (a decimal point or an exponent; integers are step and entry indices). */
const VALUE = /[-−+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE][-−+]?\d))(?:[eE][-−+]?\d+)?(?:\s?×\s?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?/g;
const HAS_VALUE = /(?:\d\.\d|\.\d|\d[eE][-−+]?\d)/;
export const MASK = "?";

let ctrl = null;

/** POST → {ok, data | error}; never throws on HTTP errors. */
async function postJSON(path, body) {
  try {
    const r = await fetch(url(path), { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(body) });
    const data = await r.json();
    return r.ok ? { ok: true, data } : { ok: false, error: data.error || { message: `HTTP ${r.status}` } };
  } catch (e) {
    return { ok: false, error: { local: true, message: tr("status.offline") } };
  }
}
let spec = null;        // the question kind (and, when the teacher fixed it, where)
let solved = false;     // answered right, or revealed: the numbers are shown again
let observer = null;

/** The quiz of a link's ?quiz= value; null for none. Unknown values are said in the banner. */
export function parseQuiz(value) {
  if (!value) return null;
  let m = /^delta(?::(\d+),(\d+),(\d+))?$/.exec(value);
  if (m) return { kind: "delta", raw: value, fixed: m[1] ? { t: +m[1] - 1, k: +m[2] - 1, i: +m[3] - 1 } : null };
  m = /^grad(?::([A-Za-z_.0-9]+):(\d+)(?:,(\d+))?)?$/.exec(value);
  if (m) return { kind: "grad", raw: value, fixed: m[1] ? { param: m[1], i: +m[2] - 1, j: m[3] === undefined ? null : +m[3] - 1 } : null };
  return { kind: "bad", raw: value };
}

/** The link's value for a question (the builder's side of parseQuiz). */
export function quizValue(q) {
  if (!q) return "";
  if (q.kind === "delta") return q.fixed ? `delta:${q.fixed.t + 1},${q.fixed.k + 1},${q.fixed.i + 1}` : "delta";
  if (q.kind === "grad") {
    if (!q.fixed) return "grad";
    return `grad:${q.fixed.param}:${q.fixed.i + 1}` + (q.fixed.j === null || q.fixed.j === undefined ? "" : `,${q.fixed.j + 1}`);
  }
  return "";
}

/** A link's quiz value the page does not know, in words (the hide banner says it); "" otherwise. */
export const quizBanner = () => (spec && spec.kind === "bad" ? tr("quiz.bad", { v: spec.raw }) : "");

export const quizOn = () => !!spec && spec.kind !== "bad";
export const quizMasked = () => quizOn() && !solved;

/** ctrl: { state(), response(), sentRequest(), select(t, k), redrawAll() } */
export function initQuiz(controller, value) {
  ctrl = controller;
  spec = parseQuiz(value);
  if (!spec) return;
  if (spec.kind === "bad") return;  // said in the hide banner (quizBanner), in the page's language
  document.body.classList.add("quiz-on");
  const box = $("quiz");
  box.hidden = false;
  box.replaceChildren();
  const h = document.createElement("h2");
  h.id = "quiz-title";
  const ask = document.createElement("p");
  ask.id = "quiz-ask";
  const row = document.createElement("div");
  row.className = "row quiz-row";
  const pick = document.createElement("span");
  pick.id = "quiz-pick";
  const input = document.createElement("input");
  input.id = "quiz-answer";
  input.type = "text";
  input.inputMode = "decimal";
  input.spellcheck = false;
  input.autocomplete = "off";
  const go = button("quiz-check", () => check(false));
  const reveal = button("quiz-reveal", () => check(true));
  const again = button("quiz-again", () => { solved = false; startMask(); $("quiz-result").textContent = ""; $("quiz-result").className = ""; ctrl.redrawAll(); render(); });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") check(false); });
  row.append(pick, input, go, reveal, again);
  const result = document.createElement("p");
  result.id = "quiz-result";
  result.setAttribute("role", "status");
  result.setAttribute("aria-live", "polite");
  const tol = document.createElement("p");
  tol.id = "quiz-tol";
  tol.className = "muted";
  box.append(h, ask, row, result, tol);
  startMask();
}

function button(id, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = id;
  b.addEventListener("click", onclick);
  return b;
}

/** The question at the current selection: { path, text } (0-based path into the response). */
function question() {
  const resp = ctrl.response();
  if (!resp) return null;
  const { t, k, b } = ctrl.state().sel;
  const pre = resp.shapes.batch !== null ? `[${b}]` : "";
  if (spec.kind === "delta") {
    const f = spec.fixed || { t, k, i: Math.min(Number($("quiz-entry")?.value ?? 0), resp.shapes.m - 1) };
    return { path: `delta${pre}[${f.t}][${f.k}][${f.i}]`, f,
      text: tr("quiz.ask.delta", { d: `δ${sub(f.t + 1)},${sub(f.k + 1)}`, i: f.i + 1, t: f.t + 1, k: f.k + 1, Lt: `L${sub(f.t + 1)}`, zk: `z${sub(f.k + 1)}` }) };
  }
  const f = spec.fixed ? { ...spec.fixed } : { param: $("quiz-param")?.value || "W_hh", i: Number($("quiz-i")?.value ?? 0), j: Number($("quiz-j")?.value ?? 0) };
  const canon = CANONICAL.includes(f.param) ? f.param : Object.keys(resp.names).find((c) => resp.names[c] === f.param) || f.param;
  const shown = String(resp.names[canon] ?? f.param).split(" + ")[0];
  const arr = resp.params?.[shown];
  const isVec = Array.isArray(arr) && !Array.isArray(arr[0]);
  if (isVec || f.j === null) f.j = null;
  const path = `grads.${shown}[${f.i}]` + (f.j === null ? "" : `[${f.j}]`);
  const said = String(displayNames(resp, ctrl.state().view)[canon] ?? shown).split(" + ")[0];  // b_o when the notes' names are on
  const g = `∂L/∂${said}`;
  return { path, f, text: f.j === null ? tr("quiz.ask.grad1", { g, i: f.i + 1 }) : tr("quiz.ask.grad2", { g, i: f.i + 1, j: f.j + 1 }) };
}

/** The pickers a student uses when the teacher left the choice open. */
function renderPickers() {
  const resp = ctrl.response();
  const box = $("quiz-pick");
  if (spec.fixed || !resp) { box.replaceChildren(); return; }
  const key = `${spec.kind}:${resp.shapes.m}:${resp.notation}:${lang()}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const opts = (n, id, label) => {
    const l = document.createElement("label");
    const s = document.createElement("select");
    s.id = id;
    s.append(...Array.from({ length: n }, (_, x) => new Option(String(x + 1), String(x))));
    s.addEventListener("change", () => { $("quiz-result").textContent = ""; render(); });
    l.append(label, s);
    return l;
  };
  if (spec.kind === "delta") {
    box.replaceChildren(opts(resp.shapes.m, "quiz-entry", tr("quiz.entry")));
    return;
  }
  const pl = document.createElement("label");
  const ps = document.createElement("select");
  ps.id = "quiz-param";
  for (const c of CANONICAL) {
    const shown = resp.names[c] && String(resp.names[c]).split(" + ")[0];
    if (shown && resp.params?.[shown]) ps.append(new Option(shown, c));
  }
  pl.append(tr("quiz.param"), ps);
  const rows = () => resp.params[String(resp.names[ps.value]).split(" + ")[0]];
  const fill = () => {
    const a = rows();
    const iSel = opts(a.length, "quiz-i", tr("quiz.row"));
    const parts = [pl, iSel];
    if (Array.isArray(a[0])) parts.push(opts(a[0].length, "quiz-j", tr("quiz.col")));
    box.replaceChildren(...parts);
  };
  ps.addEventListener("change", () => { fill(); $("quiz-result").textContent = ""; render(); });
  fill();
}

/** After every render: the question for the selection, the buttons' words. */
export function render() {
  if (!quizOn() || !ctrl.response()) return;
  renderPickers();
  const q = question();
  $("quiz-title").textContent = tr("quiz.title");
  $("quiz-ask").textContent = q ? q.text : "";
  if (!spec.fixed) $("quiz-ask").textContent += " " + tr(spec.kind === "delta" ? "quiz.free.delta" : "quiz.free.grad");
  $("quiz-answer").placeholder = tr("quiz.placeholder");
  $("quiz-answer").setAttribute("aria-label", tr("quiz.answer"));
  $("quiz-check").textContent = tr("quiz.check");
  $("quiz-reveal").textContent = tr("quiz.reveal");
  $("quiz-again").textContent = tr("quiz.again");
  $("quiz-again").hidden = !solved;
  $("quiz-tol").textContent = tr("quiz.tolerance");
}

/** The teacher's cell is selected when the page opens (its frame shows where the question is). */
export function initialSelection() {
  return spec && spec.kind === "delta" && spec.fixed ? { t: spec.fixed.t, k: spec.fixed.k, b: 0 } : null;
}

async function check(reveal) {
  const q = question();
  const req = ctrl.sentRequest();
  if (!q || !req) return;
  const res = $("quiz-result");
  const text = $("quiz-answer").value.trim().replace(/^[−–]/, "-").replace(/，/g, ".");
  const answer = text === "" ? null : Number(text);
  if (!reveal && (answer === null || !Number.isFinite(answer))) {
    res.className = "bad";
    res.textContent = tr("quiz.nan");
    return;
  }
  const { fields: _f, ...request } = req;
  const r = await postJSON("/api/v1/check-answer", { request, ask: q.path, answer: reveal ? null : answer, reveal });
  if (!r.ok) {
    res.className = "bad";
    res.textContent = errorText(r.error);
    return;
  }
  const d = r.data;
  if (d.correct) {
    res.className = "ok";
    res.textContent = tr("quiz.right", { v: fmt(d.value, 6) });
  } else if (reveal) {
    res.className = "";
    res.textContent = tr("quiz.revealed", { v: fmt(d.value, 6) });
  } else {
    res.className = "bad";
    res.textContent = tr("quiz.wrong", { a: fmt(answer, 6) });
    return;
  }
  solved = true;
  stopMask();
  ctrl.redrawAll();
  render();
}

// ---------------------------------------------------------------- hiding the numbers

/** A figure without the numbers that would give the answer: no hover labels (clicks still
 *  select), no numbers printed in cells, none in annotations. */
export function maskFigure(fig) {
  if (!quizMasked()) return fig;
  const data = fig.data.map((tr_) => {
    const t = { ...tr_, hoverinfo: "none" };
    delete t.hovertemplate;
    delete t.hovertext;
    if (typeof t.texttemplate === "string" && /%\{(z|y|x|customdata|text)/.test(t.texttemplate)) delete t.texttemplate;
    const texts = Array.isArray(t.text) ? t.text.flat(2) : [t.text];
    if (texts.some((x) => typeof x === "string" && HAS_VALUE.test(x))) delete t.text;
    if (t.colorbar) t.colorbar = { ...t.colorbar, showticklabels: false };
    return t;
  });
  const layout = { ...fig.layout };
  if (Array.isArray(layout.annotations)) {
    layout.annotations = layout.annotations.map((a) => (typeof a.text === "string" ? { ...a, text: a.text.replace(VALUE, MASK) } : a));
  }
  return { ...fig, data, layout };
}

const inPlot = (node) => !!(node.parentElement || node).closest?.(".js-plotly-plot");

/** Every value written in the panels (text and hover titles) replaced by "?". */
function maskTree(root) {
  if (!root || inPlot(root)) return;
  if (root.nodeType === Node.TEXT_NODE) {
    if (HAS_VALUE.test(root.data)) root.data = root.data.replace(VALUE, MASK);
    return;
  }
  if (root.nodeType !== Node.ELEMENT_NODE) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT, {
    acceptNode: (n) => (n.nodeType === Node.ELEMENT_NODE && n.classList?.contains("js-plotly-plot") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  for (let n = root; n; n = walker.nextNode()) {
    if (n.nodeType === Node.TEXT_NODE) {
      if (HAS_VALUE.test(n.data)) n.data = n.data.replace(VALUE, MASK);
      continue;
    }
    // the formula panel writes a number's full value as its hover title, and 10 of its × 10ⁿ too
    if (n.title && (HAS_VALUE.test(n.title) || /^[-−]?\d+$/.test(n.title) && n.closest("#formula mn, #formula math"))) {
      if (n.closest("mn")) n.textContent = MASK;
      n.title = "";
    }
    for (const a of ["aria-label", "data-value"]) if (n.getAttribute?.(a) && HAS_VALUE.test(n.getAttribute(a))) n.setAttribute(a, n.getAttribute(a).replace(VALUE, MASK));
  }
}

function roots() {
  return [$("panels"), $("quiz-pick")].filter(Boolean);
}

function startMask() {
  document.body.classList.add("quiz-masked");
  for (const r of roots()) maskTree(r);
  if (observer) observer.disconnect();
  // whatever a panel writes later (a selection, a language switch, a panel of its own) is masked as it comes
  observer = new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === "characterData") maskTree(m.target);
      else if (m.type === "attributes") maskTree(m.target);
      else for (const n of m.addedNodes) maskTree(n);
    }
  });
  observer.observe($("panels"), { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["title", "aria-label"] });
}

function stopMask() {
  document.body.classList.remove("quiz-masked");
  if (observer) observer.disconnect();
  observer = null;
}
