// The API's refusals in the page's language, from the machine-readable `code` and `params` of
// the one error shape (app/api/errors.py CODES): never from the English `message`, which the
// page keeps on hover. Every code has an entry (tests/test_page_exercises.py checks them
// against errors.CODES and the zh/en strings err.code.*).

import { lang, tr } from "./i18n.js";

/** The page's names of the fields whose numbers live in a control (not a grid cell). */
const FIELD_NAME = {
  truncation: "err.n.K", "init.seed": "err.n.seed", "init.scale": "err.n.scale",
  "clip.max_norm": "err.n.c", "clip.max_value": "err.n.c", "init.hidden": "size.m", "init.outputs": "size.p",
};

/** Where the error is: "W_hh, row 1, column 2 (params.W_hh[0][1])", "the window K (truncation)", or the path. */
export function where(field) {
  if (!field) return tr("err.where.request");
  const f = field.replace(/^request\./, "");
  const m = /^(?:params\.)?([A-Za-z_.0-9]+?)((?:\[\d+\])+)$/.exec(f);
  if (m) {
    const idx = [...m[2].matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]) + 1);
    const at = idx.length >= 2 ? tr("err.at", { name: m[1], i: idx[idx.length - 2], j: idx[idx.length - 1] })
      : tr("err.at1", { name: m[1], i: idx[0] });
    return tr("err.named", { name: at, field });
  }
  if (FIELD_NAME[f]) return tr("err.named", { name: tr(FIELD_NAME[f]), field });
  return field;
}

const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

function shapeWords(s) {
  if (!Array.isArray(s)) return null;
  if (s.includes(0)) return tr("err.w.empty");
  return s.length === 1 ? tr("err.w.length", { n: s[0] }) : s.join("×");
}

/** What came, from params (got_type, got_value, got_length, got_shape). */
function gotWords(p, err) {
  if (p.got_shape) return shapeWords(p.got_shape);
  switch (p.got_type) {
    case "string":
      // a cell sends what does not read as a finite number as text: 1e400 is a number beyond float64
      if (NUMBER_TEXT.test(p.got_value) && !Number.isFinite(Number(p.got_value))) return tr("err.w.range", { s: p.got_value });
      return tr("err.w.string", { s: `"${p.got_value}"` });
    case "number": case "boolean": return String(p.got_value);
    case "null": return "null";
    case "object": return tr("err.w.object");
    case "array": return tr("err.w.array", { n: p.got_length });
    case "nonfinite": return tr("err.w.nonfinite", { v: p.got_value });
    default: break;
  }
  if (p.got !== undefined && p.got !== null) return String(p.got);
  const g = err.got;
  if (g === null || g === undefined) return null;
  // the API's own words: kept in English; on the Chinese page only when they are numbers and sizes
  return lang() === "en" || !/[A-Za-z]{2,}/.test(g) ? g : null;
}

/** What was expected, from params (expected, min, max, options, shape). */
function whatWords(p, err, code) {
  const big = (x) => x === null || x === undefined || Number(x) >= 2 ** 53;
  switch (p.expected) {
    case "number": return tr(code === "not_finite" ? "err.w.finite" : "err.w.number");
    case "array": return tr("err.w.arrayExp");
    case "square": return tr("err.w.square");
    case "integer":
      if (p.min === 0 && big(p.max)) return tr("err.w.nonneg");
      return big(p.max) ? tr("err.w.intMin", { lo: p.min }) : tr("err.w.intRange", { lo: p.min, hi: p.max });
    case "positive": return p.max === null || p.max === undefined ? tr("err.w.pos") : tr("err.w.posMax", { hi: p.max });
    default: break;
  }
  if (p.shape) return shapeWords(p.shape);
  if (code === "not_finite") return tr("err.w.finite");
  if (code === "not_one_of" && p.options) return tr("err.w.oneof", { options: p.options.join(lang() === "zh" ? "、" : ", ") });
  if (code === "out_of_range" && p.min !== undefined && p.max !== undefined && p.max !== null) return tr("err.w.between", { lo: p.min, hi: p.max });
  return lang() === "en" ? err.expected || null : null;
}

/** "where: expected X, got Y", the lead words of the code when X is not known in this language. */
function expectedGot(code) {
  return (p, err) => {
    const what = whatWords(p, err, code);
    const got = gotWords(p, err);
    const parts = [what ? tr("err.part.expected", { what }) : tr(`err.code.${code}`), got !== null ? tr("err.part.got", { got }) : null];
    return tr("err.sentence", { where: where(err.field), text: parts.filter(Boolean).join(tr("err.comma")) });
  };
}

/** A sentence of its own, with the params (setting, limit, retry_after, name, fields) filled in. */
const said = (code) => (p, err) => tr(`err.code.${code}`, {
  where: where(err.field), setting: p.setting ?? "", limit: p.limit ?? "", got: p.got ?? gotWords(p, err) ?? "",
  retry: p.retry_after ?? "", name: p.name ?? "", fields: (p.fields || []).join(", "), status: err.status ?? "",
});

/** The API's error codes the page says in its own words: code → (params, err) → text. */
export const ERROR_CODES = {
  invalid_json: said("invalid_json"),
  empty_body: said("empty_body"),
  malformed_http: said("malformed_http"),
  wrong_type: expectedGot("wrong_type"),
  wrong_shape: expectedGot("wrong_shape"),
  not_finite: expectedGot("not_finite"),
  not_one_of: expectedGot("not_one_of"),
  out_of_range: expectedGot("out_of_range"),
  unknown_field: said("unknown_field"),
  missing: said("missing"),
  conflict: said("conflict"),
  over_limit: said("over_limit"),
  body_too_large: said("body_too_large"),
  body_incomplete: said("body_incomplete"),
  body_timeout: said("body_timeout"),
  header_timeout: said("header_timeout"),
  headers_too_large: said("headers_too_large"),
  wrong_content_type: said("wrong_content_type"),
  content_encoding: said("content_encoding"),
  rate_limited: said("rate_limited"),
  busy: said("busy"),
  not_found: said("not_found"),
  method_not_allowed: said("method_not_allowed"),
  http_error: said("http_error"),
  invalid_value: expectedGot("invalid_value"),
  not_acceptable: said("not_acceptable"),
  internal_error: said("internal_error"),
};
