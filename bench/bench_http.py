"""HTTP benchmark: the round trip of POST /api/v1/bptt on the real server, against PyTorch
autograd computing the same numbers in-process (the functions of bench_engine.py).

Starts ``python -m uvicorn app.main:app --loop uvloop --http httptools`` on a free port,
waits for GET /healthz, then for the two cases of bench_engine.py (full: T=64, n=16, m=32,
p=8; norms: T=512, m=64), each asked for the whole response and for only the fields PyTorch
computes (full: delta, grads; norms: delta_norm, grads), times the round trip with one
keep-alive httpx.Client, then with a keep-alive http.client.HTTPConnection (the standard
library's client: less Python per byte read): the body is posted as orjson bytes and the
response decoded with orjson.loads. Prints the median of --repeat round trips (after one warm-up), the server's own
Server-Timing split (parse, compute, serialize), request and response sizes, a check of the
response's δ table, summed gradients and (whole full response) per-step gradients against
PyTorch, and the PyTorch medians (the variants of bench_engine.py that compute those same
numbers). The server is stopped at the end. "HTTP round trip" includes what the server does
beyond computing (parse, build and serialize the JSON response) and what the client does
(read and orjson.loads the body).

--blas-threads N starts the server with OPENBLAS_NUM_THREADS=N (one process per core in
production: 1 is the realistic setting); PyTorch in this process keeps its default threads.

    python bench/bench_http.py [--repeat 100] [--repeat-norms 5] [--blas-threads N]
"""

from __future__ import annotations

import http.client
import re
import statistics
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402  (the tests' real-server helper)
from bench_engine import (  # noqa: E402
    FIELDS_OF, FULL, NORMS, PARAMS, TORCH_SUMMED_VARIANTS, TORCH_VARIANTS, arguments, have_torch, machine,
    make_body, median_ms, print_times, time_torch, title, verify_torch,
)

ROOT = Path(__file__).resolve().parent.parent


def from_response(doc: dict, norms: bool):
    """The response's δ table (T, T, m), or ‖δ‖ (T, T) when norms, its summed gradients and
    its per-step gradients (None when norms)."""
    grads = {k: np.array(doc["grads"][k]) for k in PARAMS}
    if norms:
        table = np.nan_to_num(np.array(doc["delta_norm"], dtype=float))  # null above the diagonal
        return table, grads, None
    rows = doc["delta"]
    table = np.zeros((len(rows), len(rows), len(rows[0][0])))
    for t, row in enumerate(rows):
        table[t, : t + 1] = row
    if "grads_per_step" not in doc:  # a request with fields
        return table, grads, None
    return table, grads, {k: np.array(doc["grads_per_step"][k]) for k in PARAMS}


def bench_case(client: httpx.Client, case: dict, repeat: int, fields: list[str] | None = None) -> dict:
    """Time the round trip (of the response with only ``fields`` when given); return what the
    PyTorch part needs."""
    body = make_body(**case) | ({} if fields is None else {"fields": fields})
    raw = orjson.dumps(body)
    timings: list[str] = []
    last: dict = {}

    def round_trip() -> None:
        r = client.post("/api/v1/bptt", content=raw, headers={"content-type": "application/json"})
        r.raise_for_status()
        last.update(doc=orjson.loads(r.content), size=len(r.content))
        timings.append(r.headers["server-timing"])

    ms = median_ms(round_trip, repeat)
    split = {name: statistics.median(float(re.search(name + r";dur=([\d.]+)", s)[1]) for s in timings[1:])
             for name in ("parse", "compute", "serialize")}
    # the same with the standard library's client, which costs less per byte read than httpx
    url = urlsplit(str(client.base_url))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def round_trip_stdlib() -> None:
        conn.request("POST", "/api/v1/bptt", body=raw, headers={"content-type": "application/json"})
        r = conn.getresponse()
        doc = orjson.loads(r.read())
        assert r.status == 200 and doc["shapes"]["T"] == case["T"]

    ms_stdlib = median_ms(round_trip_stdlib, repeat)
    conn.close()
    return {"case": case, "repeat": repeat, "body": body, "doc": last["doc"], "fields": fields,
            "http": {"HTTP round trip, httpx": ms, "HTTP round trip, http.client": ms_stdlib},
            "sizes": f"  request {len(raw):,} bytes, response {last['size']:,} bytes",
            "split": "  server-timing (ms) " + ", ".join(f"{k} {v:.2f}" for k, v in split.items())}


def main() -> None:
    args = arguments(__doc__, "of the server")
    print(f"before the round trips: {machine()}")
    env = {} if args.blas_threads is None else {"OPENBLAS_NUM_THREADS": str(args.blas_threads)}
    with running_server(env=env, args=("--loop", "uvloop", "--http", "httptools")) as base, \
            httpx.Client(base_url=base, timeout=120) as client:
        runs = [bench_case(client, FULL, args.repeat), bench_case(client, FULL, args.repeat, FIELDS_OF["full"]),
                bench_case(client, NORMS, args.repeat_norms),
                bench_case(client, NORMS, args.repeat_norms, FIELDS_OF["norms"])]
    torch = have_torch()
    server_blas = "unset" if args.blas_threads is None else args.blas_threads
    print(f"server: one uvicorn process, OPENBLAS_NUM_THREADS {server_blas}")
    for r in runs:
        norms = r["case"]["detail"] == "norms"
        what = "the whole response" if r["fields"] is None else f"fields {r['fields']}"
        print("\n".join((title(r["case"], r["repeat"]) + f", {what}", r["sizes"], r["split"])))
        if not torch:
            print("\n".join(f"  {k} {v:.2f}" for k, v in r["http"].items()))
            continue
        # PyTorch computes the numbers of the response: with per-step gradients (the whole full
        # response) or without them (fields, norms)
        variants = TORCH_SUMMED_VARIANTS if r["fields"] is not None and not norms else TORCH_VARIANTS
        ok = verify_torch(r["body"], norms, from_response(r["doc"], norms), variants)
        print_times(r["http"] | time_torch(r["body"], norms, r["repeat"], variants), ok)


if __name__ == "__main__":
    main()
