"""HTTP benchmark: the round trip of POST /api/v1/bptt on the real server, against PyTorch
autograd computing the same numbers in-process (the functions of bench_engine.py).

Starts ``python -m uvicorn app.main:app --loop uvloop --http app.framing:HttpToolsProtocol``
(httptools, as ``bptt-explorer`` runs it) on a free port,
waits for GET /healthz, then for the two cases of bench_engine.py (full: T=64, n=16, m=32,
p=8; norms: T=512, m=64), each asked for the whole response and for only the fields PyTorch
computes (full: delta, grads; norms: delta_norm, grads), times the round trip with each client
(a keep-alive httpx.Client reading the body streamed; a keep-alive http.client.HTTPConnection,
the standard library's client, less Python per byte read) and each decoder (orjson.loads into
Python lists; for fields ["delta", "grads"] also pysimdjson into numpy arrays, no Python object per number,
when it is installed: the bench extra). The body is posted as orjson bytes. Prints the median
of --repeat round trips (after one warm-up), the server's own Server-Timing split (parse, compute, serialize), request and response sizes, a check of the
response's δ table, summed gradients and (whole full response) per-step gradients against
PyTorch, and the PyTorch medians (the variants of bench_engine.py that compute those same
numbers). The server is stopped at the end. "HTTP round trip" includes what the server does
beyond computing (parse, build and serialize the JSON response) and what the client does
(read and decode the body).

--blas-threads N starts the server with OPENBLAS_NUM_THREADS=N (one process per core in
production: 1 is the realistic setting); PyTorch in this process keeps its default threads.

    python bench/bench_http.py [--repeat 100] [--repeat-norms 5] [--blas-threads N]
"""

from __future__ import annotations

import http.client
import re
import statistics
import sys
from itertools import product
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


def numpy_decoder():
    """simdjson (pysimdjson) → numpy, or None when pysimdjson is not installed. Parses the whole
    document (every number, validated) and copies each array's doubles into numpy without making
    a Python object per number: the δ rows (ragged: row t holds t + 1 vectors of m) and the summed
    gradients; every other field becomes Python objects. For the response to fields
    ["delta", "grads"]: as_buffer refuses null (overflow: a client checks ``nonfinite`` first)."""
    try:
        import simdjson
    except ImportError:
        return None
    parser = simdjson.Parser()

    def plain(v):
        return v.as_dict() if isinstance(v, simdjson.Object) else v.as_list() if isinstance(v, simdjson.Array) else v

    def decode(raw: bytes) -> dict:
        doc = parser.parse(raw)
        out = {k: plain(doc[k]) for k in doc.keys() if k not in ("delta", "grads")}  # (items() would make lists of all)
        T, n, m, p = (out["shapes"][k] for k in "Tnmp")
        shape = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,), "h0": (m,),
                 "inputs": (T, n)}
        flat = np.frombuffer(doc["delta"].as_buffer(of_type="d")).reshape(-1, m)
        out["delta"] = np.split(flat, np.cumsum(np.arange(1, T)))  # row t: (t + 1) × m
        out["grads"] = {k: np.frombuffer(doc["grads"][k].as_buffer(of_type="d")).reshape(s) for k, s in shape.items()}
        return out

    return decode


#: the server as ``bptt-explorer`` runs it (uvloop, httptools): the benches' real server
SERVER_ARGS = ("--loop", "uvloop", "--http", "app.framing:HttpToolsProtocol")


class Clients:
    """The two keep-alive clients, each posting the same orjson body and returning the raw
    response: ``via_httpx(client)`` (the body read streamed; the Server-Timing header kept in
    ``timings``) and ``via_stdlib()`` (http.client, less Python per byte read)."""

    HEADERS = {"content-type": "application/json"}

    def __init__(self, base: str, raw: bytes):
        url = urlsplit(base)
        self.raw, self.timings = raw, []
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def via_httpx(self, client: httpx.Client) -> bytes:
        # streamed: r.content on a non-streamed response costs ~0.5 ms more per 1.5 MB (extra copies)
        with client.stream("POST", "/api/v1/bptt", content=self.raw, headers=self.HEADERS) as r:
            r.raise_for_status()
            self.timings.append(r.headers["server-timing"])
            return b"".join(r.iter_bytes())

    def via_stdlib(self) -> bytes:
        self.conn.request("POST", "/api/v1/bptt", body=self.raw, headers=self.HEADERS)
        r = self.conn.getresponse()
        out = r.read()
        assert r.status == 200, out[:200]
        return out

    def close(self) -> None:
        self.conn.close()


def bench_case(base: str, case: dict, repeat: int, fields: list[str] | None = None) -> dict:
    """Time the round trip (of the response with only ``fields`` when given) with each client and
    decoder; return what the PyTorch part needs."""
    body = make_body(**case) | ({} if fields is None else {"fields": fields})
    raw = orjson.dumps(body)
    clients = Clients(base, raw)
    timings, via_httpx, via_stdlib = clients.timings, clients.via_httpx, clients.via_stdlib

    decoders = {"orjson": orjson.loads}
    numpy_decode = numpy_decoder()
    if numpy_decode is not None and fields == ["delta", "grads"]:
        decoders["simdjson → numpy"] = numpy_decode
    with httpx.Client(base_url=base, timeout=120) as client:
        reply = via_httpx(client)
        doc = orjson.loads(reply)
        assert doc["shapes"]["T"] == case["T"] and not doc["nonfinite"]
        if "simdjson → numpy" in decoders:  # the same document, the same numbers bit for bit
            arrays = decoders["simdjson → numpy"](reply)
            assert arrays.keys() == doc.keys() and arrays["grads"].keys() == doc["grads"].keys()
            assert all(arrays[k] == doc[k] for k in doc if k not in ("delta", "grads"))
            assert len(arrays["delta"]) == len(doc["delta"])
            assert all(np.array_equal(a, b) for a, b in zip(arrays["delta"], doc["delta"]))
            assert all(np.array_equal(arrays["grads"][k], doc["grads"][k]) for k in doc["grads"])
        ms = {}
        for (cname, get), (dname, dec) in product(
                (("httpx", lambda: via_httpx(client)), ("http.client", via_stdlib)), decoders.items()):
            ms[f"HTTP round trip, {cname} + {dname}"] = median_ms(lambda: dec(get()), repeat)
    clients.close()
    split = {name: statistics.median(float(re.search(name + r";dur=([\d.]+)", s)[1]) for s in timings[1:])
             for name in ("parse", "compute", "serialize")}
    return {"case": case, "repeat": repeat, "body": body, "doc": doc, "fields": fields, "http": ms,
            "sizes": f"  request {len(raw):,} bytes, response {len(reply):,} bytes",
            "split": "  server-timing (ms) " + ", ".join(f"{k} {v:.2f}" for k, v in split.items())}


def main() -> None:
    args = arguments(__doc__, "of the server")
    print(f"before the round trips: {machine()}")
    env = {} if args.blas_threads is None else {"OPENBLAS_NUM_THREADS": str(args.blas_threads)}
    with running_server(env=env, args=SERVER_ARGS) as base:
        runs = [bench_case(base, FULL, args.repeat), bench_case(base, FULL, args.repeat, FIELDS_OF["full"]),
                bench_case(base, NORMS, args.repeat_norms),
                bench_case(base, NORMS, args.repeat_norms, FIELDS_OF["norms"])]
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
