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

#: per_step forms the per-step gradients by this many blocks of steps
_BLOCKS = 8


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
    n = X.shape[-1]
    # δ as a (k, b) × (t, i) matrix, so that each gradient is a matrix product over (k, b): a
    # view for the k-major table of bptt.delta_table. δ_{t,k} = 0 for k > t, so the columns
    # of steps t < t1 only need the rows k < t1: the products go by blocks of steps. (Not
    # when an input is not finite: 0 · inf = NaN, and every block then gets the NaN the whole
    # product gives, as before.)
    D = delta.transpose(2, 0, 1, 3).reshape(T * B, T * m)
    xs = X.transpose(1, 0, 2).reshape(T * B, n)  # x_k, rows (k, b)
    hs = h_prev.transpose(1, 0, 2).reshape(T * B, m)  # h_{k−1}
    g_xh = np.empty((T, m, n))
    g_hh = np.empty((T, m, m))
    finite = np.isfinite(xs).all() and np.isfinite(hs).all()
    step = -(-T // _BLOCKS) if finite else T
    for t0 in range(0, T, step):
        t1 = min(T, t0 + step)
        D_block = D[: t1 * B, t0 * m : t1 * m].T  # (t, i) × (k, b), k < t1
        np.matmul(D_block, xs[: t1 * B], out=g_xh[t0:t1].reshape(-1, n))  # Σ_k δ_{t,k} x_kᵀ
        np.matmul(D_block, hs[: t1 * B], out=g_hh[t0:t1].reshape(-1, m))  # Σ_k δ_{t,k} h_{k−1}ᵀ
    g = {"W_xh": g_xh, "W_hh": g_hh, "b_h": D.sum(axis=0).reshape(T, m)}  # b_h: Σ_k δ_{t,k}
    if e is not None:
        g["W_hy"] = np.einsum("bti,btj->tij", e, h)  # e_t h_tᵀ
        g["b_y"] = e.sum(axis=0)  # e_t
    return g
