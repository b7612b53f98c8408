"""BPTT against RTRL in process, as T and m grow: the same gradients (checked), their time and the
peak memory the engine allocates (tracemalloc), for the vanilla cell and the LSTM.

BPTT is timed as a request for the gradients only (no δ table kept, no per-step gradients, no
diagnostics): the dh_next-like cost O(T m²), memory O(T m); RTRL as method "rtrl": time
O(T · S² · |θ|), memory O(S · |θ|), S the state size (m; 2m for the LSTM). n = m, p = 4, one
sequence, mse on every step. Median of --repeat runs in ms.

    python bench/bench_rtrl.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from app.engine import Problem, rtrl, run  # noqa: E402
from app.engine.cells import CELLS  # noqa: E402


def problem(cell: str, T: int, m: int) -> Problem:
    rng = np.random.default_rng(0)
    n, p = m, 4
    c = CELLS[cell]
    s = 1 / np.sqrt(m)
    params = {sp.name: rng.uniform(-s, s, sp.shape(n, m)) for sp in c.specs(n, m)}
    params |= {"W_hy": rng.uniform(-s, s, (p, m)), "b_y": np.zeros(p)}
    return Problem(cell=cell, activation="tanh", loss="mse", notation="canonical", params=params,
                   X=rng.standard_normal((1, T, n)), h0=np.zeros((1, m)), mask=np.ones(T, bool),
                   Y=rng.standard_normal((1, T, p)), detail="norms", delta=False, delta_norm=False,
                   per_step=False, diagnostics=False)


def measure(p: Problem, repeat: int) -> tuple[float, float]:
    run(p)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(p)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    run(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times) * 1e3, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    print("| cell | T | m | BPTT ms | RTRL ms | BPTT MiB | RTRL MiB | RTRL work (mult-adds) | max rel diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell in ("vanilla", "lstm"):
        for T, m in ((16, 8), (64, 8), (256, 8), (64, 16), (64, 32)):
            p = problem(cell, T, m)
            b, r = run(p), run(dataclasses.replace(p, method="rtrl"))
            diff = max(float(np.abs(r.grads[k] - g).max() / max(np.abs(g).max(), 1e-300)) for k, g in b.grads.items())
            tb, mb = measure(p, args.repeat)
            tr, mr = measure(dataclasses.replace(p, method="rtrl"), args.repeat)
            w = rtrl.work(CELLS[cell], 1, T, m, m)
            print(f"| {cell} | {T} | {m} | {tb:.2f} | {tr:.2f} | {mb:.2f} | {mr:.2f} | {w:.3g} | {diff:.1e} |")


if __name__ == "__main__":
    main()
