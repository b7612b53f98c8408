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
from functools import lru_cache

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


    # ------------------------------------------------------------ the training loop's fast path

    def fast_forward(self, act, theta, X, s0, work: dict | None = None) -> LSTMTrace:
        """``forward`` for one model (no leading axes: theta's arrays 2-D and 1-D, X (B, T, n),
        s0 (B, m)), as the training loop runs it at every update: the same formulas with fewer
        and cheaper numpy calls per step.

        - Every step works on contiguous blocks: the arrays are stored time-major and gate-major,
          a_t as (4, B, m) (one stacked product h_{t−1} W_hh,jᵀ for the four gates), and the
          trace's (B, T, m) arrays are transposed views of them (numpy's small strided ufuncs
          cost four times its contiguous ones).
        - The gates in the order i, f, o, g with the rows of i, f, o negated (both exact), so that
          the three sigmoids are σ(a) = 1/(1 + exp(−a)) over one block of 3·B·m: numpy's
          vectorised exp, within 2 ulp of scipy's ``expit`` that ``forward`` calls per gate and
          that costs four times as much.
        - ``work`` (a dict the caller keeps, one per run, never shared between threads): the
          arrays are kept there and reused by the next call of the same sizes. Fresh arrays of
          a few hundred kB are fresh pages from the system at every update (glibc gives them
          back), and their page faults cost more than the loop. The trace returned is then valid
          until the next call with the same ``work``.

        a_t (``z``, the signs undone exactly), the gates and the states are ``forward``'s to
        rounding (a few ulp: numpy's exp, and the products grouped by gate; tests/test_train_loop.py
        checks 1e-14, also with saturated gates)."""
        W_ih, W_hh = theta["W_ih"], theta["W_hh"]
        B, T, n = X.shape
        Gm = W_hh.shape[0]
        m = Gm // 4
        buf = _Buffers(work, "forward", (B, T, n, m))
        perm, sign, order = _fast_order(m)
        W_x = W_ih[perm] * sign[:, None]
        bias = (theta["b_ih"] + theta["b_hh"])[perm] * sign
        xw_bt = np.matmul(X, W_x.T, out=buf("xw_bt", (B, T, Gm)))
        xw_bt += bias  # ±(W_ih x_t + b_ih + b_hh), columns i, f, o, g
        xw = buf("xw", (T, 4, B, m))
        np.copyto(xw, xw_bt.reshape(B, T, 4, m).transpose(1, 2, 0, 3))
        W4 = np.ascontiguousarray((W_hh[perm] * sign[:, None]).reshape(4, m, m).transpose(0, 2, 1))  # (4, m, m) W_hh,jᵀ
        A = buf("A", (T, 4, B, m))  # [−a^i, −a^f, −a^o, a^g] per step
        S = buf("S", (T, 3, B, m))  # σ(a^i), σ(a^f), σ(a^o)
        g, tanh_c = buf("g", (T, B, m)), buf("tanh_c", (T, B, m))
        h_prev, c_prev = buf("h_prev", (T + 1, B, m)), buf("c_prev", (T + 1, B, m))  # s_0 … s_T
        ig = buf("ig", (B, m))
        h_prev[0], c_prev[0] = s0["h"], s0["c"]
        h, c_t = h_prev[1:], c_prev[0]
        with np.errstate(over="ignore"):  # exp(−a) = inf for a < −709: σ = 1/(1 + inf) = 0
            for t in range(T):
                a_t, s_t = A[t], S[t]
                np.matmul(h_prev[t], W4, out=a_t)
                a_t += xw[t]  # a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh (the signs above)
                np.exp(a_t[:3], out=s_t)
                s_t += 1.0
                np.divide(1.0, s_t, out=s_t)  # i, f, o = σ(a) = 1/(1 + exp(−a))
                g_t = np.tanh(a_t[3], out=g[t])
                np.multiply(s_t[0], g_t, out=ig)
                c_t = np.multiply(s_t[1], c_t, out=c_prev[t + 1])
                c_t += ig  # c_t = f ⊙ c_{t−1} + i ⊙ g
                np.multiply(s_t[2], np.tanh(c_t, out=tanh_c[t]), out=h[t])  # h_t = o ⊙ tanh(c_t)
        # a_t in the order i, f, g, o, the signs undone (exact), as (B, T, 4m)
        a = buf("a", (B, T, Gm))
        a4 = a.reshape(B, T, 4, m)
        for j, (src, sg) in enumerate(order):
            np.multiply(A[:, src].transpose(1, 0, 2), sg, out=a4[:, :, j])
        bt = lambda v: v.transpose(1, 0, 2)  # noqa: E731  (T, B, m) → the trace's (B, T, m), a view
        i, f, o = (bt(S[:, j]) for j in range(3))
        h, hp, cp = bt(h), bt(h_prev[:-1]), bt(c_prev[:-1])
        c, g, tanh_c = bt(c_prev[1:]), bt(g), bt(tanh_c)
        return LSTMTrace(
            z=a, h=h, h_prev=hp, states={"h": h, "c": c}, states_prev={"h": hp, "c": cp},
            gates={"i": i, "f": f, "g": g, "o": o}, tanh_c=tanh_c,
        )

    def fast_xi_pass(self, tr: LSTMTrace, theta, eps_tt: np.ndarray, xi: np.ndarray | None,
                     work: dict | None = None) -> np.ndarray:
        """The training loop's dh_next pass (``train.loop.xi_pass``) for the LSTM: the formulas
        of ``backward_parts`` with every factor that does not depend on the errors taken for all
        steps at once,

            o_k ⊙ (1 − tanh²(c_k)),  [g_k ⊙ i_k(1−i_k); c_{k−1} ⊙ f_k(1−f_k); i_k ⊙ (1−g_k²)],
            tanh(c_k) ⊙ o_k(1−o_k),

        so that a step is ĉ = ε^c + ε^h ⊙ (the first), [δ^i; δ^f; δ^g] = ĉ ⊙ (the second) in
        one product, δ^o = ε^h ⊙ (the third), ε^h_{k−1} = Σ_j δ^j_k W_hh,j (one stacked product
        and a sum), ε^c_{k−1} = ĉ ⊙ f_k; time-major and gate-major, so that each step works on
        contiguous blocks (after ``fast_forward`` the time-major arrays are its own, no copies).
        ``work``: as ``fast_forward``'s (dz is then valid until the next call). The same numbers
        as the generic pass to rounding (the products are grouped otherwise;
        tests/test_train_loop.py checks 1e-14).

        eps_tt (B, T, m) ε^h_{k,k}; xi (B, T) the edge weights (None: 1) → dz (B, T, 4m)."""
        B, T, m = eps_tt.shape
        buf = _Buffers(work, "xi_pass", (B, T, m))
        tm = lambda v: v.transpose(1, 0, 2)  # noqa: E731  (B, T, m) → (T, B, m), a view
        i, f, g, o = (tm(tr.gates[q]) for q in self.gates)
        tc, c_prev = tm(tr.tanh_c), tm(tr.states_prev["c"])
        W4 = theta["W_hh"].reshape(4, m, m)  # W_hh,j: the rows of gate j
        u = buf("u", (T, B, m))
        o_dtanh = np.multiply(tc, tc, out=buf("o_dtanh", (T, B, m)))
        np.subtract(1.0, o_dtanh, out=o_dtanh)
        o_dtanh *= o  # ∂h_k/∂c_k = o_k ⊙ (1 − tanh²(c_k))
        ifg = buf("ifg", (T, 3, B, m))
        for j, (x, y, gate, square) in enumerate(((g, i, i, False), (c_prev, f, f, False), (i, g, g, True))):
            if square:  # 1 − g²
                np.multiply(gate, gate, out=u)
                np.subtract(1.0, u, out=u)
            else:  # σ(1 − σ)
                np.subtract(1.0, gate, out=u)
                u *= gate
            np.multiply(x, u, out=ifg[:, j])
        tc_do = np.subtract(1.0, o, out=buf("tc_do", (T, B, m)))
        tc_do *= o
        tc_do *= tc  # tanh(c_k) ⊙ o_k(1 − o_k)
        eps = buf("eps", (T, B, m))
        np.copyto(eps, tm(eps_tt))
        w = None
        if xi is not None:
            w = buf("w", (T, B, 1))
            np.copyto(w[..., 0], xi.T)
        D = buf("D", (T, 4, B, m))  # δ_k by gate
        eh, ec, c_hat = buf("eh", (B, m)), buf("ec", (B, m)), buf("c_hat", (B, m))
        eh.fill(0.0)  # ε^h carried back (dh_next), then + ε^h_{k,k}
        ec.fill(0.0)  # ε^c carried back (dc_next)
        back = buf("back", (4, B, m))
        for k in range(T - 1, -1, -1):
            eh += eps[k]
            np.multiply(eh, o_dtanh[k], out=c_hat)
            c_hat += ec  # ĉ = ε^c + ε^h ⊙ o ⊙ (1 − tanh²(c))
            d_k = D[k]
            np.multiply(c_hat, ifg[k], out=d_k[:3])  # δ^i, δ^f, δ^g
            np.multiply(eh, tc_do[k], out=d_k[3])  # δ^o
            np.matmul(d_k, W4, out=back)
            np.sum(back, axis=0, out=eh)  # ε^h_{k−1} = W_hhᵀ δ_k
            np.multiply(c_hat, f[k], out=ec)  # ε^c_{k−1} = ĉ ⊙ f_k
            if w is not None:
                eh *= w[k]
                ec *= w[k]
        dz = buf("dz", (B, T, 4 * m))
        np.copyto(dz.reshape(B, T, 4, m), D.transpose(2, 0, 1, 3))
        return dz


