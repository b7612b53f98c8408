"""Gradients of the shared parameters as sums over the unrolled copies (bptt-math.md):

    ∂L_t/∂W_hh = Σ_{k≤t} δ_{t,k} h_{k−1}ᵀ     ∂L/∂W_hh = Σ_t ∂L_t/∂W_hh = Σ_k dz_k h_{k−1}ᵀ
    ∂L_t/∂W_xh = Σ_{k≤t} δ_{t,k} x_kᵀ
    ∂L_t/∂b_h  = Σ_{k≤t} δ_{t,k}
    ∂L_t/∂W_hy = e_t h_tᵀ                      ∂L_t/∂b_y = e_t
    ∂L/∂x_k    = W_xhᵀ dz_k

With a batch every term is summed over the sequences. Parameter names are canonical here.
"""

from __future__ import annotations

import numpy as np


def _outer_sum(A: np.ndarray, Bm: np.ndarray) -> np.ndarray:
    """Σ over all leading axes of a_i b_jᵀ: A (..., i), Bm (..., j) → (i, j)."""
    return A.reshape(-1, A.shape[-1]).T @ Bm.reshape(-1, Bm.shape[-1])


def summed(
    dz: np.ndarray, h_prev: np.ndarray, X: np.ndarray, h: np.ndarray, e: np.ndarray | None
) -> dict[str, np.ndarray]:
    """dz (B, T, m), h_prev (B, T, m), X (B, T, n), h (B, T, m), e (B, T, p) weighted e_t."""
    g = {
        "W_xh": _outer_sum(dz, X),  # Σ_k dz_k x_kᵀ
        "W_hh": _outer_sum(dz, h_prev),  # Σ_k dz_k h_{k−1}ᵀ
        "b_h": dz.sum(axis=(0, 1)),  # Σ_k dz_k
    }
    if e is not None:
        g["W_hy"] = _outer_sum(e, h)  # Σ_t e_t h_tᵀ
        g["b_y"] = e.sum(axis=(0, 1))  # Σ_t e_t
    return g


def per_step(
    delta: np.ndarray, h_prev: np.ndarray, X: np.ndarray, h: np.ndarray, e: np.ndarray | None
) -> dict[str, np.ndarray]:
    """∂L_t/∂θ for every t: delta (B, T, T, m) = δ[b, t, k]; each result has a leading T axis."""
    B, T, _, m = delta.shape
    # (t, i) × (b, k) matrix of δ, so each gradient is one matrix product over (b, k).
    D = delta.transpose(1, 3, 0, 2).reshape(T * m, B * T)
    g = {
        "W_xh": (D @ X.reshape(B * T, -1)).reshape(T, m, -1),  # Σ_k δ_{t,k} x_kᵀ
        "W_hh": (D @ h_prev.reshape(B * T, m)).reshape(T, m, m),  # Σ_k δ_{t,k} h_{k−1}ᵀ
        "b_h": delta.sum(axis=(0, 2)),  # Σ_k δ_{t,k}
    }
    if e is not None:
        g["W_hy"] = np.einsum("bti,btj->tij", e, h)  # e_t h_tᵀ
        g["b_y"] = e.sum(axis=0)  # e_t
    return g
