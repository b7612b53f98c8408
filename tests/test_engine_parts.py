"""The numbers of one selected δ_{t,k} (``app/engine/parts.py``, the API's backward_parts) and
the per-copy gradient terms (``gradients.per_copy``, grads_per_copy), for every cell, against
the independent plain reference of tests/reference_gated.py (loops per sequence, loss and step,
itself checked against torch.nn.LSTM/GRU) and central finite differences of the unrolled
graph's per-copy parameters (float64)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import reference_gated as ref
from test_engine_vs_reference_gated import case_of, problem

from app.engine import parts, run
from app.engine.notation import from_canonical

CLOSE = dict(rtol=1e-12, atol=1e-14)
CELLS = ("vanilla", "residual", "lstm", "gru")
GATED = ("lstm", "gru")


def names(cell):
    """(notation, hidden) under which the reference names the cell's parameters."""
    if cell in GATED:
        return "pytorch", ("W_ih", "W_hh", "b_ih", "b_hh")
    return "canonical", ("W_xh", "W_hh", "b_h")


def select(p, r, t, k, b):
    return parts.compute(ref_cell(p), r.forward, r.theta, p.X, r.out.eps_tt, r.out.e, p.mask,
                         p.truncation, t, k, b)


def ref_cell(p):
    from app.engine.cells import CELLS as REG

    return REG[p.cell]


@pytest.mark.parametrize("cell,loss,steps,trunc,B", list(itertools.product(
    CELLS, ("mse", "upstream"), ("all", "mask"), (None, 2), (1, 2))))
def test_each_part_of_the_step_equals_the_plain_reference(cell, loss, steps, trunc, B):
    """For every (t, k, b): ε^s_{t,k} in, δ_{t,k} and its gate blocks, ε^s_{t,k−1} out, the
    step's factors (gates, tanh(c_k), W_hn h_{k−1} + b_hn), ĉ, δ^n ⊙ r and both summands of the
    GRU's ε^h_{t,k−1}, the residual cell's W_hhᵀ δ: each against the reference's own loops."""
    p = problem(cell, loss, steps, trunc, B)
    r = run(p)
    want = ref.bptt(case_of(p), trunc)
    fw = ref.forward(case_of(p))
    T = p.X.shape[1]
    K = T if trunc is None else trunc
    W = p.params["W_hh"]
    m = p.h0.shape[1]
    n_checked = 0
    for b, t in itertools.product(range(B), range(T)):
        for k in range(t + 1):
            s = select(p, r, t, k, b)
            assert (s.t, s.k, s.b, s.in_loss, s.kept) == (t, k, b, bool(p.mask[t]), t - k < K)
            if not s.kept:
                assert s.step is None and s.step_from is None
                assert all(not np.any(v) for name, v in s.terms.items() if name not in ("W_hy", "b_y"))
                continue
            st = s.step
            d = want["delta"][b, t, k]
            np.testing.assert_allclose(st["delta"], d, **CLOSE)
            np.testing.assert_allclose(st["eps_h"], want["eps_h"][b, t, k], **CLOSE)
            prev_h = want["eps_h"][b, t, k - 1] if k else want["eps_h0"][b, t]
            np.testing.assert_allclose(st["eps_h_prev"], prev_h, **CLOSE)
            assert set(st) == set(ref_cell(p).parts)
            if k < t:  # the step at k + 1 made ε_{t,k}
                np.testing.assert_allclose(s.step_from["eps_h_prev"], want["eps_h"][b, t, k], **CLOSE)
                np.testing.assert_allclose(s.step_from["delta"], want["delta"][b, t, k + 1], **CLOSE)
            else:
                assert s.step_from is None
            if cell == "residual":
                np.testing.assert_allclose(st["WT_delta"], W.T @ d, **CLOSE)
            if cell in ("vanilla", "residual"):
                np.testing.assert_allclose(st["fprime"], ref.ACT[p.activation][1](fw["a"][b, k]), **CLOSE)
            if cell == "lstm":
                g = fw["gates"]
                i, f, gg, o = (g[q][b, k] for q in "ifgo")
                for q, v in (("i", i), ("f", f), ("g", gg), ("o", o)):
                    np.testing.assert_allclose(st[q], v, **CLOSE)
                np.testing.assert_allclose(st["tanh_c"], np.tanh(fw["c"][b, k]), **CLOSE)
                np.testing.assert_allclose(st["eps_c"], want["eps_c"][b, t, k], **CLOSE)
                prev_c = want["eps_c"][b, t, k - 1] if k else want["eps_c0"][b, t]
                np.testing.assert_allclose(st["eps_c_prev"], prev_c, **CLOSE)
                # ĉ = ∂L_t/∂c_k: δ^g = ĉ ⊙ i ⊙ tanh'(a^g), with the reference's own δ^g
                np.testing.assert_allclose(st["c_hat"] * i * ref.dtanh(fw["a"][b, k, 2 * m : 3 * m]),
                                           d[2 * m : 3 * m], **CLOSE)
                for j, q in enumerate("ifgo"):
                    np.testing.assert_allclose(st[f"delta_{q}"], d[j * m : (j + 1) * m], **CLOSE)
            if cell == "gru":
                g = fw["gates"]
                r_k, z_k = g["r"][b, k], g["z"][b, k]
                np.testing.assert_allclose(st["r"], r_k, **CLOSE)
                np.testing.assert_allclose(st["u"], z_k, **CLOSE)  # PyTorch's z is our u
                np.testing.assert_allclose(st["n"], g["n"][b, k], **CLOSE)
                np.testing.assert_allclose(st["hn"], fw["hn"][b, k], **CLOSE)
                for j, q in enumerate("run"):
                    np.testing.assert_allclose(st[f"delta_{q}"], d[j * m : (j + 1) * m], **CLOSE)
                d_n_r = d[2 * m :] * r_k
                np.testing.assert_allclose(st["delta_n_r"], d_n_r, **CLOSE)
                np.testing.assert_allclose(st["eps_h_direct"], want["eps_h"][b, t, k] * z_k, **CLOSE)
                through = W[:m].T @ d[:m] + W[m : 2 * m].T @ d[m : 2 * m] + W[2 * m :].T @ d_n_r
                np.testing.assert_allclose(st["eps_h_through"], through, **CLOSE)
            n_checked += 1
    assert n_checked >= B * T  # the kept pairs were checked


