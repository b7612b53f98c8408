"""The engine's fast code paths against the plain formulas they replace:

- ‖J_k‖₂ by the batched SVD in blocks (diagnostics.svd_norms) against np.linalg.norm(J_k, 2),
  including very large or small and not finite J_k;
- the T×T bound, built in place, against one cumprod per k;
- the per-step gradients, by blocks of steps, against the explicit sums (and the terms with a
  zero factor left out where a factor is not finite);
- the δ table (one ε array overwritten in place, k-major table) against the plain recursion;
- the forward pass with leading perturbation axes (the gradient check) against one copy at a time;
- Cell.jvp against J_k v, run.core against run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_engine_fd import make_problem

from app.engine import diagnostics, fast, gradients, run
from app.engine.activations import ACTIVATIONS
from app.engine.cells import CELLS, Forward
from app.engine.run import core
from app.engine.run import run as run_problem

RTOL = 1e-12


def trace(fprime=None, h_prev=None, h=None):
    """A vanilla trace with the arrays a test needs (the others zero)."""
    some = next(a for a in (fprime, h_prev, h) if a is not None)
    zero = np.zeros_like(some)
    h = zero if h is None else h
    h_prev = zero if h_prev is None else h_prev
    return Forward(z=zero, h=h, h_prev=h_prev, states={"h": h}, states_prev={"h": h_prev}, a=h,
                   fprime=zero if fprime is None else fprime)


def svd_norms(cell, fprime, W):
    return np.array([np.linalg.norm(cell.jacobian(f, W), 2) for f in fprime])


def random_fprime(rng, N, m, act="tanh"):
    z = rng.normal(size=(N, m)) * 1.5
    a = ACTIVATIONS[act].f(z)
    return ACTIVATIONS[act].fprime(z, a)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("m", [1, 2, 3, 7, 19, 20, 21, 33, 64])
def test_jacobian_norms_match_the_svd(cell, m):
    rng = np.random.default_rng(m)
    W = rng.uniform(-1, 1, (m, m)) / np.sqrt(m) * 1.3
    F = random_fprime(rng, 40, m)
    got = diagnostics.svd_norms(CELLS[cell].jacobian(F, W))
    np.testing.assert_allclose(got, svd_norms(CELLS[cell], F, W), rtol=RTOL)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize(
    "kind", ["identity", "scaled-orthogonal", "diagonal-ties", "near-degenerate", "rank-one", "relu"]
)
def test_jacobian_norms_on_structured_matrices(cell, kind):
    """Repeated and nearly repeated singular values, rank deficiency, f' with zeros."""
    rng = np.random.default_rng(7)
    m = 24
    Q, _ = np.linalg.qr(rng.normal(size=(m, m)))
    W = {
        "identity": np.eye(m),
        "scaled-orthogonal": 0.9 * Q,
        "diagonal-ties": np.diag(np.repeat([1.0, 0.5, 0.25], m // 3)),
        "near-degenerate": Q @ np.diag(1 - np.arange(m) * 1e-9) @ Q.T,
        "rank-one": np.outer(rng.normal(size=m), rng.normal(size=m)) / m,
        "relu": rng.normal(size=(m, m)) / np.sqrt(m),
    }[kind]
    F = random_fprime(rng, 30, m, "relu" if kind == "relu" else "tanh")
    if kind != "relu":
        F[:3] = 1.0  # J_k = W_hh exactly (residual: I + W_hh)
    F[3] = 0.0  # J_k = 0 (residual: I)
    got = diagnostics.svd_norms(CELLS[cell].jacobian(F, W))
    np.testing.assert_allclose(got, svd_norms(CELLS[cell], F, W), rtol=RTOL, atol=0)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
def test_jacobian_norms_outside_the_safe_range_and_not_finite(cell):
    """Very large or small J_k go to the SVD; J_k with inf or NaN give NaN, as before."""
    rng = np.random.default_rng(3)
    m = 6
    W = rng.normal(size=(m, m))
    W[0, 0] = 3.0
    F = random_fprime(rng, 8, m)
    F[0] *= 1e150
    F[1] *= 1e-150
    F[2, 1] = np.inf
    F[3, 0] = np.nan
    F[4, 0] = 1e308  # J_k overflows
    with np.errstate(all="ignore"):
        got = diagnostics.svd_norms(CELLS[cell].jacobian(F, W))
        J = CELLS[cell].jacobian(F, W)
    ok = np.isfinite(J).all(axis=(1, 2))
    assert list(ok) == [True, True, False, False, False, True, True, True]
    assert np.isnan(got[~ok]).all()
    np.testing.assert_allclose(got[ok], [np.linalg.norm(j, 2) for j in J[ok]], rtol=RTOL)
    with np.errstate(all="ignore"):
        assert np.isnan(diagnostics.svd_norms(CELLS[cell].jacobian(F[5:], W * np.inf))).all()


def test_delta_bound_equals_one_cumprod_per_k():
    """The bound, built in place for all k, equals the plain loop bit for bit, also with zero,
    infinite and NaN Jacobian norms."""
    rng = np.random.default_rng(2)
    B, T, m = 2, 9, 4
    fprime = rng.uniform(0, 1, (B, T, m))
    eps_tt = rng.normal(size=(B, T, m))
    W = rng.normal(size=(m, m))
    d = diagnostics.compute(CELLS["vanilla"], trace(fprime), {"W_hh": W}, eps_tt, 1.0)

    def plain(jn):
        fmax = np.abs(fprime).max(axis=-1)
        eps_norm = np.sqrt(np.einsum("btm,btm->bt", eps_tt, eps_tt))
        bound = np.zeros((B, T, T))
        for k in range(T):
            prod = np.concatenate([np.ones((B, 1)), np.cumprod(jn[:, k + 1 :], axis=1)], axis=1)
            bound[:, k:, k] = fmax[:, k, None] * prod * eps_norm[:, k:]
        return bound

    np.testing.assert_array_equal(d.delta_bound, plain(d.jacobian_norm))
    jn = d.jacobian_norm.copy()
    jn[0, 3], jn[0, 6], jn[1, 2], jn[1, 5] = 0.0, np.inf, np.nan, 1e300
    original = diagnostics.jacobian_norms
    try:
        diagnostics.jacobian_norms = lambda cell, tr, theta: (jn, np.abs(fprime).max(axis=-1))
        with np.errstate(all="ignore"):
            d2 = diagnostics.compute(CELLS["vanilla"], trace(fprime), {"W_hh": W}, eps_tt, 1.0)
            want = plain(jn)
    finally:
        diagnostics.jacobian_norms = original
    np.testing.assert_array_equal(d2.delta_bound, want)
    assert (d2.delta_bound[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0).all()


@pytest.mark.parametrize("B", [1, 2, 3])
@pytest.mark.parametrize("T", [1, 5, 8, 13])
def test_per_step_gradients_by_blocks(B, T):
    rng = np.random.default_rng(B * 100 + T)
    m, n, p = 3, 2, 2
    delta = np.tril(np.ones((T, T)))[None, :, :, None] * rng.normal(size=(B, T, T, m))  # [b, t, k]
    h_prev, h = rng.normal(size=(B, T, m)), rng.normal(size=(B, T, m))
    X, e = rng.normal(size=(B, T, n)), rng.normal(size=(B, T, p))
    g = gradients.per_step(CELLS["vanilla"], trace(h_prev=h_prev, h=h), delta, X, e)
    np.testing.assert_allclose(g["W_xh"], np.einsum("btki,bkj->tij", delta, X), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g["W_hh"], np.einsum("btki,bkj->tij", delta, h_prev), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g["b_h"], delta.sum(axis=(0, 2)), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g["W_hy"], np.einsum("bti,btj->tij", e, h), rtol=1e-13)
    np.testing.assert_allclose(g["b_y"], e.sum(axis=0), rtol=1e-13)


def test_per_step_gradients_with_an_infinite_input_sum_only_the_terms_that_exist():
    """x_k = inf: ∂L_t/∂W_xh = Σ_{k≤t} δ_{t,k} x_kᵀ has no term with x_12 for t < 12 (δ_{t,12} = 0
    there: finite, where 0 · inf made NaN), and ±inf from δ_{t,12} x_12 for t ≥ 12."""
    rng = np.random.default_rng(1)
    B, T, m, n = 1, 16, 3, 2
    delta = np.tril(np.ones((T, T)))[None, :, :, None] * rng.normal(size=(B, T, T, m))
    h_prev, X = rng.normal(size=(B, T, m)), rng.normal(size=(B, T, n))
    X[0, 12, 1] = np.inf
    with np.errstate(all="ignore"):
        g = gradients.per_step(CELLS["vanilla"], trace(h_prev=h_prev, h=h_prev), delta, X, None)
    want = np.zeros((T, m, n))
    for t in range(T):
        for k in range(t + 1):
            want[t] += np.outer(delta[0, t, k], X[0, k])
    np.testing.assert_allclose(g["W_xh"], want, rtol=1e-13)
    assert np.isfinite(g["W_xh"][:12]).all() and np.isinf(g["W_xh"][12:, :, 1]).all()
    assert np.isfinite(g["W_hh"]).all()


def plain_table(cell, fprime, eps_tt, W, K):
    """The recursion as written in bptt-math.md, one t at a time."""
    B, T, m = fprime.shape
    K = T if K is None else K
    delta = np.zeros((B, T, T, m))
    for b in range(B):
        for t in range(T):
            eps = eps_tt[b, t]
            delta[b, t, t] = fprime[b, t] * eps
            for k in range(t - 1, max(t - K, -1), -1):
                eps = W.T @ delta[b, t, k + 1] + (0.0 if cell.carry_is_product else eps)
                delta[b, t, k] = fprime[b, k] * eps
    return delta


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("K", [None, 1, 3])
@pytest.mark.parametrize("B,T,m", [(2, 7, 4), (1, 9, 33), (3, 6, 1)])
def test_delta_table_against_the_plain_recursion(cell, K, B, T, m):
    rng = np.random.default_rng(4)
    fprime, eps_tt = rng.uniform(0, 1, (B, T, m)), rng.normal(size=(B, T, m))
    W = rng.normal(size=(m, m)) / np.sqrt(m)  # ‖W‖ about 2 whatever m: the tolerances stay relative to δ
    full = fast.delta_table(CELLS[cell], fprime, eps_tt, W, K, keep=True)
    norms = fast.delta_table(CELLS[cell], fprime, eps_tt, W, K, keep=False)
    want = plain_table(CELLS[cell], fprime, eps_tt, W, K)
    np.testing.assert_allclose(full.delta, want, rtol=1e-13, atol=1e-15)
    assert full.delta.transpose(2, 0, 1, 3).flags.c_contiguous  # what per_step relies on
    np.testing.assert_allclose(full.delta_norm, np.linalg.norm(want, axis=-1), rtol=1e-13, atol=1e-15)
    for f in ("delta_norm", "dz", "dh", "dh0"):  # the same arithmetic with the table kept or not: the same bits
        np.testing.assert_array_equal(getattr(norms, f), getattr(full, f), err_msg=f)
    np.testing.assert_allclose(full.dz, want.sum(axis=1), rtol=1e-13, atol=1e-15)


def plain_sums(cell, fprime, eps_tt, W, K):
    """dz_k = Σ_t δ_{t,k} and dh_k = Σ_t ε_{t,k}, term by term, one t at a time."""
    B, T, m = fprime.shape
    K = T if K is None else K
    dz, dh = np.zeros((B, T, m)), np.zeros((B, T, m))
    with np.errstate(all="ignore"):
        for b in range(B):
            for t in range(T):
                eps = eps_tt[b, t]  # ε_{t,k}, k = t first
                for k in range(t, max(t - K, -1), -1):
                    if k < t:  # ε_{t,k} = W_hhᵀ δ_{t,k+1} (residual: + ε_{t,k+1}), δ_{t,k+1} = f' ⊙ ε_{t,k+1}
                        eps = W.T @ (fprime[b, k + 1] * eps) + (0.0 if cell.carry_is_product else eps)
                    dh[b, k] += eps
                    dz[b, k] += fprime[b, k] * eps
    return dz, dh


A = lambda *v: np.array(v, float).reshape(1, -1, 1)  # noqa: E731  one sequence, m = 1
OVERFLOW_CASES = [  # cell, f'(z), ε_{t,t}, W_hh, K: sums that overflow or cancel where the terms do not
    ("residual", A(0.25, 0), A(1e308, 1e308), [[1.0]], None),
    ("vanilla", A(0, 1), A(1e308, 1e308), [[1.0]], None),  # f' = 0 times Σ ε = inf
    ("vanilla", A(1, 1, 1), A(0, 1e308, 1e308), [[1e-3]], None),  # W_hhᵀ (Σ δ) overflows, Σ W_hhᵀ δ not
    ("vanilla", A(1, 1, 1), A(0, 1, np.inf), [[1.0]], 2),  # the dropped term is inf
    ("vanilla", A(1, 1, 1), A(0, 1, 1e17), [[1.0]], 2),  # the dropped term dwarfs the rest
    ("vanilla", A(1, 1, 1), A(0, 1, np.inf), [[1.0]], 1),
    ("vanilla", A(1, 1, 1), A(0, np.inf, np.inf), [[0.0]], None),  # inf · 0 = NaN, with m = 1 too
]


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("case", OVERFLOW_CASES)
def test_sums_overflow_as_the_terms_do(case, keep):
    """dz and dh are the sums of the terms the recursion defines, also where a shorter way to
    the same sum would overflow, give NaN, or lose the small terms to a cancellation."""
    cell, fprime, eps_tt, W, K = case
    W = np.array(W)
    want_dz, want_dh = plain_sums(CELLS[cell], fprime, eps_tt, W, K)
    with np.errstate(all="ignore"):
        got = fast.delta_table(CELLS[cell], fprime, eps_tt, W, K, keep)
        two = fast.delta_table(CELLS[cell], np.repeat(fprime, 2, 0), np.repeat(eps_tt, 2, 0), W, K, keep)
    np.testing.assert_allclose(got.dz, want_dz, rtol=1e-15)
    np.testing.assert_allclose(got.dh, want_dh, rtol=1e-15)
    np.testing.assert_allclose(two.dh[1], want_dh[0], rtol=1e-15)  # one sequence or two: the same


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
def test_forward_with_perturbation_axes_equals_one_copy_at_a_time(cell):
    rng = np.random.default_rng(8)
    B, T, n, m = 2, 5, 3, 4
    act = ACTIVATIONS["tanh"]
    W_xh, W_hh, b_h = rng.normal(size=(m, n)), rng.normal(size=(m, m)), rng.normal(size=m)
    X, h0 = rng.normal(size=(B, T, n)), rng.normal(size=(B, m))
    stack = W_hh + rng.normal(size=(6, m, m)) * 1e-3  # six perturbed copies of W_hh
    many = CELLS[cell].forward(act, {"W_xh": W_xh, "W_hh": stack, "b_h": b_h}, X, {"h": h0})
    for c in range(6):
        one = CELLS[cell].forward(act, {"W_xh": W_xh, "W_hh": stack[c], "b_h": b_h}, X, {"h": h0})
        for f in ("z", "a", "h", "h_prev", "fprime"):
            np.testing.assert_array_equal(getattr(many, f)[c], getattr(one, f), err_msg=f)
    Xs = X + rng.normal(size=(3, B, T, n)) * 1e-3  # perturbed inputs
    theta = {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}
    many = CELLS[cell].forward(act, theta, Xs, {"h": h0})
    np.testing.assert_array_equal(many.h[1], CELLS[cell].forward(act, theta, Xs[1], {"h": h0}).h)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
def test_jvp_and_carry_apply_the_jacobian(cell):
    rng = np.random.default_rng(9)
    m = 5
    W, f, v = rng.normal(size=(m, m)), rng.uniform(0, 1, (7, m)), rng.normal(size=(7, m))
    J = CELLS[cell].jacobian(f, W)
    np.testing.assert_allclose(CELLS[cell].jvp(f, v, W), np.einsum("nij,nj->ni", J, v), rtol=1e-13)
    np.testing.assert_allclose(CELLS[cell].carry(f * v, v, W), np.einsum("nji,nj->ni", J, v), rtol=1e-13)
    eps = v.copy()  # out= eps_next itself: ε_{t,k} replaces ε_{t,k+1}
    CELLS[cell].carry(f * v, eps, W, out=eps)
    np.testing.assert_allclose(eps, np.einsum("nji,nj->ni", J, v), rtol=1e-13)


@pytest.mark.parametrize("detail", ["full", "norms"])
def test_core_is_what_run_returns(detail):
    p = dataclasses.replace(make_problem("residual", "tanh", "mse", "all", 3, 2, T=6), detail=detail)
    with np.errstate(all="ignore"):
        c = core(p)
    r = run(p)
    np.testing.assert_array_equal(c.table.dz, r.table.dz)
    for k in r.grads:
        np.testing.assert_array_equal(c.grads[k], r.grads[k])
        if detail == "full":
            np.testing.assert_array_equal(c.per_step[k], r.per_step[k])
    assert (c.per_step is None) == (detail == "norms")


def test_run_diagnostics_match_the_svd_on_a_longer_sequence():
    p = make_problem("vanilla", "tanh", "mse", "all", None, 2, T=60, m=30, n=4)
    r = run(p)
    J = CELLS["vanilla"].jacobian(r.forward.fprime, p.params["W_hh"])
    np.testing.assert_allclose(r.diagnostics.jacobian_norm, np.linalg.norm(J, 2, axis=(-2, -1)), rtol=RTOL)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("K", [None, 1, 3, 8])
@pytest.mark.parametrize("B,keep", [(1, True), (1, False), (2, True), (2, False)])
def test_the_fast_loops_eps_tables_and_norms_equal_the_generic_loops(cell, K, B, keep):
    """delta_h (ε_{t,k} = ∂L_t/∂h_k) and delta_h_norm from the vanilla/residual fast loop: the
    generic loop's numbers to 1e-14, including the row t = k + K that truncation reaches through
    copy k + 1, and asking for them changes no bit of δ, its norms, dz or dh (a performance
    guard: they were the generic loop's alone, 62 → 109 ms at T = 256, m = 16)."""
    from app.engine import bptt

    T, m = 9, 4
    p = make_problem(cell, "tanh", "mse", "mask", K, B, T=T, m=m)
    c = CELLS[cell]
    r = run_problem(dataclasses.replace(p, diagnostics=False))
    theta, fw, eps_tt = r.theta, r.forward, r.out.eps_tt
    generic = bptt.delta_table(c, fw, theta, eps_tt, K, keep, eps_tables=True)
    generic_norms = bptt.delta_table(c, fw, theta, eps_tt, K, keep, eps_norms=True)
    plain = fast.delta_table(c, fw.fprime, eps_tt, theta["W_hh"], K, keep)
    tables = fast.delta_table(c, fw.fprime, eps_tt, theta["W_hh"], K, keep, eps_tables=True)
    only_norms = fast.delta_table(c, fw.fprime, eps_tt, theta["W_hh"], K, keep, eps_norms=True)
    close = dict(rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(tables.eps["h"], generic.eps["h"], **close)
    np.testing.assert_allclose(only_norms.eps_norm["h"], generic_norms.eps_norm["h"], **close)
    np.testing.assert_allclose(only_norms.eps_norm["h"], np.linalg.norm(tables.eps["h"], axis=-1), rtol=1e-14)
    assert tables.eps_norm is None and only_norms.eps is None
    if K is not None and K < T:  # the row t = k + K is there (h_k reaches L_{k+K} through copy k + 1)
        assert np.all(tables.eps["h"][:, K, 0] != 0) or not np.any(p.mask[K])
    for extra in (tables, only_norms):
        for f in ("delta", "delta_norm", "dz", "dh", "dh0"):
            a, b = getattr(extra, f), getattr(plain, f)
            assert (a is None) == (b is None), f
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=f)


def test_run_takes_the_fast_loop_for_delta_h_of_the_vanilla_cell(monkeypatch):
    """run asks the vanilla cell's fast loop for delta_h and delta_h_norm (the generic loop only
    beside the dh_next pass)."""
    from app.engine import bptt

    calls = []
    monkeypatch.setattr(bptt, "delta_table", lambda *a, **k: calls.append(k) or pytest.fail("generic loop"))
    p = make_problem("vanilla", "tanh", "mse", "all", None, 1, T=5, m=3)
    for extra in (dict(eps_tables=True), dict(eps_norms=True), dict(eps_norms=True, detail="norms")):
        r = run_problem(dataclasses.replace(p, **extra))
        assert r.table.eps is not None or r.table.eps_norm is not None
    assert not calls
