"""LSTM and GRU (exactly as torch.nn.LSTM / nn.GRU) through the generic engine: central finite
differences of a plain loop-based reference for every cell × loss × loss_steps × truncation ×
batch; ε^h, ε^c (delta_h, delta_c) against explicit products of step Jacobians taken by finite
differences; the per-step gradients, the gradient check and ‖J_k‖₂ of the whole state."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from app.engine import Problem, run

GATED = ("lstm", "gru")
LOSSES = ("softmax_ce", "mse", "upstream")
STEPS = ("all", "last", "mask")
G = {"lstm": 4, "gru": 3}


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def plain_step(cell, P, x, h, c, da=None):
    """One step of the plain reference: (a, h, c) with an optional perturbation da of a."""
    m = h.shape[0]
    if cell == "lstm":
        a = P["W_ih"] @ x + P["b_ih"] + P["W_hh"] @ h + P["b_hh"]
        if da is not None:
            a = a + da
        i, f, g, o = sig(a[:m]), sig(a[m : 2 * m]), np.tanh(a[2 * m : 3 * m]), sig(a[3 * m :])
        c = f * c + i * g
        return a, o * np.tanh(c), c
    xw, hw = P["W_ih"] @ x + P["b_ih"], P["W_hh"] @ h + P["b_hh"]
    a_r, a_u = xw[:m] + hw[:m], xw[m : 2 * m] + hw[m : 2 * m]
    if da is not None:
        a_r, a_u = a_r + da[:m], a_u + da[m : 2 * m]
    r, u = sig(a_r), sig(a_u)
    a_n = xw[2 * m :] + r * hw[2 * m :]
    if da is not None:
        a_n = a_n + da[2 * m :]
    return np.concatenate([a_r, a_u, a_n]), (1 - u) * np.tanh(a_n) + u * h, c


def plain_losses(p, copies=None, da=None, h0=None, c0=None, X=None):
    """(T,) Σ_b w_t L_t of the plain reference; copies: per-step parameters {name: (T, …)};
    da (B, T, G·m) an additive perturbation of the pre-activations."""
    X = p.X if X is None else X
    h0 = p.h0 if h0 is None else h0
    c0 = (np.zeros_like(p.h0) if p.c0 is None else p.c0) if c0 is None else c0
    B, T, _ = X.shape
    w, out = p.step_weights, np.zeros(T)
    for b in range(B):
        h, c = h0[b].copy(), c0[b].copy()
        for t in range(T):
            P = {k: (copies[k][t] if copies is not None else v) for k, v in p.params.items()}
            _, h, c = plain_step(p.cell, P, X[b, t], h, c, None if da is None else da[b, t])
            if not p.mask[t]:
                continue
            if p.loss == "upstream":
                L = p.G[b, t] @ h
            else:
                o = P["W_hy"] @ h + P["b_y"]
                if p.loss == "mse":
                    L = 0.5 * np.sum((o - p.Y[b, t]) ** 2)
                else:
                    o = o - o.max()
                    L = -np.sum(p.Y[b, t] * (o - np.log(np.exp(o).sum())))
            out[t] += w[t] * L
    return out


def make_gated(cell, loss, steps, trunc, B, reduction="sum", seed=0, T=4, n=2, m=3, p=2):
    rng = np.random.default_rng(seed)
    Gm = G[cell] * m
    params = {
        "W_ih": rng.normal(size=(Gm, n)) * 0.8, "W_hh": rng.normal(size=(Gm, m)) * 0.7,
        "b_ih": rng.normal(size=Gm) * 0.3, "b_hh": rng.normal(size=Gm) * 0.3,
    }
    if loss != "upstream":
        params |= {"W_hy": rng.normal(size=(p, m)), "b_y": rng.normal(size=p) * 0.3}
    mask = {"all": np.ones(T, bool), "last": np.arange(T) == T - 1, "mask": np.arange(T) % 2 == 0}[steps]
    Y = Gu = None
    if loss == "softmax_ce":
        Y = rng.dirichlet(np.ones(p), size=(B, T))
    elif loss == "mse":
        Y = rng.normal(size=(B, T, p))
    else:
        Gu = rng.normal(size=(B, T, m))
    return Problem(
        cell=cell, activation="tanh", loss=loss, notation="canonical", params=params,
        X=rng.normal(size=(B, T, n)), h0=rng.normal(size=(B, m)) * 0.5, mask=mask, Y=Y, G=Gu,
        reduction=reduction, truncation=trunc,
        c0=rng.normal(size=(B, m)) * 0.5 if cell == "lstm" else None, eps_tables=True,
    )


def fd(f, x, eps=1e-6):
    """Central differences of the vector function f at the array x: (x.shape + f's shape)."""
    base = f(x)
    out = np.zeros(x.shape + np.shape(base))
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        out[idx] = (f(xp) - f(xm)) / (2 * eps)
    return out


@pytest.mark.parametrize(
    "cell,loss,steps,trunc,B", list(itertools.product(GATED, LOSSES, STEPS, (None, 2), (1, 2)))
)
def test_gated_cells_match_finite_differences(cell, loss, steps, trunc, B):
    reduction = "mean" if (B == 2 and steps != "last") else "sum"
    p = make_gated(cell, loss, steps, trunc, B, reduction)
    r = run(p)
    T, K = p.X.shape[1], p.X.shape[1] if trunc is None else trunc
    tol = dict(rtol=1e-6, atol=1e-8)
    # δ_{t,k} = ∂(w_t L_t)/∂a_k, the terms outside the window zeroed
    Gm = r.forward.z.shape[-1]
    want = np.zeros((B, T, T, Gm))
    for b in range(B):
        def per_t(dab, b=b):
            da = np.zeros((B, T, Gm))
            da[b] = dab
            return plain_losses(p, da=da)
        d = fd(per_t, np.zeros((T, Gm)))  # [k, i, t]
        want[b] = d.transpose(2, 0, 1)
    t_idx, k_idx = np.indices((T, T))
    want[:, ~((k_idx <= t_idx) & (t_idx - k_idx < K))] = 0.0
    np.testing.assert_allclose(r.table.delta, want, **tol)
    # the parameter gradients: Σ_t Σ_{k: t−k<K} ∂(w_t L_t)/∂θ_k (per-step copies)
    for name, v in p.params.items():
        g = np.zeros(v.shape)
        for t in range(T):
            lo = max(0, t - K + 1)

            def L_t(val, name=name, t=t, lo=lo):
                copies = {k: np.repeat(a[None], T, axis=0) for k, a in p.params.items()}
                copies[name][lo : t + 1] = val
                return plain_losses(p, copies=copies)[t]
            g += fd(L_t, v.copy())
        np.testing.assert_allclose(r.grads[name], g, **tol, err_msg=name)
    if trunc is None:  # h0, c0, inputs (untruncated: their truncation rule is the vanilla one's)
        np.testing.assert_allclose(r.table.ds0["h"], fd(lambda v: plain_losses(p, h0=v).sum(), p.h0), **tol)
        if cell == "lstm":
            np.testing.assert_allclose(r.table.ds0["c"], fd(lambda v: plain_losses(p, c0=v).sum(), p.c0), **tol)
        np.testing.assert_allclose(r.dX, fd(lambda v: plain_losses(p, X=v).sum(), p.X), **tol)
        for name in r.grads:  # Σ_t ∂L_t/∂θ = ∂L/∂θ
            np.testing.assert_allclose(r.per_step[name].sum(axis=0), r.grads[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", GATED)
def test_eps_tables_are_products_of_step_jacobians(cell):
    """ε^s_{t,k} = J_{k+1}ᵀ ⋯ J_tᵀ [ε^h_{t,t}; 0] and δ_{t,k} = L_kᵀ ε^s_{t,k}, with the whole
    state's J_k = ∂s_k/∂s_{k−1} and L_k = ∂s_k/∂a_k taken by finite differences of the plain step."""
    p = make_gated(cell, "mse", "all", None, 1, T=5)
    r = run(p)
    T, m = 5, p.h0.shape[1]
    fw, P = r.forward, p.params
    hs, cs = fw.states["h"][0], fw.states.get("c", np.zeros_like(fw.h))[0]
    hp, cp = fw.states_prev["h"][0], fw.states_prev.get("c", np.zeros_like(fw.h))[0]
    S = 2 * m if cell == "lstm" else m

    def state(h, c):
        return np.concatenate([h, c]) if cell == "lstm" else h

    J, L = [], []
    for k in range(T):
        x = p.X[0, k]
        J.append(fd(lambda s: state(*plain_step(cell, P, x, s[:m], s[m:] if cell == "lstm" else None)[1:]),
                    state(hp[k], cp[k])).T)  # J[k][i, j] = ∂s_k[i]/∂s_{k−1}[j]
        L.append(fd(lambda da: state(*plain_step(cell, P, x, hp[k], cp[k] if cell == "lstm" else None, da)[1:]),
                    np.zeros(fw.z.shape[-1])).T)
    eps_h, eps_c = r.table.eps["h"][0], r.table.eps.get("c")
    for t in range(T):
        e = np.zeros(S)
        e[:m] = r.out.eps_tt[0, t]
        for k in range(t, -1, -1):
            if k < t:
                e = J[k + 1].T @ e
            np.testing.assert_allclose(eps_h[t, k], e[:m], rtol=1e-6, atol=1e-9)
            if cell == "lstm":
                np.testing.assert_allclose(eps_c[0, t, k], e[m:], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(r.table.delta[0, t, k], L[k].T @ e, rtol=1e-6, atol=1e-9)
    # ‖J_k‖₂ of the whole state (2m × 2m for the LSTM)
    np.testing.assert_allclose(r.diagnostics.jacobian_norm[0], [np.linalg.norm(j, 2) for j in J], rtol=1e-6)
    assert r.diagnostics.spectral_radius is None and r.diagnostics.gamma is None
    # the bound holds: ‖δ_{t,k}‖ ≤ ‖L_k‖ Π ‖J_τ‖ ‖ε_{t,t}‖
    assert (r.table.delta_norm[0] <= r.diagnostics.delta_bound[0] * (1 + 1e-12)).all()


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("detail", ["full", "norms"])
def test_gated_detail_clipping_and_gradient_check(cell, detail):
    p = dataclasses.replace(make_gated(cell, "softmax_ce", "mask", None, 2), detail=detail,
                            gradient_check=True, clip=("norm", 0.1))
    r = run(p)
    assert r.check.ok, r.check.per_array
    assert set(r.check.per_array) >= {"W_ih", "W_hh", "b_ih", "b_hh", "h0", "inputs"}
    assert ("c0" in r.check.per_array) == (cell == "lstm")
    assert r.clip.clipped and r.clip.norm_after == pytest.approx(0.1)
    full = run(dataclasses.replace(p, detail="full", clip=None, gradient_check=False))
    np.testing.assert_allclose(r.table.delta_norm, np.linalg.norm(full.table.delta, axis=-1), rtol=1e-12)
    for k in full.grads:
        np.testing.assert_allclose(r.grads_unclipped[k], full.grads[k], rtol=1e-12)


@pytest.mark.parametrize("cell", GATED)
def test_gated_truncated_gradient_check_compares_the_exact_gradient(cell):
    p = dataclasses.replace(make_gated(cell, "mse", "all", 1, 1, T=5), gradient_check=True)
    assert run(p).check.ok


def test_gru_biases_get_different_gradients_lstm_biases_the_same():
    """b_hn sits inside r ⊙ (…): the GRU's two biases differ in their n rows only."""
    g = run(make_gated("gru", "mse", "all", None, 1)).grads
    m = 3
    np.testing.assert_array_equal(g["b_ih"][: 2 * m], g["b_hh"][: 2 * m])
    assert not np.allclose(g["b_ih"][2 * m :], g["b_hh"][2 * m :])
    g = run(make_gated("lstm", "mse", "all", None, 1)).grads
    np.testing.assert_array_equal(g["b_ih"], g["b_hh"])
