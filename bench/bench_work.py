"""The work estimate's time per unit: BPTT_MAX_WORK counts multiply-adds and elementwise passes
(app/api/parse.py ``_budget``); this runs requests of many shapes in process (one BLAS thread,
as bptt-explorer sets) and prints the compute time per unit of estimated work, so the README can
say what the default BPTT_MAX_WORK means in seconds.

    OPENBLAS_NUM_THREADS=1 python bench/bench_work.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from app.api import respond  # noqa: E402
from app.api.parse import decode, parse  # noqa: E402
from app.engine import run  # noqa: E402
from app.settings import Settings  # noqa: E402


def request(B, T, n, m, p, detail, check, fields):
    rng = np.random.default_rng(0)
    body = {"loss": "mse", "inputs": rng.standard_normal((B, T, n)).tolist(),
            "targets": rng.standard_normal((B, T, p)).tolist(),
            "init": {"seed": 0, "hidden": m, "outputs": p}, "detail": detail, "gradient_check": check}
    if fields:
        body["fields"] = fields
    return orjson.dumps(body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=60.0, help="stop after this many seconds")
    args = ap.parse_args()
    s = Settings(max_full_floats=10**9, max_response_mb=1e6, max_work=1e12)
    cases = []
    for (B, T), m, detail, check, fields in itertools.product(
        [(1, 16), (1, 128), (4, 256), (1, 1024), (16, 64)], [1, 4, 32, 128], ["full", "norms"], [False, True],
        [None, ["delta_norm", "grads"]],
    ):
        if detail == "full" and B * T * T * m > 3e7:
            continue
        cases.append((B, T, 3, m, 2, detail, check, fields))
    rows = []
    t_end = time.monotonic() + args.budget
    for case in cases:
        if time.monotonic() > t_end:
            break
        parsed = parse(decode(request(*case)), s)
        if parsed.work > 2e10:
            continue
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            respond.build(run(parsed.problem), parsed)
            times.append(time.perf_counter() - t0)
        t = min(times)
        rows.append((t / parsed.work * 1e9, t, parsed.work, case))
    rows.sort()
    print(f"{len(rows)} requests (compute and building the response, min of {args.repeat}); ns per unit of work:")
    per = [r[0] for r in rows]
    print(f"  min {per[0]:.3g}, median {statistics.median(per):.3g}, max {per[-1]:.3g}")
    heavy = [r for r in rows if r[2] > 1e8]
    if heavy:
        hp = [r[0] for r in heavy]
        print(f"  requests over 1e8 units ({len(heavy)}): min {hp[0]:.3g}, median {statistics.median(hp):.3g}, "
              f"max {hp[-1]:.3g} ns")
    print("slowest per unit over 1e8 units (the ones BPTT_MAX_WORK is there for):")
    for ns, t, w, case in heavy[-5:]:
        print(f"  {ns:.3g} ns  {t * 1e3:.1f} ms for {w:.3g}  B,T,n,m,p,detail,check,fields={case}")
    print("slowest per unit (small requests: a fixed cost of about a millisecond):")
    for ns, t, w, case in rows[-3:]:
        print(f"  {ns:.3g} ns  {t * 1e3:.1f} ms for {w:.3g}  B,T,n,m,p,detail,check,fields={case}")
    print("fastest per unit:")
    for ns, t, w, case in rows[:3]:
        print(f"  {ns:.3g} ns  {t * 1e3:.1f} ms for {w:.3g}  B,T,n,m,p,detail,check,fields={case}")


if __name__ == "__main__":
    main()
