// The model editor: controls and numeric grids that edit the request body.

import { displayNames } from "./display.js";
import { ERROR_CODES } from "./errors.js";
import { lang, tr } from "./i18n.js";
import { CANONICAL, c0Of, c0PerSequence, canonicalOf, cellOf, cells, convertParams, h0Of, h0PerSequence, hasCellState, hasOutput, isBatched, namesOf, resize, setCell, setLoss, setMethod, sizes } from "./state.js";
import { clone, normal, rng, round, shape } from "./util.js";

const $ = (id) => document.getElementById(id);

let ctrl = null;

/** Parse what a person typed: a number when it is one, else the raw text (the API names the error). */
function parseCell(text) {
  const t = text.trim().replace("−", "-");
  if (t !== "" && Number.isFinite(Number(t))) return Number(t);
  return text;
}

/** ctrl: { state(), response(), change(mutate, opts), select(t, k), loadPreset(id), applyJSON(text) } */
export function initEditor(controller) {
  ctrl = controller;
  $("preset").addEventListener("change", (e) => ctrl.loadPreset(e.target.value));
  renderCellMenu();
  $("cell").addEventListener("change", (e) => ctrl.change((req) => setCell(req, e.target.value), { rebuild: true }));
  $("method").addEventListener("change", (e) => ctrl.change((req) => setMethod(req, e.target.value)));
  for (const id of ["activation", "reduction"]) {
    $(id).addEventListener("change", (e) => ctrl.change((req) => { req[id] = e.target.value; }));
  }
  $("loss").addEventListener("change", (e) => ctrl.change((req) => setLoss(req, e.target.value)));
  $("notation").addEventListener("change", (e) => ctrl.change((req) => {
    const to = e.target.value;
    const params = req.params ?? lastParams(req);
    if (params) {
      // keep the very same numbers under the new names
      req.params = convertParams(params, req.notation || "canonical", to, canonicalOf(req));
      delete req.init;
    }
    req.notation = to;
  }, { samePreset: true }));  // the same numbers under other names: still the preset's model
  for (const dim of ["T", "n", "m", "p"]) {
    $(`size-${dim}`).addEventListener("change", (e) => {
      const v = Number(e.target.value);
      const max = Number(e.target.max) || 256;
      const box = document.querySelector('.field-error[data-for~="inputs"]');
      if (!(Number.isInteger(v) && v >= 1 && v <= max)) {
        e.target.classList.add("invalid");
        box.textContent = tr("size.range", { name: tr(`size.${dim}`), lo: 1, hi: max });
        ctrl.refuse();  // not sent: refused here, said as an API refusal is
        return;
      }
      e.target.classList.remove("invalid");
      box.textContent = "";
      ctrl.change((req) => resize(req, dim, v, (req.init?.seed ?? 0) + 1, { keepScale: !!ctrl.state().scaleByUser }), { rebuild: true });
    });
  }
  $("seed").addEventListener("change", (e) => {
    const v = Math.round(Number(e.target.value));
    if (Number.isNaN(v)) return;
    ctrl.change((req) => toInit(req, v), { rebuild: true });  // out of range: the API says so by the field
  });
  $("scale").addEventListener("change", (e) => ctrl.change((req) => {
    const v = e.target.value === "" ? null : Number(e.target.value);
    ctrl.state().scaleByUser = v !== null;
    const r = toInit(req, req.init?.seed ?? 0);
    if (v === null) delete r.init.scale; else r.init.scale = v;
    return r;
  }, { rebuild: true }));
  $("randomize").addEventListener("click", () => ctrl.change((req) => toInit(req, ((req.init?.seed ?? 0) + 1) % 100000), { rebuild: true }));
  $("newdata").addEventListener("click", () => ctrl.change((req) => {
    const seed = Math.floor(Math.random() * 1e6);
    const next = rng(seed);
    const { T, n } = sizes(req);
    const fresh = () => Array.from({ length: T }, () => Array.from({ length: n }, () => round(normal(next), 3)));
    req.inputs = isBatched(req) ? req.inputs.map(fresh) : fresh();
  }, { rebuild: true }));
  for (const el of document.querySelectorAll('input[name="steps"]')) {
    el.addEventListener("change", (e) => ctrl.change((req) => {
      const { T } = sizes(req);
      const mode = e.target.value;
      req.loss_steps = mode === "pick" ? Array.from({ length: T }, (_, t) => (Array.isArray(req.loss_steps) ? req.loss_steps[t] : true)) : mode;
    }));
  }
  $("trunc-on").addEventListener("change", () => ctrl.change(applyTruncation));
  $("trunc-K").addEventListener("input", () => ctrl.change(applyTruncation));
  $("clip-kind").addEventListener("change", () => ctrl.change(applyClip));
  $("clip-c").addEventListener("input", () => ctrl.change(applyClip));
  $("gradcheck").addEventListener("change", (e) => ctrl.change((req) => { req.gradient_check = e.target.checked; }));
  $("batch-b").addEventListener("change", (e) => ctrl.select(null, null, Number(e.target.value)));
  $("json-apply").addEventListener("click", () => ctrl.applyJSON($("json-box").value));
  $("json-copy").addEventListener("click", () => navigator.clipboard?.writeText($("json-box").value));
  // one listener for every grid cell
  $("editor").addEventListener("input", (e) => {
    const path = e.target.dataset?.field;
    if (!path) return;
    const value = parseCell(e.target.value);
    e.target.classList.toggle("invalid", typeof value !== "number");
    ctrl.change((req) => {
      materialise(req, path);
      // seeded weights not known yet (no fresh response): the edit waits for the next one
      if (path.startsWith("params.") && !req.params) return req;
      return setPath(req, path, value);
    }, { fromGrid: true });
  });
}

