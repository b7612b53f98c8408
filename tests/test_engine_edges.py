"""Exact at the edges: the logistic function far from 0, and finite gradients beside infinite
hidden states (terms with a zero factor do not exist, so 0 · inf never makes a NaN)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.engine import Problem, run
from app.engine.activations import ACTIVATIONS
from app.engine.gradients import matmul_existing


def test_sigmoid_is_exact_far_below_zero():
    """σ(z) = e^z / (1 + e^z) to rounding for z ≪ 0 (0.5·(1 + tanh(z/2)) was 0 below −38 and off
    by 1.7e-4 at −30), and σ'(z) = σ(1 − σ) keeps its sign and its digits there."""
    z = np.array([-700.0, -100.0, -40.0, -38.0, -30.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0, 700.0])
    e = np.exp(-np.abs(z))  # no overflow
    want = np.where(z < 0, e / (1 + e), 1 / (1 + e))
    sig = ACTIVATIONS["sigmoid"]
    a = sig.f(z)
    np.testing.assert_allclose(a, want, rtol=4e-16, atol=0)
    out = np.empty_like(z)
    assert sig.f(z, out=out) is out and np.array_equal(out, a)
    neg = z < 0
    np.testing.assert_allclose(sig.fprime(z, a)[neg], (want * (1 - want))[neg], rtol=4e-16, atol=0)
    assert (sig.fprime(z, a)[neg] > 0).all()


def _exploding_identity(T: int, loss_steps: int, m: int = 2) -> Problem:
    """The identity cell with W_hh = 10·I: h_t ≈ 10^t overflows to inf near t = 308; a loss
    only on the first steps."""
    rng = np.random.default_rng(3)
    params = {
        "W_xh": rng.normal(size=(m, 1)), "W_hh": 10.0 * np.eye(m), "b_h": rng.normal(size=m) * 0.1,
        "W_hy": rng.normal(size=(1, m)), "b_y": np.zeros(1),
    }
    return Problem(
        cell="vanilla", activation="identity", loss="mse", notation="canonical", params=params,
        X=np.ones((1, T, 1)), h0=np.zeros((1, m)), mask=np.arange(T) < loss_steps,
        Y=np.zeros((1, T, 1)),
    )


@pytest.mark.parametrize("detail", ["full", "norms"])
def test_finite_gradients_beside_infinite_states(detail):
    """T = 320 with the loss on the first 6 steps has the gradients of T = 6 (the later steps
    reach no loss): finite, where summing 0 · h_k = 0 · inf gave NaN (null in the response),
    and the per-step gradients of steps without loss are 0."""
    long = _exploding_identity(320, 6)
    assert not np.isfinite(run(long).forward.h).all()  # the states did overflow
    long, short = (dataclasses.replace(p, detail=detail) for p in (long, _exploding_identity(6, 6)))
    r, want = run(long), run(short)
    for name, g in want.grads.items():
        assert np.isfinite(r.grads[name]).all(), name
        np.testing.assert_allclose(r.grads[name], g, rtol=1e-13, atol=0, err_msg=name)
    assert np.abs(r.grads["W_hh"]).max() > 1e5  # δ itself grows like 10^(t−k)
    if detail == "full":
        for name, g in want.per_step.items():
            np.testing.assert_allclose(r.per_step[name][:6], g, rtol=1e-13, atol=0, err_msg=name)
            assert np.array_equal(r.per_step[name][6:], np.zeros_like(r.per_step[name][6:])), name


def test_matmul_existing_skips_terms_with_a_zero_factor():
    A = np.array([[0.0, 1.0], [2.0, np.inf], [0.0, np.nan]])  # (3, 2)
    Bm = np.array([[np.inf, 1.0], [0.0, 3.0]])  # (2, 2)
    got = matmul_existing(A, Bm)
    # row 0: 0·inf (no term) + 1·0 = 0 | 0·1 + 1·3 = 3;  row 1: 2·inf = inf | 2 + inf·3 = inf
    # row 2: 0·inf + nan·0 (no terms) = 0 | nan·3 = nan
    want = np.array([[0.0, 3.0], [np.inf, np.inf], [0.0, np.nan]])
    np.testing.assert_array_equal(got, want)
    rng = np.random.default_rng(0)
    A, Bm = rng.normal(size=(5, 7)), rng.normal(size=(7, 4))
    assert np.array_equal(matmul_existing(A, Bm), A @ Bm)  # finite: BLAS's own numbers
