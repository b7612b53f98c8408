// Display choices for the names the course notes use (the API's names are unchanged):
//   view.stateLetter "s"   the hidden state written sₜ (seeds 000, 004)
//   view.biasNames "ho"    the biases written b_h and b_o (seed 000: "两个偏置 b_o、b_h"), in the
//                          notations whose biases are letters (canonical b_h/b_y, Goodfellow and
//                          NNDL b/c); the course notebook and PyTorch keep their own names
//   view.deltaH true       ∂L/∂hₖ written δ⁽ᵏ⁾ = ∂L/∂h⁽ᵏ⁾ (Goodfellow, seed 001: "为方便定义
//                          δ⁽ᵗ⁾ = ∂L/∂h⁽ᵗ⁾"); δₜ,ₖ = ∂Lₜ/∂zₖ keeps its name
// The response the panels draw is adapted once (displayResponse): names and the arrays keyed
// by them, so every panel and hover follows without knowing about the choice.

const BIAS_NOTATIONS = new Set(["canonical", "goodfellow", "nndl"]);
const SUP = { 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹", t: "ᵗ", k: "ᵏ" };
const sup = (s) => [...String(s)].map((c) => SUP[c] ?? c).join("");

/** The names shown: resp.names with the view's choices applied. */
export function displayNames(resp, view = {}) {
  let names = resp.names;
  if (view.stateLetter === "s" && names.h === "h") names = { ...names, h: "s" };
  if (view.biasNames === "ho" && BIAS_NOTATIONS.has(resp.notation || "canonical") && !String(names.b_h).includes(" + ")) {
    names = { ...names, b_h: "b_h", b_y: "b_o" };
  }
  return names;
}

/** renames [[from, to]] applied to the keys of every plain object among obj's values. */
function rekeyTables(obj, renames) {
  const out = { ...obj };
  for (const [key, val] of Object.entries(obj)) {
    if (!val || typeof val !== "object" || Array.isArray(val) || key === "names") continue;
    if (!renames.some(([from]) => Object.prototype.hasOwnProperty.call(val, from))) continue;
    out[key] = Object.fromEntries(Object.entries(val).map(([k, v]) => [renames.find(([from]) => from === k)?.[1] ?? k, v]));
  }
  return out;
}

function renamesOf(resp, view) {
  const names = displayNames(resp, view);
  return [names, Object.entries(names).filter(([c, n]) => resp.names[c] !== n && c !== "h").map(([c, n]) => [resp.names[c], n])];
}

/** The response as the panels draw it: names shown, and every top-level table keyed by a
 *  parameter's name (params, grads, grads_unclipped, grads_per_step, …) under the shown name. */
export function displayResponse(resp, view = {}) {
  if (!resp) return resp;
  const [names, renames] = renamesOf(resp, view);
  if (names === resp.names) return resp;
  return renames.length ? { ...rekeyTables(resp, renames), names } : { ...resp, names };
}

/** The API's backward_parts of a selection with its tables (terms, term_norms, grad_norms, …)
 *  under the shown names, as displayResponse does for the response. */
export function displayParts(parts, resp, view = {}) {
  if (!parts || !resp) return parts;
  const [, renames] = renamesOf(resp, view);
  return renames.length ? rekeyTables(parts, renames) : parts;
}

/** The label of ∂L/∂hₖ at step k (1-based) as the view writes it: "∂L/∂h3", or "δ⁽³⁾ = ∂L/∂h⁽³⁾". */
export function dhLabel(k, view = {}, h = "h", notation = "canonical") {
  if (!view.deltaH) return `∂L/∂${h}${k}`;
  const hk = notation === "goodfellow" ? `${h}⁽${sup(k)}⁾` : `${h}${k}`;
  return `${deltaSup(k)} = ∂L/∂${hk}`;
}

/** The notes' name of the total ∂L/∂hₖ (k 1-based), δ⁽ᵏ⁾: one spelling for the steps table, the
 *  player's dh_next pass and the formulas that use it. */
export const deltaSup = (k) => `δ⁽${sup(k)}⁾`;

/** ∂L/∂hₖ inside a formula as the view writes it: `plain` (the panel's own name, "∂L/∂h3" or
 *  note 003's "dh₃"), or δ⁽ᵏ⁾ with the notes' names. */
export const dhIn = (k, view, plain) => (view?.deltaH ? deltaSup(k) : plain);