/** The weights of the last response, when they are the ones this request would use (same
 *  notation, loss and sizes); null when the response is stale or of another model. */
function lastParams(req) {
  const resp = ctrl.response();
  if (!resp?.params || document.getElementById("panels").classList.contains("stale")) return null;
  const { n, m, p } = sizes(req);
  const same = resp.notation === (req.notation || "canonical") && resp.loss === (req.loss || "mse")
    && resp.cell === (req.cell || "vanilla")
    && resp.shapes.n === n && resp.shapes.m === m && (resp.shapes.p ?? null) === (p ?? null);
  return same ? clone(resp.params) : null;
}

/** With weights from a seed, editing one weight first writes the seeded numbers out. */
function materialise(req, path) {
  if (path.startsWith("params.") && !req.params) {
    const params = lastParams(req);
    if (params) { req.params = params; delete req.init; }
  }
  for (const s of ["h0", "c0"]) {
    if (path.startsWith(s) && !req[s]) {
      const { m, B } = sizes(req);
      req[s] = isBatched(req) ? Array.from({ length: B }, () => Array(m).fill(0)) : Array(m).fill(0);
    }
  }
  return req;
}

function toInit(req, seed) {
  const r = clone(req);
  const { m, p } = sizes(r);
  const scale = r.init?.scale;
  delete r.params;
  r.init = { seed, hidden: m };
  if (hasOutput(r)) r.init.outputs = p;
  if (scale !== undefined && scale !== null) r.init.scale = scale;
  return r;
}

function applyTruncation(req) {
  const on = $("trunc-on").checked;
  if (on) req.truncation = parseCell($("trunc-K").value); else delete req.truncation;
}

function applyClip(req) {
  const kind = $("clip-kind").value;
  const c = parseCell($("clip-c").value);
  if (kind) req.clip = { [kind]: c }; else delete req.clip;
}

/** Set a value at an API path such as params.W_hh[0][1], inputs[2][0], h0[1], targets[3]. */
function setPath(obj, path, value) {
  const parts = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) parts.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  // "linear.weight" is one PyTorch name: join a params key that the notation spells with a dot
  if (parts[0] === "params" && typeof parts[2] === "string") parts.splice(1, 2, `${parts[1]}.${parts[2]}`);
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]];
  o[parts[parts.length - 1]] = value;
  return obj;
}

// ---------------------------------------------------------------- rendering

/** The cell menu from the registry (GET /api/v1/cells), each named in the page's language. */
export function renderCellMenu() {
  const sel = $("cell");
  const names = Object.keys(cells());
  if (!names.length) return;
  const value = sel.value;
  sel.replaceChildren(...names.map((c) => { const o = new Option(tr(`cell.${c}`), c); o.dataset.i18n = `cell.${c}`; return o; }));
  sel.value = names.includes(value) ? value : names[0];
}

