"""The whole default response's compute at T=64, n=16, m=32, p=8 (vanilla tanh, mse, detail
"full"): ``run`` (core + diagnostics), ``core`` alone, the diagnostics alone (‖J_k‖₂ of every
step, the bound), and the whole bytes→bytes pipeline. Median of --repeat runs, in ms; the
machine's load is printed, since others may share the cores.

Two weight scales: U(±1/√m) (tanh unsaturated) and U(±3/√m) (partly saturated tanh).

    python bench/bench_default.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from bench_engine import SETTINGS, make_body, median_ms, pipeline  # noqa: E402

from app.api.parse import decode, parse  # noqa: E402
from app.engine import diagnostics, run  # noqa: E402
from app.engine.activations import ACTIVATIONS  # noqa: E402
from app.engine.cells import CELLS  # noqa: E402
from app.engine.run import core  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    for scale in (1.0, 3.0):
        body = make_body(64, 16, 32, 8, "full")
        body["params"] = {k: (np.array(v) * scale).tolist() for k, v in body["params"].items()}
        raw = orjson.dumps(body)
        p = parse(decode(raw), SETTINGS).problem
        c = core(p)
        cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
        th = c.theta

        def diag():
            with np.errstate(all="ignore"):
                diagnostics.compute(cell, c.forward, th, c.out.eps_tt, act.gamma)

        figures = {
            "run (core + diagnostics)": median_ms(lambda: run(p), args.repeat),
            "core": median_ms(lambda: core(p), args.repeat),
            "diagnostics": median_ms(diag, args.repeat),
            "bytes→bytes": median_ms(lambda: pipeline(raw), args.repeat),
        }
        print(f"weights U(±{scale:g}/√m):  " + "  ".join(f"{k} {v:.2f} ms" for k, v in figures.items()))


if __name__ == "__main__":
    main()
