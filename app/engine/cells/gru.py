"""The GRU cell, exactly as torch.nn.GRU (gates r, z, n stacked in that order; b_hn inside r ⊙ (…)):

    r = σ(W_ir x + b_ir + W_hr h_{t−1} + b_hr)        u = σ(W_iz x + b_iz + W_hz h_{t−1} + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h_{t−1} + b_hn))
    h_t = (1 − u) ⊙ n + u ⊙ h_{t−1}

The update gate is PyTorch's z; here it is **u**, since z_t is our pre-activation (δ = ∂L/∂z).
The stacked pre-activations are a = [a^r; a^u; a^n], a^n = W_in x + b_in + r ⊙ (W_hn h + b_hn).
One step backwards, for loss rows t:

    δ^n = ε^h ⊙ (1 − u) ⊙ (1 − n²)     δ^u = ε^h ⊙ (h_{k−1} − n) ⊙ u(1 − u)
    δ^r = δ^n ⊙ (W_hn h_{k−1} + b_hn) ⊙ r(1 − r)
    ε^h_{t,k−1} = ε^h ⊙ u + W_hhᵀ [δ^r; δ^u; δ^n ⊙ r]

so the recurrent product's error is δ with its n rows times r_k (``recurrent_scale``): W_hh's n
rows take (δ^n ⊙ r_k) h_{k−1}ᵀ and b_hn takes δ^n ⊙ r_k, while b_in takes δ^n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .base import Cell, ParamSpec, Trace
from .lstm import _shifted


@dataclass(frozen=True)
class GRUTrace(Trace):
    #: (..., B, T, m) W_hn h_{t−1} + b_hn (the part r scales)
    hn: np.ndarray | None = None


class GRUCell(Cell):
    name = "gru"
    gates = ("r", "u", "n")
    summary = "torch.nn.GRU: gates r, u (PyTorch's z), n; h_t = (1 − u) ⊙ n + u ⊙ h_{t−1}"

    def specs(self, n: int, m: int) -> tuple[ParamSpec, ...]:
        G = self.G
        return (
            ParamSpec("W_ih", lambda n, m: (G * m, n), "input", "input weights [W_ir; W_iz; W_in]"),
            ParamSpec("W_hh", lambda n, m: (G * m, m), "recurrent", "recurrent weights [W_hr; W_hz; W_hn]"),
            ParamSpec("b_ih", lambda n, m: (G * m,), "input_bias", "input bias [b_ir; b_iz; b_in]"),
            ParamSpec("b_hh", lambda n, m: (G * m,), "recurrent_bias", "recurrent bias [b_hr; b_hz; b_hn]"),
        )

    def forward(self, act, theta, X, s0) -> GRUTrace:
        """theta W_ih (..., 3m, n), W_hh (..., 3m, m), b_ih, b_hh (..., 3m); X (..., B, T, n);
        s0 {"h"}: (..., B, m)."""
        W_ih, W_hh, b_hh = theta["W_ih"], theta["W_hh"], theta["b_hh"]
        xw = X @ np.swapaxes(W_ih, -1, -2)[..., None, :, :] + theta["b_ih"][..., None, None, :]
        W_hhT = np.swapaxes(W_hh, -1, -2)
        T, Gm = X.shape[-2], xw.shape[-1]
        m = Gm // 3
        lead = np.broadcast_shapes(xw.shape[:-2], s0["h"].shape[:-1], W_hh.shape[:-2] + (1,), b_hh.shape[:-1] + (1,))
        a = np.empty(lead + (T, Gm))
        r, u, n, h, hn = (np.empty(lead + (T, m)) for _ in range(5))
        h_t = np.broadcast_to(s0["h"], lead + (m,))
        for t in range(T):
            hw = h_t @ W_hhT + b_hh[..., None, :]  # W_hh h_{t−1} + b_hh, (..., B, 3m)
            a_t = a[..., t, :]
            np.add(xw[..., t, : 2 * m], hw[..., : 2 * m], out=a_t[..., : 2 * m])  # a^r, a^u
            expit(a_t[..., :m], out=r[..., t, :])
            expit(a_t[..., m : 2 * m], out=u[..., t, :])
            hn[..., t, :] = hw[..., 2 * m :]
            np.add(xw[..., t, 2 * m :], r[..., t, :] * hn[..., t, :], out=a_t[..., 2 * m :])  # a^n
            np.tanh(a_t[..., 2 * m :], out=n[..., t, :])
            u_t = u[..., t, :]
            h_t = np.add((1.0 - u_t) * n[..., t, :], u_t * h_t, out=h[..., t, :])
        h_prev = _shifted(h, s0["h"])
        return GRUTrace(z=a, h=h, h_prev=h_prev, states={"h": h}, states_prev={"h": h_prev},
                        gates={"r": r, "u": u, "n": n}, hn=hn)

    parts = ("eps_h", "r", "u", "n", "h_prev", "hn", "one_minus_u", "dn", "h_prev_minus_n", "du",
             "dr", "delta_n", "delta_u", "delta_r", "delta", "delta_n_r", "eps_h_direct",
             "eps_h_through", "eps_h_prev")

    def backward_parts(self, tr: GRUTrace, theta, k, eps):
        """ε^h_{t,k}; r, u, n, h_{k−1}, W_hn h_{k−1} + b_hn (hn); 1 − u, 1 − n² (dn), h_{k−1} − n,
        u(1−u) (du), r(1−r) (dr); δ^n, δ^u, δ^r and δ = [δ^r; δ^u; δ^n]; δ^n ⊙ r (the error of
        W_hn h_{k−1} + b_hn, b_hn's gradient); ε^h_{t,k−1} = ε^h ⊙ u (eps_h_direct)
        + W_hhᵀ [δ^r; δ^u; δ^n ⊙ r] (eps_h_through)."""
        at = lambda v: v[:, k, None, :]  # noqa: E731  step k, broadcast over the rows t
        r, u, n = (at(tr.gates[q]) for q in self.gates)
        hn, h_prev = at(tr.hn), at(tr.h_prev)
        eh = eps["h"]
        one_minus_u, dn, h_prev_minus_n = 1.0 - u, 1.0 - n * n, h_prev - n
        du, dr = u * (1.0 - u), r * (1.0 - r)
        d_n = eh * one_minus_u * dn
        d_u = eh * h_prev_minus_n * du
        d_r = d_n * hn * dr
        delta = np.concatenate([d_r, d_u, d_n], axis=-1)
        d_n_r = d_n * r
        d_rec = np.concatenate([d_r, d_u, d_n_r], axis=-1)  # the error of W_hh h_{k−1} + b_hh
        direct, through = eh * u, d_rec @ theta["W_hh"]
        return {
            "eps_h": eh, "r": r, "u": u, "n": n, "h_prev": h_prev, "hn": hn,
            "one_minus_u": one_minus_u, "dn": dn, "h_prev_minus_n": h_prev_minus_n, "du": du, "dr": dr,
            "delta_n": d_n, "delta_u": d_u, "delta_r": d_r, "delta": delta, "delta_n_r": d_n_r,
            "eps_h_direct": direct, "eps_h_through": through, "eps_h_prev": direct + through,
        }

    def recurrent_scale(self, tr: GRUTrace) -> np.ndarray:
        r = tr.gates["r"]
        one = np.ones_like(r)
        return np.concatenate([one, one, r], axis=-1)