export function renderPresets(presets, current, lang) {
  const sel = $("preset");
  sel.replaceChildren();
  const custom = new Option(tr("preset.custom"), "");
  sel.append(custom);
  for (const p of presets) sel.append(new Option(p.title[lang] || p.title.en, p.id));
  sel.value = current || "";
  sel.title = current ? sel.selectedOptions[0]?.text || "" : "";  // the whole name where the top bar cuts it
  const p = presets.find((x) => x.id === current);
  $("preset-desc").textContent = p ? presetDescription(p, lang, ctrl?.state().req?.notation) : "";
}

/** A preset's description under the notation shown: the canonical names it mentions (W_hh,
 *  b_y: unambiguous with their underscore) renamed, so "W_hh has spectral radius 0.25" reads
 *  "U has …" in NNDL's notation. Descriptions written in another notation are left as written
 *  (they say which one they use; single letters cannot be renamed safely). */
export function presetDescription(p, lang, notation = "canonical") {
  let text = p.description[lang] || p.description.en;
  if (!notation || notation === (p.notation || "canonical") || (p.notation || "canonical") !== "canonical") return text;
  for (const c of [...CANONICAL, "W_ih", "b_ih", "b_hh"]) {
    text = text.replace(new RegExp(`(?<![A-Za-z0-9_])${c}(?![A-Za-z0-9_])`, "g"), namesOf(notation, c).join(" + "));
  }
  return text;
}

/** Controls show the request; grids are rebuilt when asked (shape changes, loads). */
export function renderEditor(state, resp, { rebuild = false } = {}) {
  const req = state.req;
  const { B, T, n, m, p } = sizes(req);
  $("cell").value = req.cell || "vanilla";
  $("method").value = req.method || "bptt";
  // the activations the cell takes (the registry's list): gated cells fix their own, tanh
  const acts = cellOf(req).activations;
  for (const o of $("activation").options) o.disabled = !acts.includes(o.value);
  $("activation").disabled = acts.length < 2;
  $("activation").title = acts.length < 2 ? tr("activation.fixed", { f: acts.join(", ") }) : "";
  $("activation").value = req.activation || "tanh";
  // RTRL has no truncation (the API refuses the pair)
  const rtrl = req.method === "rtrl";
  $("trunc-on").disabled = rtrl;
  $("trunc-K").disabled = rtrl;
  $("trunc-on").closest("label").title = rtrl ? tr("truncation.rtrl") : "";
  $("loss").value = req.loss || "mse";
  $("notation").value = req.notation || "canonical";
  $("notation").title = $("notation").selectedOptions[0]?.text || "";
  $("reduction").value = req.reduction || "sum";
  setNum("size-T", T); setNum("size-n", n); setNum("size-m", m);
  $("size-p-label").hidden = !hasOutput(req);
  if (p !== null) setNum("size-p", p);
  setNum("seed", req.init?.seed ?? 0);
  if (document.activeElement !== $("scale")) $("scale").value = req.init?.scale ?? "";
  // given weights: the preset's own while it is still the preset, else the user's
  $("weights-mode").textContent = !req.params ? tr("weights.init", { seed: req.init?.seed ?? 0 })
    : state.preset ? tr("weights.preset") : tr("weights.edited");
  const mode = Array.isArray(req.loss_steps) ? "pick" : (req.loss_steps || "all");
  for (const el of document.querySelectorAll('input[name="steps"]')) el.checked = el.value === mode;
  renderChips(req, T, mode);
  $("steps-hint").hidden = mode !== "pick";
  $("trunc-on").checked = req.truncation !== undefined && req.truncation !== null;
  if (req.truncation && document.activeElement !== $("trunc-K")) $("trunc-K").value = req.truncation;
  const clipKind = req.clip ? Object.keys(req.clip)[0] : "";
  $("clip-kind").value = clipKind;
  if (clipKind && document.activeElement !== $("clip-c")) $("clip-c").value = req.clip[clipKind];
  $("gradcheck").checked = !!req.gradient_check;
  // batch
  $("batch-row").hidden = B === null;
  $("batch-note").hidden = B === null;
  if (B !== null) {
    const bsel = $("batch-b");
    if (bsel.options.length !== B) bsel.replaceChildren(...Array.from({ length: B }, (_, b) => new Option(`${tr("seq")} ${b + 1}`, b)));
    bsel.value = state.sel.b;
    $("batch-note").textContent = tr("data.batch.note", { B, b: state.sel.b + 1 });
  }
  if (rebuild) renderGrids(state, resp);
  else refreshGrids(state, resp);
  if (document.activeElement !== $("json-box")) $("json-box").value = JSON.stringify(req, null, 1);
}

