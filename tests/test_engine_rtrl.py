"""RTRL (forward sensitivities) gives BPTT's gradients for every cell, to 1e-10 relative."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from test_engine_fd import make_problem
from test_engine_gated import make_gated

from app.engine import rtrl, run
from app.engine.cells import CELLS


def rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize(
    "cell,loss,steps,B",
    list(itertools.product(["vanilla", "residual", "lstm", "gru"], ["softmax_ce", "mse", "upstream"],
                           ["all", "mask"], [1, 2])),
)
def test_rtrl_equals_bptt(cell, loss, steps, B):
    reduction = "mean" if B == 2 else "sum"
    if cell in ("lstm", "gru"):
        p = make_gated(cell, loss, steps, None, B, reduction, T=6)
    else:
        p = make_problem(cell, "tanh", loss, steps, None, B, reduction, T=6)
    bptt = run(p)
    r = run(dataclasses.replace(p, method="rtrl"))
    assert r.table is None and r.per_step is None
    for name, g in bptt.grads.items():
        assert rel(r.grads[name], g) < 1e-10, name
    for s, g in bptt.table.ds0.items():
        assert rel(r.ds0[s], g) < 1e-10, s


@pytest.mark.parametrize("act", ["sigmoid", "relu", "identity"])
def test_rtrl_equals_bptt_for_every_activation(act):
    p = make_problem("vanilla", act, "mse", "all", None, 1, T=8, m=4)
    bptt, r = run(p), run(dataclasses.replace(p, method="rtrl"))
    for name, g in bptt.grads.items():
        assert rel(r.grads[name], g) < 1e-10, name


def test_rtrl_gradient_check_and_clipping():
    p = dataclasses.replace(make_gated("lstm", "mse", "all", None, 2), gradient_check=True,
                            clip=("norm", 0.05), method="rtrl")
    r = run(p)
    assert r.check.ok and "inputs" not in r.check.per_array and "c0" in r.check.per_array
    assert r.clip.clipped


def test_rtrl_work_is_priced_by_state_squared_times_parameters():
    """O(T · S² · |θ|): doubling m multiplies the work by about 2⁴ for n ≈ m (|θ| ~ m², S² ~ m²)."""
    lstm, vanilla = CELLS["lstm"], CELLS["vanilla"]
    assert rtrl.n_params(lstm, 3, 5) == 4 * 5 * (3 + 5 + 2)
    w1, w2 = rtrl.work(vanilla, 1, 10, 32, 32), rtrl.work(vanilla, 1, 10, 64, 64)
    assert 14 < w2 / w1 < 17
    assert rtrl.work(lstm, 2, 10, 8, 8) == 2 * rtrl.work(lstm, 1, 10, 8, 8)
    assert rtrl.work(lstm, 1, 10, 8, 8) > 12 * rtrl.work(vanilla, 1, 10, 8, 8)  # S = 2m, |θ| ≈ ×4
