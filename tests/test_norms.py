"""Norms whose squares overflow or underflow where the vectors do not (app/engine/norms.py):
‖δ_{t,k}‖, ‖ε_{t,t}‖ of the bound, and the global norm of clipping, against math.hypot
(which scales, so it is exact there) and against scaling by powers of two (exact in floats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_engine_speedpaths import plain_table

from app.engine import fast, norms
from app.engine.cells import CELLS


def hypot_rows(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1])
    return np.array([math.hypot(*row) for row in flat]).reshape(x.shape[:-1])


@pytest.mark.parametrize("e", [-1000, -700, -500, -300, 0, 300, 500, 700, 900])
def test_norms_of_vectors_at_any_scale(e):
    rng = np.random.default_rng(e % 97)
    x = rng.normal(size=(3, 5, 7))
    c = 2.0**e  # exact scaling: ‖c x‖ = c ‖x‖ to the last bit, wherever c x is normal
    got = norms.of_vectors(x * c)
    np.testing.assert_allclose(got / c, norms.of_vectors(x), rtol=4e-16)
    np.testing.assert_allclose(got / c, hypot_rows(x), rtol=4e-16)


def test_norms_of_zero_infinite_and_nan_vectors():
    x = np.array([[0.0, 0.0], [np.inf, 1.0], [-np.inf, np.inf], [np.nan, 1.0], [np.nan, np.inf], [5e-324, 0.0]])
    got = norms.of_vectors(x)
    assert got[0] == 0.0 and got[1] == np.inf and got[2] == np.inf and got[5] == 5e-324
    assert np.isnan(got[3]) and np.isnan(got[4])


@pytest.mark.parametrize("scale", [1e-200, 1e155, 1e200])
@pytest.mark.parametrize("K", [None, 2])
@pytest.mark.parametrize("B", [1, 2])
def test_delta_norms_where_the_squares_leave_the_range(scale, K, B):
    """‖δ_{t,k}‖ equals the norm of the δ_{t,k} the table holds, also where δ² over- or
    underflows: with the whole table (mended from it) and with norms only (mended at each k);
    a sequence with no loss on some steps (rows of zeros) as well."""
    rng = np.random.default_rng(1)
    T, m = 6, 3
    fprime = rng.uniform(0.5, 1.0, (B, T, m))
    eps_tt = rng.normal(size=(B, T, m)) * scale
    eps_tt[:, 1] = 0.0  # no loss at t = 2
    W = rng.normal(size=(m, m)) * (1e-30 if scale < 1 else 1.0)  # vanishing: δ goes far below
    cell = CELLS["vanilla"]
    with np.errstate(all="ignore"):
        full = fast.delta_table(cell, fprime, eps_tt, W, K, keep=True)
        only = fast.delta_table(cell, fprime, eps_tt, W, K, keep=False)
    plain = plain_table(cell, fprime, eps_tt, W, K)
    want = hypot_rows(plain)
    assert np.isfinite(full.delta).all() and np.isfinite(want).all()
    with np.errstate(all="ignore"):  # the case is out of the squares' range: √Σδ² is wrong somewhere
        naive = np.sqrt(np.einsum("...m,...m->...", plain, plain))
    assert (np.abs(naive - want) > 1e-13 * want).any()
    np.testing.assert_allclose(full.delta_norm, want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(only.delta_norm, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("W_scale", [1.0, 1e-60])
def test_norms_only_runs_the_recursion_once_and_mends_only_what_needs_it(monkeypatch, W_scale):
    """Norms only: the recursion runs once, also when norms need mending (a vanishing δ far
    back is the common case of a long sequence; running it again doubled the time), and rows
    without a loss, whose zeros are no underflow, are not taken by scaling."""
    calls, scaled_rows = [], []
    plain, scaled = fast.delta_table, norms.scaled
    monkeypatch.setattr(fast, "delta_table", lambda *a, **k: calls.append(1) or plain(*a, **k))
    monkeypatch.setattr(norms, "scaled", lambda x: scaled_rows.append(len(x)) or scaled(x))
    rng = np.random.default_rng(2)
    B, T, m = 1, 8, 3
    eps_tt = rng.normal(size=(B, T, m))
    eps_tt[:, :-1] = 0.0  # many-to-one
    fprime = rng.uniform(0.5, 1, (B, T, m))
    W = rng.normal(size=(m, m)) * W_scale
    with np.errstate(all="ignore"):
        got = fast.delta_table(CELLS["vanilla"], fprime, eps_tt, W, None, keep=False)
    assert len(calls) == 1
    plain = plain_table(CELLS["vanilla"], fprime, eps_tt, W, None)
    want = hypot_rows(plain)
    np.testing.assert_allclose(got.delta_norm, want, rtol=1e-13, atol=0)
    # mended: the δ_{T,k} of the one loss whose squares underflow (W_hh ~ 1e-60: ‖δ_{T,k}‖ ~
    # 1e-60^(T−k), some of them all the way to zero); none with W_hh ~ 1, none of the loss-free rows
    with np.errstate(all="ignore"):
        need = (np.einsum("...m,...m->...", plain[:, -1], plain[:, -1]) < norms.SQ_LOW).sum()
    assert (need > 0) == (W_scale < 1) and sum(scaled_rows) == need


def test_api_delta_norm_bound_and_clipping_beyond_the_squares(client):
    """The audit's case: δ = 6e155 is finite, so are its norm and the bound; clipping by norm of
    gradients near 1e201 scales them to the threshold (a global norm of inf would zero them)."""
    body = {"activation": "identity", "inputs": [[1], [2], [3]], "targets": [[0], [0], [0]], "h0": [0],
            "params": {"W_xh": [[1e155]], "W_hh": [[1]], "b_h": [0], "W_hy": [[1]], "b_y": [0]}}
    for detail in ("full", "norms"):
        d = client.post("/api/v1/bptt", json=body | {"detail": detail}).json()
        assert d["delta_norm"][2] == [6e155, 6e155, 6e155], d["delta_norm"]
        assert not any(p.startswith(("delta", "diagnostics")) for p in d["nonfinite"]), d["nonfinite"]
    assert d["diagnostics"]["jacobian_norm"] == [1.0, 1.0, 1.0]
    d = client.post("/api/v1/bptt", json=body | {"detail": "full"}).json()
    assert d["diagnostics"]["delta_bound"][2] == [6e155, 6e155, 6e155]
    body["params"]["W_xh"] = [[1e100]]
    d = client.post("/api/v1/bptt", json=body | {"clip": {"max_norm": 1.0}}).json()
    assert d["nonfinite"] == [] and d["clip"]["norm_before"] == pytest.approx(5.333854141237836e201, rel=1e-14)
    assert d["clip"]["norm_after"] == pytest.approx(1.0, rel=1e-15)
    assert d["grads"]["W_hh"][0][0] == pytest.approx(2.7e201 / 5.333854141237836e201, rel=1e-14)