class _Buffers:
    """Arrays of ``work`` under (kind, sizes, name), made on first use (``fast_forward``)."""

    def __init__(self, work: dict | None, kind: str, sizes: tuple) -> None:
        self.work, self.key = work, (kind, sizes)

    def __call__(self, name: str, shape: tuple) -> np.ndarray:
        if self.work is None:
            return np.empty(shape)
        key = self.key + (name,)
        a = self.work.get(key)
        if a is None:
            a = self.work[key] = np.empty(shape)
        return a


@lru_cache(maxsize=64)
def _fast_order(m: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``fast_forward``'s gate rows: (the order i, f, o, g as indices into i, f, g, o; the sign
    of each row in that order, −1 for i, f, o and +1 for g; for the gates i, f, g, o in turn,
    (their block in that order, their sign)). Read-only."""
    perm = np.concatenate([np.arange(0, 2 * m), np.arange(3 * m, 4 * m), np.arange(2 * m, 3 * m)])
    sign = np.concatenate([-np.ones(3 * m), np.ones(m)])
    for v in (perm, sign):
        v.flags.writeable = False
    return perm, sign, ((0, -1.0), (1, -1.0), (3, 1.0), (2, -1.0))


def _shifted(s: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """s_{t−1} for every t: (..., B, T, m) with s_0 first."""
    prev = np.empty_like(s)
    prev[..., 0, :] = s0
    prev[..., 1:, :] = s[..., :-1, :]
    return prev