function setNum(id, v) {
  const el = $(id);
  if (document.activeElement !== el) el.value = v;
}

function renderChips(req, T, mode) {
  const box = $("step-chips");
  box.hidden = mode !== "pick";
  if (mode !== "pick") return;
  if (box.children.length !== T) {
    box.replaceChildren(...Array.from({ length: T }, (_, t) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = `L${t + 1}`;
      b.addEventListener("click", () => toggleStep(t));
      return b;
    }));
  }
  [...box.children].forEach((b, t) => b.setAttribute("aria-pressed", String(!!req.loss_steps[t])));
}

export function toggleStep(t) {
  ctrl.change((req) => {
    const { T } = sizes(req);
    const cur = Array.isArray(req.loss_steps) ? req.loss_steps
      : Array.from({ length: T }, (_, i) => req.loss_steps === "last" ? i === T - 1 : true);
    cur[t] = !cur[t];
    req.loss_steps = cur;
  });
}

/** Arrays to show in the grids: the request's own, or the response's (seeded weights). */
function gridSources(state, resp) {
  const req = state.req;
  const b = state.sel.b;
  const seq = (v) => (isBatched(req) && v ? v[b] : v);
  const pre = isBatched(req) ? `[${b}]` : "";
  const h0 = h0Of(req, b);
  const h0pre = h0PerSequence(req) ? `h0[${b}]` : "h0";
  const out = [
    { box: "grid-inputs", field: `inputs${pre}`, value: seq(req.inputs), rowLabel: "t" },
    { box: "grid-h0", field: h0pre, value: h0 },
  ];
  if (hasCellState(req)) out.push({ box: "grid-c0", field: c0PerSequence(req) ? `c0[${b}]` : "c0", value: c0Of(req, b) });
  if (hasOutput(req)) out.push({ box: "grid-targets", field: `targets${pre}`, value: seq(req.targets), rowLabel: "t" });
  else out.push({ box: "grid-targets", field: `upstream${pre}`, value: seq(req.upstream), rowLabel: "t" });
  return out;
}

function paramSources(state, resp) {
  const req = state.req;
  const params = req.params ?? resp?.params;
  if (!params) return [];
  const names = [];
  for (const c of canonicalOf(req)) for (const nm of namesOf(req.notation || "canonical", c)) if (params[nm]) names.push([nm, c]);
  const spec = Object.fromEntries(cellOf(req).params.map((p) => [p.canonical, p]));
  const gates = cellOf(req).gates;
  const { m } = sizes(req);
  // a gated cell's stacked weights: rows in blocks of m, one block per gate (i, f, g, o / r, u, n)
  const blocks = (c) => (gates.length && spec[c] && String(spec[c].shape[0]).endsWith("m") && spec[c].shape[0] !== "m" ? { gates, m } : null);
  // the name shown follows the view's names (the biases b_h, b_o: display.js); the field keeps the API's
  const own = resp && (resp.notation || "canonical") === (req.notation || "canonical") ? displayNames(resp, state.view) : null;
  const shown = (nm, c) => (own && own[c] && !String(own[c]).includes(" + ") && resp.names[c] === nm ? own[c] : nm);
  return names.map(([nm, c]) => ({ name: nm, shown: shown(nm, c), field: `params.${nm}`, value: params[nm], blocks: blocks(c) }));
}