@pytest.mark.parametrize("cell,trunc,B", list(itertools.product(CELLS, (None, 2), (1, 2))))
def test_the_bound_and_jacobian_norms_are_the_diagnostics_bits(cell, trunc, B):
    """bound, jacobian_norms and gain are diagnostics.delta_bound[b, t, k], jacobian_norm[b, k+1:t+1]
    bit for bit (the same products in the same order), and the bound bounds ‖δ_{t,k}‖."""
    p = problem(cell, "mse", "all", trunc, B)
    r = run(p)
    T = p.X.shape[1]
    for b, t in itertools.product(range(B), range(T)):
        for k in range(t + 1):
            s = select(p, r, t, k, b)
            assert s.bound == r.diagnostics.delta_bound[b, t, k]
            np.testing.assert_array_equal(s.jacobian_norms, r.diagnostics.jacobian_norm[b, k + 1 : t + 1])
            assert s.jacobian_product == pytest.approx(np.prod(s.jacobian_norms), rel=1e-14)
            if k < t:
                assert s.jacobian_geomean == pytest.approx(np.prod(s.jacobian_norms) ** (1 / (t - k)), rel=1e-12)
            else:
                assert s.jacobian_geomean is None and s.jacobian_product == 1.0
            if s.kept:
                assert np.linalg.norm(s.step["delta"]) <= s.bound * (1 + 1e-12)


def fd_copy_terms(case, t, k, eps=1e-6):
    """∂(w_t L_t)/∂θ_k for the parameters of copy k alone (the unrolled graph), by central
    differences; the output layer's of step t."""
    T = case.X.shape[1]
    out = {}
    for name, v in case.params.items():
        g = np.zeros(v.size)
        copy = t if name in ref.OUTPUT_PARAMS[case.cell] else k
        for i in range(v.size):
            plus = {q: np.repeat(a[None], T, axis=0) for q, a in case.params.items()}
            minus = {q: np.repeat(a[None], T, axis=0) for q, a in case.params.items()}
            plus[name].reshape(T, -1)[copy, i] += eps
            minus[name].reshape(T, -1)[copy, i] -= eps
            g[i] = (ref.step_losses(case, copies=plus)[t] - ref.step_losses(case, copies=minus)[t]) / (2 * eps)
        out[name] = g.reshape(v.shape)
    return out


