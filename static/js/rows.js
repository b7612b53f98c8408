// One loss row t of the T×T×· tables, as the API sends it with select (delta_row: δ_{t,k};
// delta_h_row: ∂L_t/∂h_k; k ≤ t): the page draws one row at a time, so it never asks for the
// whole tables (at T = 256, m = 16 delta is ~12 MB of JSON, a row ~50 KB). The response's own
// rows are those of the select it was asked with (backward_parts repeats it); a row of another
// t is asked for alone, once, and the views that draw it are drawn again when it comes.
//
//   initRows(hooks)        hooks: { response(), request(), sel(), fields(), redraw() }
//   rowOf(field, t, b)     the row (t + 1 entries); undefined while it is on its way; null when
//                          the API refused it or has none (method rtrl)

import { computeBptt } from "./api.js";

let hooks = null;
const cache = new WeakMap();  // response → Map "t|b" → the data holding the rows
let flight = null;

export function initRows(h) {
  hooks = h;
}

export function rowOf(field, t, b = 0) {
  const resp = hooks?.response();
  if (!resp) return undefined;
  let c = cache.get(resp);
  if (!c) {
    c = new Map();
    cache.set(resp, c);
    const own = resp.backward_parts;
    if (own) c.set(`${own.t}|${own.b}`, resp);
  }
  const key = `${t}|${b}`;
  const have = c.get(key);
  if (have && field in have) return have[field];
  if (flight?.key === key && flight.resp === resp) return undefined;
  flight?.ctl.abort();
  const ctl = new AbortController();
  const mine = { key, resp, ctl };
  flight = mine;
  const fields = [...new Set([field, ...hooks.fields()])];
  const { fields: _f, select: _s, ...body } = hooks.request();
  const select = { t, k: Math.min(hooks.sel().k, t), ...(resp.shapes.batch === null ? {} : { b }) };
  computeBptt({ ...body, select, fields }, ctl.signal).then((res) => {
    if (flight === mine) flight = null;
    // a refusal is kept as "none" (the views say so), not asked again at every redraw
    c.set(key, res.ok ? res.data : Object.fromEntries(fields.map((f) => [f, null])));
    if (hooks.response() === resp) hooks.redraw();
  }).catch((e) => { if (e.name !== "AbortError") console.error("rows", e); });
  return undefined;
}
