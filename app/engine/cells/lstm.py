"""The LSTM cell, exactly as torch.nn.LSTM (gates i, f, g, o stacked in that order), state (h, c):

    a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh = [a^i; a^f; a^g; a^o]      (4m)
    i = σ(a^i)   f = σ(a^f)   g = tanh(a^g)   o = σ(a^o)
    c_t = f ⊙ c_{t−1} + i ⊙ g          h_t = o ⊙ tanh(c_t)

One step backwards, for loss rows t (bptt-math.md, "Gated cells"):

    ĉ   = ε^c_{t,k} + ε^h_{t,k} ⊙ o_k ⊙ (1 − tanh²(c_k))        (all of ∂L_t/∂c_k)
    δ^i = ĉ ⊙ g_k ⊙ i_k(1−i_k)     δ^f = ĉ ⊙ c_{k−1} ⊙ f_k(1−f_k)
    δ^g = ĉ ⊙ i_k ⊙ (1−g_k²)       δ^o = ε^h_{t,k} ⊙ tanh(c_k) ⊙ o_k(1−o_k)
    ε^h_{t,k−1} = W_hhᵀ δ_{t,k}     ε^c_{t,k−1} = ĉ ⊙ f_k

ĉ ⊙ f_k is the cell state's additive path: with f ≈ 1 the gradient crosses many steps without
being multiplied by W_hh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .base import Cell, ParamSpec, Trace


@dataclass(frozen=True)
class LSTMTrace(Trace):
    #: (..., B, T, m) tanh(c_t)
    tanh_c: np.ndarray | None = None


class LSTMCell(Cell):
    name = "lstm"
    states = ("h", "c")
    gates = ("i", "f", "g", "o")
    summary = "torch.nn.LSTM: gates i, f, g, o; c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t)"

    def specs(self, n: int, m: int) -> tuple[ParamSpec, ...]:
        G = self.G
        return (
            ParamSpec("W_ih", lambda n, m: (G * m, n), "input", "input weights [W_i; W_f; W_g; W_o]"),
            ParamSpec("W_hh", lambda n, m: (G * m, m), "recurrent", "recurrent weights [U_i; U_f; U_g; U_o]"),
            ParamSpec("b_ih", lambda n, m: (G * m,), "input_bias", "input bias (PyTorch's bias_ih)"),
            ParamSpec("b_hh", lambda n, m: (G * m,), "recurrent_bias", "recurrent bias (PyTorch's bias_hh)"),
        )

    def forward(self, act, theta, X, s0) -> LSTMTrace:
        """theta W_ih (..., 4m, n), W_hh (..., 4m, m), b_ih, b_hh (..., 4m); X (..., B, T, n);
        s0 {"h", "c"}: (..., B, m)."""
        W_ih, W_hh = theta["W_ih"], theta["W_hh"]
        bias = theta["b_ih"] + theta["b_hh"]
        xw = X @ np.swapaxes(W_ih, -1, -2)[..., None, :, :] + bias[..., None, None, :]  # (..., B, T, 4m)
        W_hhT = np.swapaxes(W_hh, -1, -2)
        T, Gm = X.shape[-2], xw.shape[-1]
        m = Gm // 4
        lead = np.broadcast_shapes(xw.shape[:-2], s0["h"].shape[:-1], s0["c"].shape[:-1], W_hh.shape[:-2] + (1,))
        a = np.empty(lead + (T, Gm))
        i, f, g, o, c, h, tanh_c = (np.empty(lead + (T, m)) for _ in range(7))
        h_t = np.broadcast_to(s0["h"], lead + (m,))
        c_t = np.broadcast_to(s0["c"], lead + (m,))
        for t in range(T):
            a_t = a[..., t, :]
            np.add(xw[..., t, :], h_t @ W_hhT, out=a_t)  # a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
            expit(a_t[..., :m], out=i[..., t, :])
            expit(a_t[..., m : 2 * m], out=f[..., t, :])
            np.tanh(a_t[..., 2 * m : 3 * m], out=g[..., t, :])
            expit(a_t[..., 3 * m :], out=o[..., t, :])
            c_t = np.add(f[..., t, :] * c_t, i[..., t, :] * g[..., t, :], out=c[..., t, :])
            np.tanh(c_t, out=tanh_c[..., t, :])
            h_t = np.multiply(o[..., t, :], tanh_c[..., t, :], out=h[..., t, :])
        h_prev, c_prev = _shifted(h, s0["h"]), _shifted(c, s0["c"])
        return LSTMTrace(
            z=a, h=h, h_prev=h_prev, states={"h": h, "c": c}, states_prev={"h": h_prev, "c": c_prev},
            gates={"i": i, "f": f, "g": g, "o": o}, tanh_c=tanh_c,
        )

    parts = ("eps_h", "eps_c", "o", "tanh_c", "dtanh_c", "c_hat", "i", "f", "g", "c_prev",
             "di", "df", "dg", "do", "delta_i", "delta_f", "delta_g", "delta_o", "delta",
             "eps_h_prev", "eps_c_prev")

    def backward_parts(self, tr: LSTMTrace, theta, k, eps):
        """ε^h_{t,k}, ε^c_{t,k}; o_k, tanh(c_k), 1 − tanh²(c_k) (dtanh_c), ĉ (c_hat); i, f, g,
        c_{k−1}; the gates' derivatives i(1−i), f(1−f), 1−g², o(1−o) (di, df, dg, do); δ^i, δ^f,
        δ^g, δ^o and δ = [δ^i; δ^f; δ^g; δ^o]; ε^h_{t,k−1} = W_hhᵀ δ, ε^c_{t,k−1} = ĉ ⊙ f."""
        at = lambda v: v[:, k, None, :]  # noqa: E731  step k, broadcast over the rows t
        i, f, g, o = (at(tr.gates[q]) for q in self.gates)
        tc, c_prev = at(tr.tanh_c), at(tr.states_prev["c"])
        eh, ec = eps["h"], eps["c"]
        dtanh_c = 1.0 - tc * tc
        c_hat = ec + eh * o * dtanh_c  # all of ∂L_t/∂c_k
        di, df, dg, do = i * (1.0 - i), f * (1.0 - f), 1.0 - g * g, o * (1.0 - o)
        d_i = c_hat * g * di  # δ^i
        d_f = c_hat * c_prev * df  # δ^f
        d_g = c_hat * i * dg  # δ^g
        d_o = eh * tc * do  # δ^o
        delta = np.concatenate([d_i, d_f, d_g, d_o], axis=-1)
        return {
            "eps_h": eh, "eps_c": ec, "o": o, "tanh_c": tc, "dtanh_c": dtanh_c, "c_hat": c_hat,
            "i": i, "f": f, "g": g, "c_prev": c_prev, "di": di, "df": df, "dg": dg, "do": do,
            "delta_i": d_i, "delta_f": d_f, "delta_g": d_g, "delta_o": d_o, "delta": delta,
            "eps_h_prev": delta @ theta["W_hh"],  # ε^h = W_hhᵀ δ
            "eps_c_prev": c_hat * f,  # ε^c = ĉ ⊙ f
        }


def _shifted(s: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """s_{t−1} for every t: (..., B, T, m) with s_0 first."""
    prev = np.empty_like(s)
    prev[..., 0, :] = s0
    prev[..., 1:, :] = s[..., :-1, :]
    return prev