@pytest.mark.parametrize("cell,trunc", list(itertools.product(CELLS, (None, 2))))
def test_copy_terms_match_finite_differences(cell, trunc):
    """terms: copy k's term of ∂L_t/∂θ (0 when truncation drops δ_{t,k}), and step t's term of
    the output layer, against central differences of the copies' parameters."""
    p = problem(cell, "mse", "all", trunc, 1)
    r = run(p)
    notation, hidden = names(cell)
    case = case_of(p)
    T = p.X.shape[1]
    for t, k in ((T - 1, 1), (T - 1, T - 1), (2, 0), (T - 1, 0)):
        s = select(p, r, t, k, 0)
        got = from_canonical(notation, s.terms, hidden)
        want = fd_copy_terms(case, t, k)
        for name, w in want.items():
            if not s.kept and name not in ref.OUTPUT_PARAMS[cell]:
                w = np.zeros_like(w)  # dropped by truncation
            np.testing.assert_allclose(got[name], w, rtol=1e-6, atol=1e-8, err_msg=f"{name} t={t} k={k}")


@pytest.mark.parametrize("cell,trunc,B", list(itertools.product(CELLS, (None, 2), (1, 2))))
def test_per_copy_terms_match_finite_differences_and_sum_to_the_gradient(cell, trunc, B):
    """grads_per_copy[θ][k] = Σ_{t: 0 ≤ t − k < K} ∂(w_t L_t)/∂θ_k (the output layer: step k's own
    term), summed over the batch; Σ_k of it is the summed gradient."""
    p = dataclasses.replace(problem(cell, "mse", "mask", trunc, B), per_copy=True)
    r = run(p)
    notation, hidden = names(cell)
    case = case_of(p)
    T = p.X.shape[1]
    K = T if trunc is None else trunc
    got = from_canonical(notation, r.per_copy, hidden)
    grads = from_canonical(notation, r.grads, hidden)
    for name, v in case.params.items():
        np.testing.assert_allclose(got[name].sum(axis=0), grads[name], rtol=1e-12, atol=1e-14)
        out_layer = name in ref.OUTPUT_PARAMS[cell]
        for k in range(T):
            g = np.zeros(v.size)
            for i in range(v.size):
                plus = {q: np.repeat(a[None], T, axis=0) for q, a in case.params.items()}
                minus = {q: np.repeat(a[None], T, axis=0) for q, a in case.params.items()}
                plus[name].reshape(T, -1)[k, i] += 1e-6
                minus[name].reshape(T, -1)[k, i] -= 1e-6
                d = (ref.step_losses(case, copies=plus) - ref.step_losses(case, copies=minus)) / 2e-6
                kept = np.arange(T) == k if out_layer else (np.arange(T) >= k) & (np.arange(T) - k < K)
                g[i] = d[kept].sum()
            np.testing.assert_allclose(got[name][k], g.reshape(v.shape), rtol=1e-6, atol=1e-8, err_msg=f"{name} k={k}")


def test_per_copy_terms_keep_finite_numbers_beside_an_infinite_state():
    """A term with a zero factor is no term: an infinite h_k beside δ = 0 (steps without loss)
    leaves the per-copy terms finite where PyTorch's are (the rule of gradients.matmul_existing)."""
    from test_engine_fd import make_problem

    p = make_problem("vanilla", "identity", "mse", "all", None, 1, T=60)
    m = p.h0.shape[1]
    params = dict(p.params, W_hh=np.eye(m) * 1e10, W_xh=np.ones_like(p.params["W_xh"]))
    mask = np.zeros(60, bool)
    mask[:2] = True
    p = dataclasses.replace(p, params=params, mask=mask, per_copy=True)
    r = run(p)
    assert not np.isfinite(r.forward.h).all()  # h overflowed
    for name in ("W_xh", "W_hh", "b_h"):
        assert np.isfinite(r.per_copy[name]).all(), name
        np.testing.assert_array_equal(r.per_copy[name][5:], 0.0)
