"""The engine against the explicit formulas of bptt-math.md."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_engine_fd import make_problem

from app.engine import fast, run
from app.engine.activations import ACTIVATIONS
from app.engine.cells import CELLS


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "identity"])
def test_delta_equals_explicit_product(cell, act):
    """vanilla:  δ_{t,k} = Π_{τ=k}^{t−1} (diag(f'(z_τ)) W_hhᵀ) · δ_{t,t}
    residual: δ_{t,k} = diag(f'(z_k)) J_{k+1}ᵀ ⋯ J_tᵀ ε_{t,t},  J_τ = I + diag(f'(z_τ)) W_hh"""
    p = make_problem(cell, act, "mse", "all", None, 1, T=6, m=4)
    r = run(p)
    W_hh, W_hy = p.params["W_hh"], p.params["W_hy"]
    fp = r.forward.fprime[0]
    e = r.out.e[0]
    T, m = fp.shape
    for t in range(T):
        eps_tt = W_hy.T @ e[t]
        for k in range(t + 1):
            if cell == "vanilla":
                M = np.eye(m)
                for tau in range(k, t):
                    M = M @ (np.diag(fp[tau]) @ W_hh.T)
                want = M @ (fp[t] * eps_tt)
            else:
                eps = eps_tt
                for tau in range(t, k, -1):
                    eps = (np.eye(m) + np.diag(fp[tau]) @ W_hh).T @ eps
                want = fp[k] * eps
            np.testing.assert_allclose(r.table.delta[0, t, k], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("loss", ["softmax_ce", "mse", "upstream"])
def test_dh_next_pass_gives_the_same_dz(cell, loss):
    p = make_problem(cell, "tanh", loss, "mask", None, 2, T=7, m=4)
    r = run(p)
    act = ACTIVATIONS[p.activation]
    dz, dh, dh0 = fast.dh_next_pass(CELLS[cell], r.forward.fprime, r.out.eps_tt, p.params["W_hh"])
    np.testing.assert_allclose(dz, r.table.delta.sum(axis=1), rtol=1e-12, atol=1e-14)  # dz_k = Σ_t δ_{t,k}
    np.testing.assert_allclose(dz, r.table.dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh, r.table.dh, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, r.table.dh0, rtol=1e-12, atol=1e-14)
    assert act.name == "tanh"


def test_norms_mode_equals_full_mode():
    p = make_problem("vanilla", "tanh", "mse", "all", 3, 2, T=9, m=4)
    full = run(p)
    norms = run(dataclasses.replace(p, detail="norms"))
    assert norms.table.delta is None and norms.per_step is None
    np.testing.assert_allclose(norms.table.delta_norm, np.linalg.norm(full.table.delta, axis=-1), rtol=1e-12)
    for k in full.grads:
        np.testing.assert_allclose(norms.grads[k], full.grads[k], rtol=1e-12)


@pytest.mark.parametrize("trunc", [None, 2])
def test_gradients_are_sums_over_the_unrolled_copies(trunc):
    """∂L/∂W_hh = Σ_t Σ_k δ_{t,k} h_{k−1}ᵀ, ∂L/∂W_xh = Σ_t Σ_k δ_{t,k} x_kᵀ, ∂L/∂b_h = Σ_t Σ_k δ_{t,k},
    ∂L/∂W_hy = Σ_t e_t h_tᵀ, ∂L/∂x_k = W_xhᵀ Σ_t δ_{t,k}, ∂L/∂h_0 = Σ_t W_hhᵀ δ_{t,1}."""
    p = make_problem("vanilla", "tanh", "softmax_ce", "all", trunc, 2, T=6, m=3)
    r = run(p)
    D = r.table.delta
    B, T = p.X.shape[:2]
    h_prev, h = r.forward.h_prev, r.forward.h
    W = {k: np.zeros_like(v) for k, v in p.params.items()}
    per_step = {k: np.zeros((T,) + v.shape) for k, v in p.params.items()}
    for b in range(B):
        for t in range(T):
            for k in range(t + 1):
                per_step["W_hh"][t] += np.outer(D[b, t, k], h_prev[b, k])
                per_step["W_xh"][t] += np.outer(D[b, t, k], p.X[b, t * 0 + k])
                per_step["b_h"][t] += D[b, t, k]
            per_step["W_hy"][t] += np.outer(r.out.e[b, t], h[b, t])
            per_step["b_y"][t] += r.out.e[b, t]
    for name in W:
        np.testing.assert_allclose(r.per_step[name], per_step[name], rtol=1e-12, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(r.grads[name], per_step[name].sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.dX, D.sum(axis=1) @ p.params["W_xh"], rtol=1e-12)
    kept = slice(None) if trunc is None else slice(0, trunc)
    np.testing.assert_allclose(r.table.dh0, D[:, kept, 0] .sum(axis=1) @ p.params["W_hh"], rtol=1e-12)


def test_batch_is_per_sequence_with_summed_parameter_gradients():
    p = make_problem("residual", "tanh", "mse", "all", None, 3, T=5)
    r = run(p)
    total = {k: 0 for k in r.grads}
    for b in range(3):
        one = dataclasses.replace(p, X=p.X[b : b + 1], h0=p.h0[b : b + 1], Y=p.Y[b : b + 1])
        rb = run(one)
        np.testing.assert_allclose(r.table.delta[b], rb.table.delta[0], rtol=1e-13)
        np.testing.assert_allclose(r.forward.h[b], rb.forward.h[0], rtol=1e-13)
        for k in total:
            total[k] = total[k] + rb.grads[k]
    for k in total:
        np.testing.assert_allclose(r.grads[k], total[k], rtol=1e-12)


def test_mean_reduction_divides_by_steps_and_batch():
    p = make_problem("vanilla", "tanh", "mse", "mask", None, 2)
    s, m = run(p), run(dataclasses.replace(p, reduction="mean"))
    n_terms = p.mask.sum() * 2
    assert m.out.loss == pytest.approx(s.out.loss / n_terms, rel=1e-14)
    np.testing.assert_allclose(m.grads["W_hh"], s.grads["W_hh"] / n_terms, rtol=1e-12)


def test_diagnostics_bound_every_delta_norm():
    for cell in ("vanilla", "residual"):
        p = make_problem(cell, "tanh", "mse", "all", None, 2, T=10, m=4)
        r = run(p)
        d = r.diagnostics
        assert (r.table.delta_norm <= d.delta_bound * (1 + 1e-12) + 1e-300).all()
        J = CELLS[cell].jacobian(r.forward.fprime[1, 4], p.params["W_hh"])
        assert d.jacobian_norm[1, 4] == pytest.approx(np.linalg.norm(J, 2), rel=1e-12)
        assert d.spectral_radius == pytest.approx(max(abs(np.linalg.eigvals(p.params["W_hh"]))), rel=1e-12)
        assert d.sigma_max == pytest.approx(np.linalg.norm(p.params["W_hh"], 2), rel=1e-12)
    # a tight case: identity activation, scalar RNN, where the bound is attained exactly
    p = make_problem("vanilla", "identity", "mse", "all", None, 1, T=5, m=1, n=1, p=1)
    r = run(p)
    np.testing.assert_allclose(np.tril(r.table.delta_norm[0]), np.tril(r.diagnostics.delta_bound[0]), rtol=1e-12)


def test_clipping_by_norm_and_by_value():
    p = make_problem("vanilla", "identity", "mse", "all", None, 1)
    raw = run(p).grads
    norm = np.sqrt(sum((g**2).sum() for g in raw.values()))
    c = norm / 4
    r = run(dataclasses.replace(p, clip=("norm", c)))
    assert r.clip.norm_before == pytest.approx(norm) and r.clip.norm_after == pytest.approx(c)
    assert r.clip.clipped
    for k in raw:
        np.testing.assert_allclose(r.grads[k], raw[k] * c / norm, rtol=1e-12)
        np.testing.assert_allclose(r.grads_unclipped[k], raw[k])
    big = run(dataclasses.replace(p, clip=("norm", norm * 2)))
    assert not big.clip.clipped and big.clip.norm_after == pytest.approx(norm)
    v = run(dataclasses.replace(p, clip=("value", 0.1)))
    for k in raw:
        np.testing.assert_allclose(v.grads[k], np.clip(raw[k], -0.1, 0.1))


def test_gradient_check_passes_and_catches_a_wrong_gradient(monkeypatch):
    p = dataclasses.replace(make_problem("vanilla", "tanh", "softmax_ce", "all", None, 2), gradient_check=True)
    r = run(p)
    assert r.check.ok and r.check.max_rel_error < 1e-6
    assert set(r.check.per_array) == {"W_xh", "W_hh", "b_h", "W_hy", "b_y", "h0", "inputs"}
    from app.engine import gradients

    real = gradients.summed

    def broken(*a, **k):
        g = real(*a, **k)
        g["W_hh"] = g["W_hh"] * 1.01
        return g

    monkeypatch.setattr(gradients, "summed", broken)
    bad = run(p)
    assert not bad.check.ok
    assert bad.check.per_array["W_hh"]["max_rel_error"] > 1e-3
    assert bad.check.per_array["W_xh"]["max_rel_error"] < 1e-6


def test_gradient_check_with_truncation_compares_the_exact_gradient():
    p = dataclasses.replace(make_problem("vanilla", "tanh", "mse", "all", 1, 1, T=6), gradient_check=True)
    r = run(p)
    assert r.check.ok
    assert any("untruncated" in w for w in r.warnings)


def test_gradient_check_samples_large_arrays():
    p = dataclasses.replace(
        make_problem("vanilla", "tanh", "mse", "all", None, 1, T=3, m=12, n=20),
        gradient_check=True, gradient_check_max_entries=50,
    )
    r = run(p)
    assert r.check.per_array["W_xh"] == pytest.approx(r.check.per_array["W_xh"]) and r.check.ok
    assert r.check.per_array["W_xh"]["checked"] == 50 and r.check.per_array["W_xh"]["of"] == 240


def test_overflow_is_not_an_error():
    p = make_problem("vanilla", "identity", "mse", "all", None, 1, T=4)
    params = dict(p.params, W_hh=np.eye(3) * 1e200)
    r = run(dataclasses.replace(p, params=params))
    assert not np.isfinite(r.forward.h).all()
    assert not np.isfinite(r.out.loss)


@pytest.mark.parametrize("cell,loss,steps,reduction", [
    ("vanilla", "mse", "all", "sum"), ("residual", "softmax_ce", "mask", "mean"), ("vanilla", "upstream", "last", "mean"),
])
def test_gradient_check_of_one_sequence_equals_the_whole_batch_quotient(monkeypatch, cell, loss, steps, reduction):
    """h0 and the inputs are checked on copies of their own sequence (only its loss moves): the
    quotients equal those of perturbed copies of the whole batch, and a wrong entry of one
    sequence is caught there and nowhere else."""
    from app.engine import gradcheck

    p = dataclasses.replace(make_problem(cell, "tanh", loss, steps, None, 3, reduction=reduction, T=5),
                            gradient_check=True)
    seen = {}
    real_check, real_seq = gradcheck.check, gradcheck._sequence_quotients

    def spy(sequence_loss_of, name, value, idx, floats_per_copy):
        seen[name] = (idx, real_seq(sequence_loss_of, name, value, idx, floats_per_copy))
        return seen[name][1]

    def whole_batch(loss_of, values, analytic, *a, **k):
        seen["loss_of"], seen["values"] = loss_of, values
        return real_check(loss_of, values, analytic, *a, **k)

    monkeypatch.setattr(gradcheck, "_sequence_quotients", spy)
    monkeypatch.setattr(gradcheck, "check", whole_batch)
    r = run(p)
    assert r.check.ok and r.check.max_rel_error < 1e-6 and set(seen) >= {"h0", "inputs"}
    for name in ("h0", "inputs"):
        idx, numeric = seen[name]
        assert idx.size == seen["values"][name].size  # every entry, a sequence each
        whole = gradcheck._quotients(seen["loss_of"], name, seen["values"][name], idx, 1)
        np.testing.assert_allclose(numeric, whole, rtol=1e-6, atol=1e-9)

    def corrupt(loss_of, values, analytic, *a, **k):
        analytic = dict(analytic, h0=analytic["h0"].copy(), inputs=analytic["inputs"].copy())
        analytic["h0"][1, 2] += 0.01
        analytic["inputs"][2, 3, 1] += 0.01
        return real_check(loss_of, values, analytic, *a, **k)

    monkeypatch.setattr(gradcheck, "check", corrupt)
    bad = run(p).check.per_array
    assert bad["h0"]["max_rel_error"] > 1e-3 and bad["inputs"]["max_rel_error"] > 1e-3
    assert max(v["max_rel_error"] for k, v in bad.items() if k not in ("h0", "inputs")) < 1e-6


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
@pytest.mark.parametrize("trunc", [1, 2, None])
def test_what_dh_and_h0_keep_under_truncation(cell, trunc):
    """docs/bptt-math.md, truncation: dh_k = Σ_{t=k}^{k+K−1} ε_{t,k} (ε from the kept δ),
    dz_k = f'(z_k) ⊙ dh_k, ∂L/∂h_0 = W_hhᵀ dz_1 (+ dh_1 residual), ∂L/∂x_k = W_xhᵀ dz_k; and
    with K < T the chain rule dh_k = ε_{k,k} + W_hhᵀ dz_{k+1} does not close."""
    p = make_problem(cell, "tanh", "mse", "all", trunc, 2, T=5, m=3)
    r = run(p)
    D, W_hh, W_xh = r.table.delta, p.params["W_hh"], p.params["W_xh"]
    B, T, m = D.shape[0], D.shape[1], D.shape[-1]
    K = T if trunc is None else trunc
    dh = np.zeros((B, T, m))
    for b in range(B):
        for k in range(T):
            for t in range(k, min(T, k + K)):
                # ε_{t,k} = ε_{t,t} + Σ_{j=k+1}^{t} W_hhᵀ δ_{t,j} (residual); the j = k+1 term alone (vanilla)
                js = range(k + 1, t + 1) if cell == "residual" else range(k + 1, min(k + 2, t + 1))
                eps = (r.out.eps_tt[b, t] if cell == "residual" or t == k else 0) + sum(
                    (D[b, t, j] @ W_hh for j in js), np.zeros(m))
                dh[b, k] += eps
    np.testing.assert_allclose(r.table.dh, dh, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.table.dz, r.forward.fprime * dh, rtol=1e-12, atol=1e-15)
    h0 = r.table.dz[:, 0] @ W_hh + (r.table.dh[:, 0] if cell == "residual" else 0)
    np.testing.assert_allclose(r.table.dh0, h0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.dX, r.table.dz @ W_xh, rtol=1e-12, atol=1e-15)
    chain = r.out.eps_tt[:, :-1] + r.table.dz[:, 1:] @ W_hh + (r.table.dh[:, 1:] if cell == "residual" else 0)
    closes = np.allclose(r.table.dh[:, :-1], chain, rtol=1e-12, atol=1e-15)
    assert closes == (trunc is None)
