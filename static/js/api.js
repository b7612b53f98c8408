// Talking to the REST API (same origin, under the app's root path).

const ROOT = (document.querySelector('meta[name="bptt-root"]')?.content || "").replace(/\/$/, "");

export const url = (path) => `${ROOT}${path}`;

export async function getJSON(path) {
  const r = await fetch(url(path), { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** POST /api/v1/bptt → {ok, status, data | error, ms, timing}; never throws on HTTP errors. */
export async function computeBptt(body, signal) {
  const t0 = performance.now();
  const r = await fetch(url("/api/v1/bptt"), {
    method: "POST", signal, headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await r.json();
  const ms = performance.now() - t0;
  if (r.ok) return { ok: true, status: r.status, data, ms, timing: r.headers.get("server-timing") };
  return { ok: false, status: r.status, error: data.error || { message: `HTTP ${r.status}`, field: null }, ms };
}
