"""Training speed at a classroom size: updates per second of POST /api/v1/train over HTTP (a
real uvicorn server, one process) against PyTorch's own training loop in this process.

The case (issue 13): vanilla tanh RNN, T = 20, m = 16, n = p = 1, the echo task (delay 3) with
N = 32 sequences as one batch of 32, mse (mean), Adam lr 1e-3, float64 on both sides (the same
numbers: the stream's first loss is checked against PyTorch's). PyTorch is the faster of
nn.RNN + nn.Linear and a plain autograd loop (torch.tanh of the cell written out), each with
torch.optim.Adam, at float64 (the same numbers) and, for reference, float32.

Rounds alternate ours and PyTorch's back to back (the machine's speed drifts); each figure is
the median over rounds. Ours is timed from sending the request to the done line, with
report_every = updates (two lines) and with report_every = 1 (a line per update).

    python bench/bench_train.py [--updates 1000] [--rounds 5] [--blas-threads 1] [--cell vanilla]

--cell lstm (or gru): the same case with that cell on both sides (PyTorch: nn.LSTM / nn.GRU
with nn.Linear, and for the LSTM a plain autograd loop of its gates written out).

With --compare-blas M1,M2,…: ours only, at each hidden size m, two servers side by side with
OPENBLAS_NUM_THREADS unset (OpenBLAS's default: a thread per core), one with
BPTT_TRAIN_BLAS_THREADS=0 (BLAS left as it is) and one with =1 (one BLAS thread inside the
training slices), alternating rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

import torch  # noqa: E402

from app.engine.cells import CELLS  # noqa: E402
from app.engine.init import init_params  # noqa: E402
from app.engine.train import tasks as TK  # noqa: E402

T, M, B = 20, 16, 32
#: the cell of the case (--cell)
CELL = "vanilla"


def body(updates: int, report_every: int, m: int = M) -> dict:
    return {
        "cell": CELL, "init": {"seed": 0, "hidden": m}, "task": {"name": "echo", "T": T, "N": B, "seed": 0},
        "reduction": "mean", "optimizer": {"name": "adam", "lr": 1e-3}, "updates": updates,
        "report_every": report_every,
    }


def ours(base: str, updates: int, report_every: int, m: int = M) -> tuple[float, float]:
    """(seconds from request to the done line, the first reported loss)."""
    t0 = time.perf_counter()
    first = None
    with httpx.stream("POST", base + "/api/v1/train", json=body(updates, report_every, m), timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            doc = orjson.loads(line)
            if first is None:
                first = doc["loss"]
            if doc.get("done"):
                break
    return time.perf_counter() - t0, first


def torch_setup(dtype):
    task = TK.make("echo", T=T, N=B, seed=0)
    theta = init_params("canonical", 0, 1, M, 1, None, None if CELL == "vanilla" else CELLS[CELL])
    X = torch.tensor(task.inputs, dtype=dtype)
    Y = torch.tensor(task.targets, dtype=dtype)
    w = torch.tensor(task.mask / (task.mask.sum() * B), dtype=dtype)  # reduction mean
    return theta, X, Y, w


def torch_nn(updates: int, dtype) -> tuple[float, float]:
    theta, X, Y, w = torch_setup(dtype)
    rnn = {"vanilla": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[CELL](1, M, batch_first=True).to(dtype)
    lin = torch.nn.Linear(M, 1).to(dtype)
    with torch.no_grad():
        if CELL == "vanilla":
            rnn.weight_ih_l0.copy_(torch.tensor(theta["W_xh"]))
            rnn.weight_hh_l0.copy_(torch.tensor(theta["W_hh"]))
            rnn.bias_ih_l0.copy_(torch.tensor(theta["b_h"]))
            rnn.bias_hh_l0.zero_()
        else:  # the gated cells' canonical parameters are PyTorch's own
            for k, name in (("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
                getattr(rnn, name).copy_(torch.tensor(theta[k]))
        lin.weight.copy_(torch.tensor(theta["W_hy"]))
        lin.bias.copy_(torch.tensor(theta["b_y"]))
    opt = torch.optim.Adam(list(rnn.parameters()) + list(lin.parameters()), lr=1e-3)
    first = None
    t0 = time.perf_counter()
    for _ in range(updates):
        opt.zero_grad()
        H, _ = rnn(X)
        L = ((0.5 * ((lin(H) - Y) ** 2).sum(-1)) * w).sum()
        L.backward()
        opt.step()
        first = L.item() if first is None else first
    return time.perf_counter() - t0, first


def torch_loop(updates: int, dtype) -> tuple[float, float]:
    theta, X, Y, w = torch_setup(dtype)
    P = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in theta.items()}
    opt = torch.optim.Adam(list(P.values()), lr=1e-3)
    first = None
    t0 = time.perf_counter()
    for _ in range(updates):
        opt.zero_grad()
        h = torch.zeros(B, M, dtype=dtype)
        c = torch.zeros(B, M, dtype=dtype)
        hs = []
        for t in range(T):
            if CELL == "lstm":
                a = X[:, t] @ P["W_ih"].T + P["b_ih"] + h @ P["W_hh"].T + P["b_hh"]
                i, f, g, o = a.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                h = torch.tanh(X[:, t] @ P["W_xh"].T + h @ P["W_hh"].T + P["b_h"])
            hs.append(h)
        H = torch.stack(hs, 1)
        o = H @ P["W_hy"].T + P["b_y"]
        L = ((0.5 * ((o - Y) ** 2).sum(-1)) * w).sum()
        L.backward()
        opt.step()
        first = L.item() if first is None else first
    return time.perf_counter() - t0, first


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--compare-blas", default="", help="hidden sizes m, comma-separated: BPTT_TRAIN_BLAS_THREADS 0 against 1")
    ap.add_argument("--cell", default="vanilla", choices=["vanilla", "lstm", "gru"])
    args = ap.parse_args()
    global CELL
    CELL = args.cell
    if args.compare_blas:
        return compare_blas([int(x) for x in args.compare_blas.split(",")], args.updates, args.rounds)
    U = args.updates
    print(f"load average {os.getloadavg()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"server OPENBLAS_NUM_THREADS={args.blas_threads}")
    print(f"case: {CELL}{' tanh' if CELL == 'vanilla' else ''}, T={T}, m={M}, batch {B}, echo, mse mean, Adam lr 1e-3, {U} updates per run")
    env = {"OPENBLAS_NUM_THREADS": str(args.blas_threads)}
    rows: dict[str, list[float]] = {}
    with running_server(env=env) as base:
        ours(base, 20, 20)  # warm
        nn_name = {"vanilla": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}[CELL]
        cases = [
            ("ours HTTP, 2 lines", lambda: ours(base, U, U)),
            ("ours HTTP, a line per update", lambda: ours(base, U, 1)),
            (f"PyTorch {nn_name} float64", lambda: torch_nn(U, torch.float64)),
            ("PyTorch autograd loop float64", lambda: torch_loop(U, torch.float64)),
            (f"PyTorch {nn_name} float32", lambda: torch_nn(U, torch.float32)),
            ("PyTorch autograd loop float32", lambda: torch_loop(U, torch.float32)),
        ]
        if CELL == "gru":  # no autograd loop written out for the GRU
            cases = [c for c in cases if "loop" not in c[0]]
        torch_nn(20, torch.float64)
        if CELL != "gru":
            torch_loop(20, torch.float64)
        for rnd in range(args.rounds):
            for name, fn in cases:
                dt, first = fn()
                rows.setdefault(name, []).append(U / dt)
                rows.setdefault(name + " first loss", []).append(first)
    losses = {k: v[0] for k, v in rows.items() if k.endswith("first loss")}
    ref = losses["ours HTTP, 2 lines first loss"]
    for k, v in losses.items():
        if "float64" in k or k.startswith("ours"):
            assert abs(v - ref) <= 1e-12 * abs(ref), (k, v, ref)
    print(f"first loss {ref!r}: equal to 1e-12 on every float64 side")
    med = {k: statistics.median(v) for k, v in rows.items() if not k.endswith("first loss")}
    torch64 = max(v for k, v in med.items() if k.startswith("PyTorch") and "float64" in k)
    print(f"\nupdates per second, median of {args.rounds} alternating rounds (min–max):")
    for k, v in med.items():
        lo, hi = min(rows[k]), max(rows[k])
        print(f"  {k:34s} {v:8.0f}  ({lo:.0f}–{hi:.0f})   ÷ fastest PyTorch float64: {v / torch64:.2f}")


def compare_blas(ms: list[int], U: int, rounds: int) -> None:
    import contextlib

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    print(f"load average {os.getloadavg()}; OPENBLAS_NUM_THREADS unset ({os.cpu_count()} cores); {U} updates per run, "
          f"batch {B}, T={T}, vanilla tanh, Adam; {rounds} alternating rounds")
    with contextlib.ExitStack() as stack:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        bases = {n: stack.enter_context(running_server(env={**env, "BPTT_TRAIN_BLAS_THREADS": str(n)})) for n in (0, 1)}
        for m in ms:
            u = max(20, U * 16 // m) if m > 16 else U
            rows: dict[int, list[float]] = {0: [], 1: []}
            for n in (0, 1):
                ours(bases[n], 10, 10, m)  # warm
            for _ in range(rounds):
                for n in (0, 1):
                    dt, _first = ours(bases[n], u, u, m)
                    rows[n].append(u / dt)
            med = {n: statistics.median(v) for n, v in rows.items()}
            print(f"  m={m:4d} ({u} updates): BLAS as is {med[0]:7.1f} upd/s ({min(rows[0]):.1f}–{max(rows[0]):.1f}), "
                  f"one thread in slices {med[1]:7.1f} ({min(rows[1]):.1f}–{max(rows[1]):.1f}): ×{med[1] / med[0]:.2f}")


if __name__ == "__main__":
    main()
