"""Real-time recurrent learning (Williams & Zipser 1989; seed 003): the gradient of BPTT carried
forward in time, for any cell, with no δ table and no stored history of errors.

With the whole state s_t = F(s_{t−1}, x_t; θ) (s = h, or (h, c) for the LSTM), carry the
sensitivities P_t = ∂s_t/∂θ (S × |θ|) and Q_t = ∂s_t/∂s_0 (S × S):

    P_0 = 0,  Q_0 = I      P_t = J_t P_{t−1} + ∂F/∂θ|_t      Q_t = J_t Q_{t−1}
    ∂L/∂θ = Σ_t ε_{t,t}ᵀ P_t      ∂L/∂s_0 = Σ_t ε_{t,t}ᵀ Q_t       ε_{t,t} = (∂(w_t L_t)/∂h_t, 0)

(the output layer's own gradients Σ_t e_t h_tᵀ need no sensitivities). J_t = ∂s_t/∂s_{t−1} and
L_t = ∂s_t/∂a_t come from the cell (``Cell.local_jacobians``); the direct term ∂F/∂θ|_t is L_t
times ∂a_t/∂θ, which each parameter's role gives (input: x_t, recurrent: h_{t−1} with the
cell's ``recurrent_scale``, biases: 1). Time O(T · S² · |θ|), memory O(S · |θ|): ``work``.
"""

from __future__ import annotations

import numpy as np

from .cells.base import Cell, Trace


def n_params(cell: Cell, n: int, m: int) -> int:
    """|θ| of the cell's hidden-layer parameters."""
    return sum(int(np.prod(s.shape(n, m))) for s in cell.specs(n, m))


def work(cell: Cell, B: int, T: int, n: int, m: int) -> float:
    """Multiply-adds of ``gradients``: per sequence and step, J_t P_{t−1} (S² |θ|), J_t Q_{t−1}
    (S³), the direct term and ε_{t,t}ᵀ P_t (S |θ| each) and the Jacobians (S² (S + G·m))."""
    S, th = len(cell.states) * m, n_params(cell, n, m)
    return float(B * T * (S * S * th + S**3 + 2 * S * th + S * S * (S + cell.G * m)))


def memory_floats(cell: Cell, B: int, n: int, m: int) -> int:
    """Floats RTRL holds besides the forward trace: P (B, S, |θ|) and Q (B, S, S)."""
    S = len(cell.states) * m
    return B * S * (n_params(cell, n, m) + S)


def gradients(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], X: np.ndarray,
              eps_tt: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """tr the forward trace, X (B, T, n), eps_tt (B, T, m) ε^h_{t,t} (weighted) → (canonical
    gradients of the cell's parameters, state → (B, m) ∂L/∂s_0)."""
    B, T, n = X.shape
    m = tr.h.shape[-1]
    S = len(cell.states) * m
    specs = cell.specs(n, m)
    sizes = [int(np.prod(s.shape(n, m))) for s in specs]
    scale = cell.recurrent_scale(tr)  # (B, T, G·m) or None
    P = np.zeros((B, S, sum(sizes)))  # ∂s_t/∂θ
    Q = np.broadcast_to(np.eye(S), (B, S, S)).copy()  # ∂s_t/∂s_0
    g = np.zeros(sum(sizes))
    g_s0 = np.zeros((B, S))
    for t in range(T):
        J, L = cell.local_jacobians(tr, theta, t)  # (B, S, S), (B, S, G·m)
        Lh = L if scale is None else L * scale[:, t, None, :]  # the recurrent product's rows
        direct = []  # ∂s_t/∂θ with s_{t−1} held: L_t ∂a_t/∂θ, by role, each (B, S, size)
        for s in specs:
            if s.role == "input":
                direct.append(np.einsum("bsi,bj->bsij", L, X[:, t]).reshape(B, S, -1))
            elif s.role == "recurrent":
                direct.append(np.einsum("bsi,bj->bsij", Lh, tr.h_prev[:, t]).reshape(B, S, -1))
            elif s.role == "input_bias":
                direct.append(L)
            else:
                direct.append(Lh)
        P = J @ P + np.concatenate(direct, axis=-1)  # P_t = J_t P_{t−1} + ∂F/∂θ|_t
        Q = J @ Q  # Q_t = J_t Q_{t−1}
        e = eps_tt[:, t]  # ε_{t,t}: ∂(w_t L_t)/∂h_t, and 0 for c
        g += np.einsum("bs,bsp->p", e, P[:, :m])  # Σ_b ε_{t,t}ᵀ P_t
        g_s0 += np.einsum("bs,bsr->br", e, Q[:, :m])
    out, i = {}, 0
    for s, size in zip(specs, sizes):
        out[s.name] = g[i : i + size].reshape(s.shape(n, m))
        i += size
    return out, {st: g_s0[:, j * m : (j + 1) * m] for j, st in enumerate(cell.states)}
