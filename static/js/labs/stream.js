// The labs' client of the API: JSON posts, and POST /api/v1/train read as NDJSON while it
// streams. At most BPTT_TRAIN_MAX_RUNS runs are in flight from this page (the server's limit
// per worker, from the page's meta tag); more wait their turn here, and a 503 from the server
// (another tab, another student) is retried after its Retry-After. Aborting the signal stops
// the fetch, and the server stops the run.

import { url } from "../api.js";

const MAX_RUNS = Math.max(1, Number(document.querySelector('meta[name="bptt-train-max-runs"]')?.content || 2));
let inFlight = 0;
const waiting = [];

export class ApiFailure extends Error {
  constructor(error) { super(error?.message || "API error"); this.error = error || {}; }
}

const aborted = () => new DOMException("aborted", "AbortError");

function acquire(signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const go = () => { inFlight++; resolve(); };
    if (inFlight < MAX_RUNS) return go();
    waiting.push(go);
    signal?.addEventListener("abort", () => {
      const i = waiting.indexOf(go);
      if (i >= 0) { waiting.splice(i, 1); reject(aborted()); }
    }, { once: true });
  });
}

function release() {
  inFlight--;
  const next = waiting.shift();
  if (next) next();
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const id = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(id); reject(aborted()); }, { once: true });
  });
}

/** POST a JSON body → the answer's JSON; throws ApiFailure with the API's error. */
export async function postJSON(path, body, signal) {
  const r = await fetch(url(path), {
    method: "POST", signal, headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) throw new ApiFailure(data.error);
  return data;
}

/** One training run: onLine(line) for every NDJSON line as it arrives; resolves with the done
 *  line. An error line midway, or a refusal, throws ApiFailure. */
export async function train(body, { signal, onLine }) {
  await acquire(signal);
  try {
    for (;;) {
      const r = await fetch(url("/api/v1/train"), {
        method: "POST", signal, headers: { "content-type": "application/json", accept: "application/x-ndjson" },
        body: JSON.stringify(body),
      });
      if (r.status === 503) {  // the server's runs are taken (another page): wait and retry
        const wait = Number(r.headers.get("retry-after")) || 2;
        await r.body?.cancel();
        await sleep(wait * 1000, signal);
        continue;
      }
      if (!r.ok) throw new ApiFailure((await r.json()).error);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "", done = null;
      const take = (text) => {
        if (!text.trim()) return;
        const line = JSON.parse(text);
        if (line.error) throw new ApiFailure(line.error);
        if (line.done) done = line;
        onLine(line);
      };
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) { take(buf.slice(0, i)); buf = buf.slice(i + 1); }
      }
      take(buf);
      return done;
    }
  } finally {
    release();
  }
}
