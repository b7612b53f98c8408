"""The δ recursion: every error term δ_{t,k} = ∂L_t/∂z_k, and the efficient dh_next pass.

This is the one place where error terms travel back through time (bptt-math.md):

    ε_{t,t} = W_hyᵀ e_t            (upstream: g_t)          start, k = t
    ε_{t,k} = W_hhᵀ δ_{t,k+1}      (residual: + ε_{t,k+1})  k = t−1 … 1
    δ_{t,k} = f'(z_k) ⊙ ε_{t,k}

``delta_table`` runs the recursion for all t at once: it walks k from T down to 1 and
carries the stack of vectors δ_{t,k+1} for every t > k, so each step is one matrix product
(rows t) × W_hh instead of one backward pass per t. Truncation with window K keeps only
δ_{t,k} with t − k < K, so the stack never holds more than K rows.

``dh_next_pass`` is the textbook pass (course notes 003, min-char-rnn) that never forms
δ_{t,k}: it carries dh_next backwards and yields dz_k = Σ_{t≥k} δ_{t,k} directly.
Both must give the same dz; the tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import Cell


@dataclass(frozen=True)
class DeltaTable:
    """Error terms of a batch of B sequences, T steps, m hidden units (0-based steps)."""

    #: (B, T, T, m) δ[b, t, k] = ∂L_t/∂z_k, zero for k > t and for dropped (truncated) terms;
    #: None when only norms were asked for (detail "norms")
    delta: np.ndarray | None
    #: (B, T, T) ‖δ_{t,k}‖₂, zero above the diagonal
    delta_norm: np.ndarray
    #: (B, T, m) dz_k = Σ_{t≥k} δ_{t,k} = ∂L/∂z_k
    dz: np.ndarray
    #: (B, T, m) dh_k = Σ_{t≥k} ε_{t,k} = ∂L/∂h_k
    dh: np.ndarray
    #: (B, m) ∂L/∂h_0 = Σ_t ε_{t,0}
    dh0: np.ndarray


def delta_table(
    cell: Cell, fprime: np.ndarray, eps_tt: np.ndarray, W_hh: np.ndarray,
    truncation: int | None = None, keep: bool = True,
) -> DeltaTable:
    """fprime (B, T, m) f'(z_k); eps_tt (B, T, m) ε_{t,t}; W_hh (m, m).

    keep=False computes the norms without ever holding the (B, T, T, m) tensor.
    """
    B, T, m = fprime.shape
    K = T if truncation is None else min(truncation, T)
    delta = np.zeros((B, T, T, m)) if keep else None
    delta_norm = np.zeros((B, T, T))
    dz = np.empty((B, T, m))
    dh = np.empty((B, T, m))
    # delta_next[:, j] = δ_{k+1+j, k+1} and eps_next[:, j] = ε_{k+1+j, k+1}: rows t = k+1, k+2, …
    delta_next = eps_next = np.zeros((B, 0, m))
    for k in range(T - 1, -1, -1):
        rows = min(T, k + K) - k  # t = k … k+rows−1 (t − k < K)
        eps = np.empty((B, rows, m))
        eps[:, 0] = eps_tt[:, k]  # ε_{k,k} = W_hyᵀ e_k
        eps[:, 1:] = cell.carry(delta_next[:, : rows - 1], eps_next[:, : rows - 1], W_hh)
        delta_k = fprime[:, k, None, :] * eps  # δ_{t,k} = f'(z_k) ⊙ ε_{t,k}
        if keep:
            delta[:, k : k + rows, k] = delta_k
        delta_norm[:, k : k + rows, k] = np.sqrt(np.einsum("btm,btm->bt", delta_k, delta_k))
        dz[:, k] = delta_k.sum(axis=1)
        dh[:, k] = eps.sum(axis=1)
        delta_next, eps_next = delta_k, eps
    # h_0 is reached from δ_{t,1} (0-based δ[t, 0]) for the rows still kept.
    dh0 = cell.carry(delta_next, eps_next, W_hh).sum(axis=1)
    return DeltaTable(delta=delta, delta_norm=delta_norm, dz=dz, dh=dh, dh0=dh0)


def dh_next_pass(
    cell: Cell, fprime: np.ndarray, eps_tt: np.ndarray, W_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The efficient pass, untruncated: returns dz (B, T, m), dh (B, T, m), dh0 (B, m).

        dh_k      = ε_{k,k} + dh_next           (total ∂L/∂h_k)
        dz_k      = f'(z_k) ⊙ dh_k
        dh_next   = W_hhᵀ dz_k  (+ dh_k for the residual cell)
    """
    B, T, m = fprime.shape
    dz = np.empty((B, T, m))
    dh = np.empty((B, T, m))
    dh_next = np.zeros((B, m))
    for k in range(T - 1, -1, -1):
        dh[:, k] = eps_tt[:, k] + dh_next
        dz[:, k] = fprime[:, k] * dh[:, k]
        dh_next = cell.carry(dz[:, k], dh[:, k], W_hh)
    return dz, dh, dh_next
