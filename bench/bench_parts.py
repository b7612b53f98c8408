"""What the formula panel costs now that the API computes its numbers: the round trip of the
request a new selection makes (``"fields": ["backward_parts"]`` with ``select``), and the bytes
the page downloads per change for the panel before (the δ table, ``delta``, which the panel
read to recompute ε and the terms) and after (``backward_parts``, sent with the computation).

Starts ``python -m uvicorn app.main:app`` on a free port (OPENBLAS_NUM_THREADS=1), then for
each case (cell × T, m = 16, n = 4, p = 4, one sequence) alternates rounds of the two requests
and prints the medians and ranges of --repeat round trips (after one warm-up), with the
response sizes. The machine is shared: run it twice and read the ranges.

    python bench/bench_parts.py [--repeat 30]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(cell: str, T: int, m: int = 16, n: int = 4, p: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {"cell": cell, "inputs": rng.standard_normal((T, n)).tolist(), "targets": rng.standard_normal((T, p)).tolist(),
            "init": {"seed": 1, "hidden": m, "outputs": p}}


def main(repeat: int = 30) -> None:
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        J = {"content-type": "application/json"}
        print(f"{'case':<18} {'selection: backward_parts alone':>34} {'bytes':>9}   {'before: delta (T·(T+1)/2·G·m)':>30}")
        with httpx.Client(base_url=base, timeout=120) as c:
            for cell, T in [("vanilla", 32), ("vanilla", 256), ("lstm", 256), ("gru", 256), ("vanilla", 1024)]:
                b = body(cell, T)
                sel = orjson.dumps(b | {"select": {"t": T - 1, "k": T // 2}, "fields": ["backward_parts"]})
                old = orjson.dumps(b | {"fields": ["delta"]})
                times = {"parts": [], "delta": []}
                sizes = {}
                for i in range(repeat + 1):  # alternating rounds; the first is a warm-up
                    for name, payload in (("parts", sel), ("delta", old)):
                        t0 = time.perf_counter()
                        r = c.post("/api/v1/bptt", content=payload, headers=J)
                        dt = (time.perf_counter() - t0) * 1e3
                        assert r.status_code == 200, r.text[:300]
                        sizes[name] = len(r.content)
                        if i:
                            times[name].append(dt)
                fmt = lambda v: f"{statistics.median(v):7.1f} ms [{min(v):.1f}–{max(v):.1f}]"  # noqa: E731
                print(f"{cell + ' T=' + str(T):<18} {fmt(times['parts']):>34} {sizes['parts']:>9,}   "
                      f"{fmt(times['delta'])} {sizes['delta']:>11,} B")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[args.index("--repeat") + 1]) if "--repeat" in args else 30)
