// The page state: the request body itself (the model), the selection and the view.
// Everything here is plain JSON, so the whole state fits in the URL.

import { clone, normal, resize2, rng, round, shape, toBase64Url, fromBase64Url } from "./util.js";

export const CANONICAL = ["W_xh", "W_hh", "b_h", "W_hy", "b_y"];
export const OUTPUT = ["W_hy", "b_y"];

/** notation tables from GET /api/v1/notations (canonical → name or [names]) */
let NOTATIONS = null;
export function setNotations(n) { NOTATIONS = n; }

/** The cells from GET /api/v1/cells (name → summary, states, gates, activations, params):
 *  the one list the cell menu, the activation menu and the weight grids are built from. */
let CELLS = null;
export function setCells(c) { CELLS = c; }
export const cells = () => CELLS || {};
/** The registry entry of a request's cell (vanilla's shape when the list is not loaded yet). */
export function cellOf(req) {
  const name = req?.cell || "vanilla";
  return CELLS?.[name] || { states: ["h"], gates: [], activations: ["tanh", "sigmoid", "relu", "identity"],
    params: ["W_xh", "W_hh", "b_h"].map((c) => ({ canonical: c, shape: c === "b_h" ? ["m"] : ["m", c === "W_xh" ? "n" : "m"] })) };
}
export const isGated = (req) => cellOf(req).gates.length > 0;
export const hasCellState = (req) => cellOf(req).states.includes("c");
/** The canonical names of a request's parameters, in the order shown: its cell's, then the output layer's. */
export function canonicalOf(req) {
  const hidden = cellOf(req).params.map((p) => p.canonical);
  return hasOutput(req) ? [...hidden, ...OUTPUT] : hidden;
}

export function namesOf(notation, canon) {
  const v = NOTATIONS?.[notation]?.[canon] ?? canon;
  return Array.isArray(v) ? v : [v];
}

export const hasOutput = (req) => (req.loss || "mse") !== "upstream";
export const isBatched = (req) => shape(req.inputs).length === 3;

/** Whether h0 is given per sequence (B×m) rather than shared (m). */
export const h0PerSequence = (req) => !!req.h0 && isBatched(req) && Array.isArray(req.h0[0]);

/** h_0 of sequence b: given per sequence, shared, or zeros. */
export function h0Of(req, b) {
  if (!req.h0) return Array(sizes(req).m).fill(0);
  return h0PerSequence(req) ? req.h0[b] : req.h0;
}

/** Whether c0 (the LSTM's initial cell state) is given per sequence (B×m). */
export const c0PerSequence = (req) => !!req.c0 && isBatched(req) && Array.isArray(req.c0[0]);

/** c_0 of sequence b: given per sequence, shared, or zeros. */
export function c0Of(req, b) {
  if (!req.c0) return Array(sizes(req).m).fill(0);
  return c0PerSequence(req) ? req.c0[b] : req.c0;
}

/** T, n, m, p, B of a request. */
export function sizes(req) {
  const s = shape(req.inputs);
  const batched = s.length === 3;
  const [B, T, n] = batched ? s : [null, s[0], s[1]];
  let m, p = null;
  if (req.params) {
    const w = shape(req.params[namesOf(req.notation, "W_hh")[0]]);
    m = w[1] ?? w[0];  // W_hh is m×m, or G·m×m for a gated cell
    if (hasOutput(req)) p = shape(req.params[namesOf(req.notation, "W_hy")[0]])[0];
  } else {
    m = req.init?.hidden ?? 4;
    if (hasOutput(req)) p = req.init?.outputs ?? targetWidth(req) ?? 1;
  }
  return { B, T, n, m, p };
}

function targetWidth(req) {
  const s = shape(req.targets);
  const rows = isBatched(req) ? s.length === 3 : s.length === 2;
  return rows ? s[s.length - 1] : null;
}

/** Apply fn to each sequence of a per-sequence field (batched or not). */
function perSeq(req, value, fn) {
  if (value === undefined || value === null) return value;
  return isBatched(req) ? value.map((v, b) => fn(v, b)) : fn(value, 0);
}

