"""An independent, deliberately plain reference: loops over steps, one parameter copy per
step. Used only by the tests, to check the engine by finite differences."""

from __future__ import annotations

import numpy as np

F = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}


def step_losses(p, copies=None, dz=None):
    """Weighted per-step losses w_t L_t, shape (T,), summed over the batch.

    p: a Problem (canonical params in p.params). copies: optional per-step parameter
    copies {name: (T, *shape)}; dz: optional (B, T, m) additive perturbation of z.
    """
    params = p.params
    B, T, n = p.X.shape
    w = p.step_weights
    out = np.zeros(T)
    for b in range(B):
        h = p.h0[b].copy()
        for t in range(T):
            P = {k: (copies[k][t] if copies is not None else v) for k, v in params.items()}
            z = P["W_xh"] @ p.X[b, t] + P["W_hh"] @ h + P["b_h"]
            if dz is not None:
                z = z + dz[b, t]
            a = F[p.activation](z)
            h = h + a if p.cell == "residual" else a
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
                    logp = o - np.log(np.exp(o).sum())
                    L = -np.sum(p.Y[b, t] * logp)
            out[t] += w[t] * L
    return out


def fd_delta(p, eps=1e-6):
    """δ[b, t, k, i] = ∂(w_t L_t)/∂z_{k,i} by central differences (all t at once)."""
    B, T, _ = p.X.shape
    m = p.params["W_hh"].shape[0]
    out = np.zeros((B, T, T, m))
    for b in range(B):
        for k in range(T):
            for i in range(m):
                d = np.zeros((B, T, m))
                d[b, k, i] = eps
                plus, minus = step_losses(p, dz=d), step_losses(p, dz=-d)
                # step_losses sums over the batch; only sequence b changed
                out[b, :, k, i] = (plus - minus) / (2 * eps)
    out[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = 0.0
    return out


def fd_truncated_grads(p, K, eps=1e-6):
    """Σ_t Σ_{k: t−k<K} ∂(w_t L_t)/∂θ_k: perturb θ only in the copies k ∈ (t−K, t]."""
    T = p.X.shape[1]
    K = T if K is None else K
    grads = {}
    for name, v in p.params.items():
        g = np.zeros(v.size)
        for i in range(v.size):
            for t in range(T):
                lo = max(0, t - K + 1)
                plus = {k: np.repeat(a[None], T, axis=0) for k, a in p.params.items()}
                minus = {k: np.repeat(a[None], T, axis=0) for k, a in p.params.items()}
                plus[name].reshape(T, -1)[lo : t + 1, i] += eps
                minus[name].reshape(T, -1)[lo : t + 1, i] -= eps
                g[i] += (step_losses(p, copies=plus)[t] - step_losses(p, copies=minus)[t]) / (2 * eps)
        grads[name] = g.reshape(v.shape)
    return grads


def fd_state_grads(p, what, K, eps=1e-6):
    """∂L/∂h0 or ∂L/∂x_k by central differences, truncated like BPTT with window K:
    x_k reaches L_t only for t − k < K, h_0 only for t < K (0-based t)."""
    from dataclasses import replace

    base = getattr(p, what)
    B, T, _ = p.X.shape
    K = T if K is None else K
    g = np.zeros(base.shape)
    for idx in np.ndindex(base.shape):
        a = base.copy()
        a[idx] += eps
        plus = step_losses(replace(p, **{what: a}))
        a[idx] -= 2 * eps
        minus = step_losses(replace(p, **{what: a}))
        per_t = (plus - minus) / (2 * eps)
        if what == "X":
            k = idx[1]
            g[idx] = per_t[k : k + K].sum()
        else:
            g[idx] = per_t[:K].sum()
    return g
