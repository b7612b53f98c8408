"""Which cell learns which training task (app/engine/train/tasks.py) at its default options:
a figure for choosing presets and the remedies lab, measured with PyTorch (a bench extra).

For each task (default options unless given with --set) and each cell (nn.RNN tanh, nn.LSTM,
nn.GRU; m hidden units, + nn.Linear), float64, full batch, Adam, the loss as /api/v1/bptt
defines it with reduction "mean" over the task's loss steps; prints the loss before the first
update, after all of them, and their ratio (issue 13: "learned" = at most half its start).
Seeds fixed; same figures on every run up to threads' rounding.

    .venv/bin/python bench/bench_tasks.py [--updates 300] [--m 16] [--lr 0.01] [--set recall.delay=20]

Measured 2026-12-02 (2 shared cores, torch 2.13 CPU), end/start after 300 updates, m = 16:
every task at its defaults is learned by the GRU (echo 0.000, recall 0.001, sum 0.000,
parity 0.004, chars en 0.052, zh 0.006) and by the LSTM (recall 0.153, chars en 0.134); the
vanilla RNN learns all but parity (0.475) and recall at delay 10 too (0.001). recall at
delay 20: RNN 0.46, LSTM 0.45 (PyTorch's default init; with the forget-gate bias at 2:
0.003), GRU 0.001; at delay 40 none learns in 300 updates.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.engine.train import tasks as TK  # noqa: E402


def train(task: TK.Task, cell: str, m: int, updates: int, lr: float, seed: int = 0) -> tuple[float, float]:
    import torch

    torch.manual_seed(seed)
    N, T, n = task.inputs.shape
    p = task.targets.shape[-1]
    rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](n, m, batch_first=True).double()
    lin = torch.nn.Linear(m, p).double()
    opt = torch.optim.Adam(list(rnn.parameters()) + list(lin.parameters()), lr=lr)
    X, Y = torch.tensor(task.inputs), torch.tensor(task.targets)
    w = torch.tensor(task.mask / (task.mask.sum() * N))
    losses = []
    for _ in range(updates + 1):
        opt.zero_grad()
        o = lin(rnn(X)[0])
        if task.loss == "mse":
            per = 0.5 * ((o - Y) ** 2).sum(-1)
        else:
            per = -(Y * torch.log_softmax(o, -1)).sum(-1)
        L = (per * w).sum()
        losses.append(L.item())
        if len(losses) > updates:
            break
        L.backward()
        opt.step()
    return losses[0], losses[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--tasks", default=",".join(TK.TASKS))
    ap.add_argument("--set", action="append", default=[], help="task.option=value, e.g. recall.delay=20")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    options: dict[str, dict] = {}
    for s in a.set:
        key, value = s.split("=", 1)
        name, opt = key.split(".", 1)
        options.setdefault(name, {})[opt] = value if opt == "text" else int(value)
    print(f"updates={a.updates} m={a.m} Adam lr={a.lr}, full batch, float64, 1 thread")
    print(f"{'task':<28} {'cell':<5} {'start':>9} {'end':>9} {'end/start':>9} {'s':>6}")
    for name in a.tasks.split(","):
        variants = [{"text": "en"}, {"text": "zh"}] if name == "chars" and "chars" not in options else [{}]
        for extra in variants:
            task = TK.make(name, **(options.get(name, {}) | extra))
            label = name + "(" + ",".join(f"{k}={v}" for k, v in task.options.items() if k != "seed") + ")"
            for cell in ("rnn", "lstm", "gru"):
                t0 = time.perf_counter()
                start, end = train(task, cell, a.m, a.updates, a.lr)
                print(f"{label:<28} {cell:<5} {start:9.4f} {end:9.4f} {end / start:9.3f} {time.perf_counter() - t0:6.1f}")


if __name__ == "__main__":
    main()