/** Change T, n, m or p, keeping every number that still fits. A new m draws the weights at the
 *  default scale 1/√m unless keepScale (a scale the user typed): a preset's scale was chosen for
 *  its own m. */
export function resize(req, what, value, seed = 1, { keepScale = true } = {}) {
  const r = clone(req);
  const next = rng(seed * 7919 + value);
  const rnd = () => round(normal(next), 3);
  const { T, n, m, p } = sizes(r);
  const nT = what === "T" ? value : T, nn = what === "n" ? value : n;
  const nm = what === "m" ? value : m, np_ = what === "p" ? value : p;
  r.inputs = perSeq(r, r.inputs, (x) => resize2(x, nT, nn, rnd));
  if (Array.isArray(r.loss_steps)) r.loss_steps = Array.from({ length: nT }, (_, i) => r.loss_steps[i] ?? true);
  r.targets = makeTargets(r, nT, np_, r.targets, next);
  if (!hasOutput(r)) r.upstream = perSeq(r, r.upstream ?? (isBatched(r) ? r.inputs.map(() => []) : []), (g) => resize2(g, nT, nm, rnd));
  for (const s of ["h0", "c0"]) {
    if (r[s]) r[s] = isBatched(r) && Array.isArray(r[s][0]) ? r[s].map((h) => resize2([h], 1, nm, () => 0)[0]) : resize2([r[s]], 1, nm, () => 0)[0];
  }
  if (what === "n" || what === "m" || what === "p") {
    // the weights change shape: draw them again from the seed
    const seed0 = r.init?.seed ?? 0;
    const scale = what === "m" && !keepScale ? undefined : r.init?.scale;
    delete r.params;
    r.init = { seed: seed0, hidden: nm };
    if (hasOutput(r)) r.init.outputs = np_;
    if (scale !== undefined && scale !== null) r.init.scale = scale;
  }
  return r;
}

/** Targets that fit the loss: rows for mse, class indices for softmax_ce, none for upstream. */
function makeTargets(req, T, p, old, next = rng(5)) {
  const loss = req.loss || "mse";
  if (loss === "upstream") return undefined;
  const one = (seq, b) => {
    const steps = Array.from({ length: T }, (_, t) => t);
    if (loss === "softmax_ce") {
      const oldIdx = Array.isArray(seq) && seq.length && !Array.isArray(seq[0]) ? seq : null;
      return steps.map((t) => {
        const v = oldIdx?.[t];
        return Number.isInteger(v) && v < p ? v : Math.floor(next() * p);
      });
    }
    const rows = Array.isArray(seq) && Array.isArray(seq[0]) ? seq : [];
    return resize2(rows.length === T ? rows : [], T, p, (i, j) => rows[i]?.[j] ?? round(normal(next), 3));
  };
  if (isBatched(req)) {
    const B = req.inputs.length;
    return Array.from({ length: B }, (_, b) => one(old?.[b], b));
  }
  return one(old, 0);
}

/** Switch the loss, fixing targets / upstream / output-layer weights to match. */
export function setLoss(req, loss, lastParams) {
  const r = clone(req);
  const { T, m } = sizes(r);
  const p = sizes(r).p ?? 2;
  const wasOut = hasOutput(r);
  r.loss = loss;
  const next = rng(99);
  if (loss === "upstream") {
    delete r.targets;
    r.upstream = perSeq(r, r.inputs, () => resize2([], T, m, () => round(normal(next), 3)));
    if (r.params) for (const c of ["W_hy", "b_y"]) for (const nm of namesOf(r.notation, c)) delete r.params[nm];
    if (r.init) delete r.init.outputs;
  } else {
    delete r.upstream;
    const pp = loss === "softmax_ce" ? Math.max(p, 2) : p;
    if (!wasOut || (r.init && r.init.outputs !== pp)) {
      if (r.init) r.init.outputs = pp;
    }
    if (r.params && !wasOut) {
      r.params[namesOf(r.notation, "W_hy")[0]] = resize2([], pp, m, () => round(normal(next) * 0.5, 3));
      r.params[namesOf(r.notation, "b_y")[0]] = Array(pp).fill(0);
    }
    const width = r.params ? shape(r.params[namesOf(r.notation, "W_hy")[0]])[0] : pp;
    r.targets = makeTargets(r, T, width, loss === (req.loss || "mse") ? r.targets : undefined, next);
  }
  return r;
}

