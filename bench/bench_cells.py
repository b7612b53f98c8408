"""What the page's cell views cost the API: the page's own request with and without
``delta_h_norm`` (the graph's colours; the vanilla and residual cells take it from their fast
loop too), and the ``methods`` field (BPTT beside RTRL) as m grows. In-process (TestClient), in
alternating rounds; prints the median and range of the server's compute time (Server-Timing)
and the response size.

    PYTHONPATH=. python bench/bench_cells.py [rounds]     (OPENBLAS_NUM_THREADS=1 as the CLI sets it)
"""

from __future__ import annotations

import os
import statistics
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as app/cli.py: before numpy is imported

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app

PAGE = ["params", "forward", "delta_norm", "eps_tt", "clip", "diagnostics", "delta", "e", "grads", "grads_per_step", "dz", "dh"]


def timing(r) -> dict[str, float]:
    out = {}
    for part in r.headers["server-timing"].split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur.split(";")[0])  # (an entry may carry ;desc="…" after its duration)
    return out


def body(cell: str, T: int, m: int, n: int = 4, **extra) -> dict:
    rng = np.random.default_rng(0)
    return {"cell": cell, "inputs": rng.normal(size=(T, n)).round(3).tolist(),
            "targets": rng.normal(size=(T, 2)).round(3).tolist(), "init": {"seed": 0, "hidden": m}} | extra


def main(rounds: int) -> None:
    c = TestClient(create_app())
    cases = {
        f"{cell} T={T} m={m} page fields{' + delta_h_norm' if dh else ''}":
            body(cell, T, m, fields=PAGE + (["delta_h_norm"] if dh else []))
        for cell, T, m in (("vanilla", 32, 16), ("vanilla", 256, 16), ("lstm", 50, 8), ("lstm", 256, 16))
        for dh in (False, True)
    }
    for cell, m in (("vanilla", 8), ("lstm", 8), ("lstm", 16), ("gru", 32)):
        cases[f"{cell} T=50 m={m} methods"] = body(cell, 50, m, fields=["methods"])
    got: dict[str, list] = {k: [] for k in cases}
    for _ in range(rounds):  # alternating: every case once per round
        for name, b in cases.items():
            r = c.post("/api/v1/bptt", json=b)
            assert r.status_code == 200, r.text
            t = timing(r)
            got[name].append((t["compute"], len(r.content), t.get("bptt"), t.get("rtrl"), r.json().get("detail")))
    print(f"{rounds} rounds, medians [min–max] of Server-Timing compute (ms)")
    for name, rows in got.items():
        comp = [x[0] for x in rows]
        line = f"{name:48s} compute {statistics.median(comp):8.2f} [{min(comp):.2f}–{max(comp):.2f}]  {rows[0][1] / 1e6:6.2f} MB  detail {rows[0][4]}"
        if rows[0][2] is not None:
            b, rt = [x[2] for x in rows], [x[3] for x in rows]
            line += f"  bptt {statistics.median(b):.3f} ms, rtrl {statistics.median(rt):.3f} ms"
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
