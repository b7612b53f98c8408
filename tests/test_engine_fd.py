"""The engine against central finite differences of an independent reference, in float64,
for every cell × activation × loss × loss_steps × truncation × batch combination."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference import fd_delta, fd_state_grads, fd_truncated_grads

from app.engine import Problem, run

CELLS = ("vanilla", "residual")
ACTS = ("tanh", "sigmoid", "relu", "identity")
LOSSES = ("softmax_ce", "mse", "upstream")
STEPS = ("all", "last", "mask")
TRUNC = (None, 2)
BATCH = (1, 2)


def make_problem(cell, act, loss, steps, trunc, B, reduction="sum", seed=0, T=4, n=2, m=3, p=2):
    rng = np.random.default_rng(seed)
    params = {
        "W_xh": rng.normal(size=(m, n)) * 0.8,
        "W_hh": rng.normal(size=(m, m)) * 0.6,
        "b_h": rng.normal(size=m) * 0.3,
    }
    if loss != "upstream":
        params |= {"W_hy": rng.normal(size=(p, m)), "b_y": rng.normal(size=p) * 0.3}
    mask = {"all": np.ones(T, bool), "last": np.arange(T) == T - 1, "mask": np.arange(T) % 2 == 0}[steps]
    Y = G = None
    if loss == "softmax_ce":
        Y = rng.dirichlet(np.ones(p), size=(B, T))  # probability rows
    elif loss == "mse":
        Y = rng.normal(size=(B, T, p))
    else:
        G = rng.normal(size=(B, T, m))
    X = rng.normal(size=(B, T, n))
    if act == "relu":  # keep pre-activations away from the kink at 0
        X += 0.5
    return Problem(
        cell=cell, activation=act, loss=loss, notation="canonical", params=params, X=X,
        h0=rng.normal(size=(B, m)) * 0.5, mask=mask, Y=Y, G=G, reduction=reduction,
        truncation=trunc,
    )


@pytest.mark.parametrize(
    "cell,act,loss,steps,trunc,B", list(itertools.product(CELLS, ACTS, LOSSES, STEPS, TRUNC, BATCH))
)
def test_engine_matches_finite_differences(cell, act, loss, steps, trunc, B):
    reduction = "mean" if (B == 2 and steps != "last") else "sum"
    p = make_problem(cell, act, loss, steps, trunc, B, reduction)
    r = run(p)
    T = p.X.shape[1]
    tol = dict(rtol=1e-6, atol=1e-8)
    # every δ_{t,k}, truncated terms zeroed
    want = fd_delta(p)
    if trunc is not None:
        t, k = np.indices((T, T))
        want[:, t - k >= trunc] = 0.0
    np.testing.assert_allclose(r.table.delta, want, **tol)
    # parameter gradients: sums over the kept copies
    fd = fd_truncated_grads(p, trunc)
    for name, g in fd.items():
        np.testing.assert_allclose(r.grads[name], g, **tol, err_msg=name)
    np.testing.assert_allclose(r.table.dh0, fd_state_grads(p, "h0", trunc), **tol)
    np.testing.assert_allclose(r.dX, fd_state_grads(p, "X", trunc), **tol)
    # the loss itself
    assert np.isfinite(r.out.loss)


def test_reference_finite_differences_can_fail():
    """The comparison above is not vacuous: a wrong gradient is caught."""
    p = make_problem("vanilla", "tanh", "mse", "all", None, 1)
    r = run(p)
    fd = fd_truncated_grads(p, None)
    wrong = r.grads["W_hh"].copy()
    wrong[0, 1] *= 1.001
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, fd["W_hh"], rtol=1e-6, atol=1e-8)
    with pytest.raises(AssertionError):  # truncation changes the gradient
        np.testing.assert_allclose(r.grads["W_hh"], fd_truncated_grads(p, 1)["W_hh"], rtol=1e-6, atol=1e-8)