/** Rename explicit params from one notation to another (PyTorch's two biases ↔ one b_h);
 *  names: the canonical names of the request's cell (canonicalOf), the vanilla cell's by default. */
export function convertParams(params, from, to, names = CANONICAL) {
  const canon = {};
  for (const c of names) {
    const names = namesOf(from, c);
    const parts = names.map((nm) => params[nm]).filter((v) => v !== undefined);
    if (!parts.length) continue;
    canon[c] = parts.length === 1 ? parts[0] : parts[0].map((x, i) => round(parts.reduce((s, a) => s + a[i], 0), 12));
  }
  const out = {};
  for (const [c, v] of Object.entries(canon)) {
    const names = namesOf(to, c);
    names.forEach((nm, i) => { out[nm] = i === 0 ? v : v.map(() => 0); });
  }
  return out;
}

export function defaultView() {
  // measure: the ‖·‖ heatmap shows ‖δ_{t,k}‖ ("delta") or ‖∂L_t/∂h_k‖ ("dh", comparable across cells);
  // rtrl: the BPTT-beside-RTRL panel is open
  return { log: true, contribParam: "W_hh", contribBy: "step", graphFrom: null, stateLetter: "h", measure: "delta", rtrl: false };
}

/** Switch the cell, keeping n, m, p, T, the inputs and the targets: weights of the same shapes
 *  stay (vanilla ↔ residual); others are drawn again from the seed with the new cell's init
 *  (the API draws them per cell). An activation the cell does not take becomes tanh; c0 goes
 *  with a cell without a cell state. */
export function setCell(req, cell) {
  const r = clone(req);
  const { m, p } = sizes(r);
  // the hidden layer's parameters, names and shapes (the LSTM's and the GRU's share names, not shapes)
  const layout = (x) => JSON.stringify(cellOf(x).params.map((q) => [q.canonical, q.shape]));
  const before = layout(r);
  r.cell = cell;
  const c = cellOf(r);
  if (r.activation && !c.activations.includes(r.activation)) r.activation = c.activations[0] || "tanh";
  if (!c.states.includes("c")) delete r.c0;
  if (r.params && layout(r) !== before) {
    const seed = r.init?.seed ?? 0;
    delete r.params;
    r.init = { seed, hidden: m };
    if (hasOutput(r)) r.init.outputs = p;
  }
  return r;
}

/** Switch the method: RTRL has no truncation (the API refuses the pair), so it is dropped. */
export function setMethod(req, method) {
  const r = clone(req);
  if (method === "bptt") delete r.method; else r.method = method;
  if (method === "rtrl") delete r.truncation;
  return r;
}

/** URL: ?lang=…&hide=…#s=<deflated base64url of {req, sel, view, preset}> */
export async function writeURL(state) {
  const blob = await toBase64Url(JSON.stringify({ r: state.req, s: [state.sel.t, state.sel.k, state.sel.b], v: state.view, p: state.preset }));
  const q = new URLSearchParams(location.search);
  q.set("lang", state.lang);
  q.delete("preset");
  const url = `${location.pathname}?${q.toString()}#s=${blob}`;
  history.replaceState(null, "", url);
  return location.href;
}

export async function readURL() {
  const q = new URLSearchParams(location.search);
  const out = { lang: q.get("lang"), preset: q.get("preset"), hide: (q.get("hide") || "").split(",").filter(Boolean) };
  const m = /(?:^#|&)s=([^&]+)/.exec(location.hash);
  if (m) {
    try {
      const d = JSON.parse(await fromBase64Url(m[1]));
      out.req = d.r; out.sel = { t: d.s?.[0] ?? 0, k: d.s?.[1] ?? 0, b: d.s?.[2] ?? 0 }; out.view = d.v; out.preset = d.p ?? null;
    } catch (e) {
      console.warn("could not read the state in the URL", e);
    }
  }
  return out;
}
