"""What the labs page waits for: each lab's requests with its default settings, in process
(TestClient: parse, compute, serialise; no network), medians and ranges over rounds taken in
alternation, the machine's load first.

    python bench/bench_labs.py [--rounds 5] [--train]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

CELLS = {"task": {"name": "recall", "delay": 49, "seed": 0}, "init": {"seed": 0, "hidden": 16, "outputs": 4},
         "keep_bias": 3, "cells": ["vanilla", "residual", "lstm", "gru"]}
SWEEP = {"task": {"name": "sum", "T": 40, "seed": 0}, "init": {"seed": 0, "hidden": 16}, "activation": "tanh",
         "radii": [0.5, 1, 1.5, 2, 3]}
COMPARE = {"cell": "vanilla", "init": {"seed": 0, "hidden": 16}, "reduction": "mean",
           "task": {"name": "echo", "T": 20, "delay": 8, "seed": 0}, "truncation": {"kind": "window", "K": 4},
           "seed": 0, "draws": 100}


def remedies(c: TestClient) -> list[tuple[str, str, dict]]:
    init = c.post("/api/v1/compare-cells", json={"task": {"name": "recall", "delay": 40, "seed": 0},
                                                  "init": {"seed": 0, "hidden": 16}, "cells": ["vanilla", "lstm", "gru"],
                                                  "keep_bias": {"lstm": 3}}).json()
    return [(f"train {cell} (recall, delay 40, 300 updates)", "/api/v1/train",
             {"cell": cell, "params": init["cells"][cell]["params"], "task": {"name": "recall", "delay": 40, "seed": 0},
              "reduction": "mean", "optimizer": {"name": "adam", "lr": 0.01}, "updates": 300, "seed": 0})
            for cell in ("vanilla", "lstm", "gru")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--train", action="store_true", help="also the remedies lab's three training runs")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores")
    c = TestClient(create_app(Settings()))
    cases = [("compare-cells T=50, m=16, 4 cells", "/api/v1/compare-cells", CELLS),
             ("radius-sweep T=40, m=16, 5 radii", "/api/v1/radius-sweep", SWEEP),
             ("compare-gradients T=20, m=16, N=32, 100 draws", "/api/v1/compare-gradients", COMPARE)]
    if a.train:
        cases += remedies(c)
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    sizes = {}
    for _ in range(a.rounds):
        for name, path, body in cases:
            t0 = time.perf_counter()
            r = c.post(path, json=body)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text[:300]
            sizes[name] = len(r.content)
    for name, ts in times.items():
        print(f"{name:55s} median {statistics.median(ts):8.1f} ms  ({min(ts):.1f}–{max(ts):.1f})  {sizes[name] / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