function renderGrids(state, resp) {
  const req = state.req;
  for (const g of gridSources(state, resp)) $(g.box).replaceChildren(table(g.field, g.value, g.rowLabel));
  const hn = ctrl.response()?.names?.h === "a" || req.notation === "coursera" ? "a" : "h";
  $("h0-title").textContent = tr("data.h0", { h: `${hn}₀` });
  $("box-c0").hidden = !hasCellState(req);
  if (!hasCellState(req)) $("grid-c0").replaceChildren();
  $("c0-title").textContent = tr("data.c0");
  $("targets-title").textContent = !hasOutput(req) ? tr("data.upstream")
    : (req.loss === "softmax_ce" && shape(isBatched(req) ? req.targets?.[0] : req.targets).length === 1 ? tr("data.targets.indices") : tr("data.targets"));
  const box = $("grid-params");
  box.replaceChildren();
  for (const p of paramSources(state, resp)) {
    const title = document.createElement("div");
    title.className = "param-name";
    title.textContent = `${p.shown}  (${shape(p.value).join("×")})`;
    if (p.shown !== p.name) title.title = tr("grid.apiname", { name: p.name });
    if (p.blocks) title.textContent += `  ${tr("grid.blocks", { gates: p.blocks.gates.join(", ") })}`;
    const wrap = document.createElement("div");
    wrap.className = "grid-wrap";
    wrap.dataset.param = p.field;
    wrap.dataset.shown = p.shown;
    if (p.blocks) wrap.dataset.blocks = p.blocks.gates.join("");
    wrap.append(table(p.field, p.value, "i", p.blocks));
    box.append(title, wrap);
  }
}

/** Update the numbers in place (keeps focus and caret); rebuild a grid whose shape changed. */
function refreshGrids(state, resp) {
  const params = paramSources(state, resp);
  // a name shown otherwise now (the response of a new notation came, with the biases b_h, b_o on)
  const renamed = params.some((p) => { const w = document.querySelector(`#grid-params .grid-wrap[data-param="${CSS.escape(p.field)}"]`); return w && w.dataset.shown !== p.shown; });
  if (renamed) { renderGrids(state, resp); return; }
  const all = [...gridSources(state, resp), ...params.map((p) => ({ ...p, box: null }))];
  for (const g of all) {
    const cells = document.querySelectorAll(`[data-field^="${CSS.escape(g.field)}["]`);
    const flat = [];
    const walk = (v, path) => (Array.isArray(v) ? v.forEach((x, i) => walk(x, `${path}[${i}]`)) : flat.push([path, v]));
    walk(g.value ?? [], g.field);
    if (cells.length !== flat.length) { renderGrids(state, resp); return; }
    const byField = new Map(flat);
    for (const c of cells) {
      if (c === document.activeElement) continue;
      const v = byField.get(c.dataset.field);
      const text = typeof v === "number" ? String(v) : String(v ?? "");
      if (c.value !== text) c.value = text;
      c.classList.toggle("invalid", typeof v !== "number");
    }
  }
}

const SUBS = "₀₁₂₃₄₅₆₇₈₉";
const sub = (n) => String(n).split("").map((d) => SUBS[d]).join("");

/** Row i of a gated cell's stacked array: its gate's letter and the unit, "f₂" (blocks of m rows). */
function gateRow(blocks, i) {
  const g = blocks.gates[Math.floor(i / blocks.m)];
  return { label: `${g}${sub((i % blocks.m) + 1)}`, gate: g, first: i % blocks.m === 0 };
}

/** Mark a grid row as the first of its gate's block (a rule above it) and name the gate on hover. */
function markGate(row, th, blocks, i) {
  const gr = gateRow(blocks, i);
  th.textContent = gr.label;
  th.title = tr(`gate.${blocks.gates.join("")}.${gr.gate}`);
  row.dataset.gate = gr.gate;
  if (gr.first && i > 0) row.classList.add("gate-start");
}

