// Reading POST /api/v1/train's NDJSON stream as it arrives (fetch + ReadableStream).
// Reusable: the training view and the labs import it. Aborting the signal closes the
// connection, and the server stops the run at once (it checks between slices of ~50 ms).

import { url } from "../api.js";

/** Each JSON line of a streamed response body, as it arrives (a partial last line waits). */
export async function* ndjsonLines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) yield JSON.parse(line);
      }
    }
    if (buf.trim()) yield JSON.parse(buf);
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** POST body to /api/v1/train and call onLine(line) for every line, in order.
 *  Resolves {ok: true, done: the done line | null, aborted} or, when the API refused the
 *  request before streaming, {ok: false, status, error} (the one error shape). An error
 *  midway arrives as a line {error: …} and ends the stream ({ok: false, status: 200, error}).
 *  Never throws on HTTP errors or on abort; a network failure gives {ok: false, status: 0}. */
export async function streamTrain(body, { signal, onLine = () => {} } = {}) {
  let r;
  try {
    r = await fetch(url("/api/v1/train"), {
      method: "POST", signal,
      headers: { "content-type": "application/json", accept: "application/x-ndjson" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") return { ok: true, done: null, aborted: true };
    return { ok: false, status: 0, error: { message: String(e), field: null } };
  }
  if (!r.ok) {
    let error = { message: `HTTP ${r.status}`, field: null };
    try { error = (await r.json()).error || error; } catch { /* not JSON */ }
    return { ok: false, status: r.status, error, retryAfter: r.headers.get("retry-after") };
  }
  let done = null;
  try {
    for await (const line of ndjsonLines(r)) {
      if (line.error) return { ok: false, status: 200, error: line.error };
      if (line.done) done = line;
      onLine(line);
    }
  } catch (e) {
    if (e.name === "AbortError" || signal?.aborted) return { ok: true, done, aborted: true };
    return { ok: false, status: 0, error: { message: String(e), field: null } };
  }
  return { ok: true, done, aborted: false };
}
