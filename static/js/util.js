// Small helpers shared by the page's modules.

/** mulberry32: a tiny seeded PRNG, so random inputs are reproducible from a seed. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(next) {
  const u = Math.max(next(), 1e-12), v = next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** A number for people: 4 significant digits, real minus sign, null → "—". */
export function fmt(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (x === 0) return "0";
  const a = Math.abs(x);
  const s = a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(digits))) : x.toExponential(digits - 1);
  return s.replaceAll("-", "−");
}

export const clone = (x) => JSON.parse(JSON.stringify(x));

export function shape(a) {
  const s = [];
  while (Array.isArray(a)) { s.push(a.length); a = a[0]; }
  return s;
}

/** Resize a 2-D array to rows × cols, keeping what fits and filling the rest with fill(). */
export function resize2(a, rows, cols, fill) {
  const out = [];
  for (let i = 0; i < rows; i++) {
    const src = Array.isArray(a) && Array.isArray(a[i]) ? a[i] : [];
    const row = [];
    for (let j = 0; j < cols; j++) row.push(j < src.length && typeof src[j] === "number" ? src[j] : fill(i, j));
    out.push(row);
  }
  return out;
}

export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url; a.download = name;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function debounce(fn, ms) {
  let id = null;
  return (...args) => { clearTimeout(id); id = setTimeout(() => fn(...args), ms); };
}

/** Plotly's math-free label for a parameter name: W_hh → W<sub>hh</sub>, Waa → W<sub>aa</sub>. */
export function subName(name) {
  const m = /^([A-Za-z])_?([a-z]{1,2})$/.exec(name);
  return m ? `${m[1]}<sub>${m[2]}</sub>` : name;
}

export async function toBase64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let data = bytes;
  if (typeof CompressionStream !== "undefined") {
    const s = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate-raw"));
    data = new Uint8Array(await new Response(s).arrayBuffer());
  }
  let bin = "";
  for (const b of data) bin += String.fromCharCode(b);
  return (typeof CompressionStream !== "undefined" ? "z" : "p") + btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export async function fromBase64Url(s) {
  const kind = s[0];
  const b64 = s.slice(1).replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (kind === "z") {
    const st = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new TextDecoder().decode(await new Response(st).arrayBuffer());
  }
  return new TextDecoder().decode(bytes);
}