function table(field, value, rowLabel, blocks = null) {
  const t = document.createElement("table");
  t.className = "grid";
  if (!Array.isArray(value)) return t;  // a pasted body with no array here: the API names the field
  const rows = Array.isArray(value[0]) ? value : [value];
  const isVec = !Array.isArray(value[0]);
  const head = t.insertRow();
  head.append(document.createElement("th"));
  if (!isVec) rows[0].forEach((_, j) => { const th = document.createElement("th"); th.textContent = j + 1; head.append(th); });
  rows.forEach((row, i) => {
    const tr_ = t.insertRow();
    const th = document.createElement("th");
    th.textContent = isVec ? "" : `${rowLabel === "t" ? "t=" : ""}${i + 1}`;
    if (blocks && !isVec) markGate(tr_, th, blocks, i);
    tr_.append(th);
    const cells = Array.isArray(row) ? row : [row];
    cells.forEach((v, j) => {
      const td = tr_.insertCell();
      const inp = document.createElement("input");
      inp.type = "text"; inp.inputMode = "decimal"; inp.spellcheck = false;
      inp.value = v;
      const path = isVec ? `${field}[${j}]` : (Array.isArray(row) ? `${field}[${i}][${j}]` : `${field}[${i}]`);
      inp.dataset.field = path;
      inp.setAttribute("aria-label", path);
      td.append(inp);
    });
  });
  if (isVec) {
    // a vector: one column, one row per entry
    const flatT = document.createElement("table");
    flatT.className = "grid";
    value.forEach((v, i) => {
      const r = flatT.insertRow();
      const th = document.createElement("th"); th.textContent = i + 1; r.append(th);
      if (blocks) markGate(r, th, blocks, i);
      const inp = document.createElement("input");
      inp.type = "text"; inp.inputMode = "decimal"; inp.value = v; inp.dataset.field = `${field}[${i}]`;
      inp.setAttribute("aria-label", `${field}[${i}]`);
      r.insertCell().append(inp);
    });
    return flatT;
  }
  return t;
}

// ---------------------------------------------------------------- errors by the field

export function clearErrors() {
  for (const el of document.querySelectorAll(".field-error")) el.textContent = "";
  const je = document.getElementById("json-error");
  if (je) je.textContent = "";
  for (const el of document.querySelectorAll("#editor .invalid")) {
    if (!(el.dataset.field && typeof parseCell(el.value) !== "number")) el.classList.remove("invalid");
  }
}

/** The page's input for a field the API names (grid cells carry data-field themselves). */
const FIELD_INPUT = { truncation: "trunc-K", "init.seed": "seed", "init.scale": "scale", "clip.max_norm": "clip-c", "clip.max_value": "clip-c" };

/** The API's error codes the page says in its own words (static/js/errors.js): code → (params, err) → text. */
export { ERROR_CODES };

/** An API error (or the page's own) as a sentence in the page's language: by its code and
 *  params, never by the English message (kept on hover). */
export function errorText(err) {
  if (err.local) return err.message;  // the page's own words, already in its language
  const byCode = err.code && ERROR_CODES[err.code];
  if (byCode) return byCode(err.params || {}, err);
  // a refusal without a code the page knows: said in the page's language, the API's own sentence quoted
  return lang() === "en" ? err.message || String(err.code) : tr("err.api", { field: err.field || "body", msg: err.message, got: err.got ?? "—" });
}

/** Put an API error next to the field it names; returns false when no place fits. */
export function showError(err) {
  clearErrors();
  const field = err.field || "body";
  const candidates = [field];
  let f = field;
  while (/\[\d+\]$/.test(f)) { f = f.replace(/\[\d+\]$/, ""); candidates.push(f); }
  if (f.includes(".")) candidates.push(f.split(".")[0]);
  let box = null;
  for (const c of candidates) {
    box = [...document.querySelectorAll(".field-error")].find((el) => el.dataset.for.split(" ").includes(c)
      && el.offsetParent !== null);
    if (!box) box = [...document.querySelectorAll(".field-error")].find((el) => el.dataset.for.split(" ").includes(c));
    if (box) break;
  }
  const cell = document.querySelector(`[data-field="${CSS.escape(field)}"]`) || (FIELD_INPUT[field] && document.getElementById(FIELD_INPUT[field]));
  if (cell) {
    cell.classList.add("invalid");
    cell.closest("details")?.setAttribute("open", "");
  }
  const whole = document.querySelector(`[data-param="${CSS.escape(field)}"]`);
  if (whole) whole.closest("details")?.setAttribute("open", "");
  if (box) {
    box.textContent = errorText(err);
    box.title = err.local ? "" : err.message || "";
    box.closest("details")?.setAttribute("open", "");
    return true;
  }
  return false;
}
