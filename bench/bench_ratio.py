"""The issue's HTTP goal, measured in alternating rounds: the round trip of the δ table +
summed gradients request (T=64, n=16, m=32, p=8, fields ["delta", "grads"]) against PyTorch
computing the same numbers in-process, each round timing both sides back to back.

bench_http.py times every client first and PyTorch minutes later; on a machine whose speed
drifts (this kind's does, by up to 2× from day to day and by tens of per cent within minutes)
the ratio of two medians taken apart carries the drift. Here each round takes the medians of
--repeat round trips and of --repeat PyTorch runs (its fastest variant for these numbers,
picked in a first pass) back to back, PyTorch after the round trips in even rounds and before
them in odd ones (ABBA: a steady drift cancels), so both figures of a round share the
machine's state; the spread of the per-round ratios is the measurement's own uncertainty.

The round trip is the real server (one uvicorn process, uvloop + httptools, one BLAS thread:
one process per core, the production setting), a keep-alive client posting orjson bytes, and
the body decoded: http.client + pysimdjson into numpy (every number parsed, no Python object
per number) and httpx + orjson into Python lists. The response is checked against PyTorch
first (max |Δ| < 1e-10), and the two decoders against each other (bit for bit).

    python bench/bench_ratio.py [--rounds 8] [--repeat 50]   (the README's figures: --rounds 10 --repeat 60)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402  (the tests' real-server helper)
from bench_engine import (  # noqa: E402
    FIELDS_OF, FULL, TORCH_SUMMED_VARIANTS, have_torch, machine, make_body, median_ms, verify_torch,
)
from bench_http import SERVER_ARGS, Clients, from_response, numpy_decoder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    ap.add_argument("--repeat", type=int, default=50, help="runs per figure per round (default 50)")
    args = ap.parse_args()
    decode_numpy = numpy_decoder()
    if not have_torch() or decode_numpy is None:
        sys.exit("needs the bench extra: pip install -e '.[bench]' (PyTorch, pysimdjson)")

    body = make_body(**FULL) | {"fields": FIELDS_OF["full"]}
    raw = orjson.dumps(body)
    with running_server(env={"OPENBLAS_NUM_THREADS": "1"}, args=SERVER_ARGS) as base:
        clients = Clients(base, raw)
        client = httpx.Client(base_url=base, timeout=120)

        def stdlib_simdjson():
            return decode_numpy(clients.via_stdlib())

        def httpx_orjson():
            return orjson.loads(clients.via_httpx(client))

        doc = httpx_orjson()
        assert not doc["nonfinite"]
        arrays = stdlib_simdjson()  # the other decoder: the same numbers, bit for bit
        assert all(np.array_equal(a, b) for a, b in zip(arrays["delta"], doc["delta"], strict=True))
        assert all(np.array_equal(arrays["grads"][k], doc["grads"][k]) for k in doc["grads"])
        ok = verify_torch(body, False, from_response(doc, False), TORCH_SUMMED_VARIANTS)
        if not ok:
            sys.exit("VERIFICATION FAILED: the response and PyTorch differ")
        # PyTorch's fastest variant for these numbers, picked once; every round times it
        first = {name: median_ms(lambda fn=fn: fn(body, False), 10) for name, fn in TORCH_SUMMED_VARIANTS.items()}
        name = min(first, key=first.get)
        torch_fn = TORCH_SUMMED_VARIANTS[name]
        print(f"PyTorch's fastest here: {name} ({', '.join(f'{k} {v:.1f}' for k, v in first.items())} ms)")
        print(f"{args.rounds} rounds, medians of {args.repeat} runs (ms); request {len(raw):,} bytes")
        print(f"{'round':>5} {'http.client+simdjson':>21} {'httpx+orjson':>13} {'PyTorch':>8} "
              f"{'ratio (simdjson)':>17} {'ratio (orjson)':>15}")
        ratios_simd, ratios_orjson = [], []
        for i in range(args.rounds):
            # ABBA: PyTorch last in even rounds, first in odd ones, so a steady drift cancels
            t = median_ms(lambda: torch_fn(body, False), args.repeat) if i % 2 else None
            a = median_ms(stdlib_simdjson, args.repeat)
            b = median_ms(httpx_orjson, args.repeat)
            if t is None:
                t = median_ms(lambda: torch_fn(body, False), args.repeat)
            ratios_simd.append(t / a)
            ratios_orjson.append(t / b)
            print(f"{i + 1:>5} {a:21.2f} {b:13.2f} {t:8.2f} {t / a:16.2f}× {t / b:14.2f}×", flush=True)
        client.close()
        clients.close()
    print(f"after: {machine()}")
    for label, r in (("http.client + simdjson → numpy", ratios_simd), ("httpx + orjson", ratios_orjson)):
        print(f"PyTorch ÷ round trip, {label}: median {statistics.median(r):.2f}×, "
              f"min {min(r):.2f}×, max {max(r):.2f}× over {len(r)} rounds")


if __name__ == "__main__":
    main()
