"""Gradients of the shared parameters as sums over the unrolled copies (bptt-math.md):

    ∂L_t/∂W_hh = Σ_{k≤t} δ_{t,k} h_{k−1}ᵀ     ∂L/∂W_hh = Σ_t ∂L_t/∂W_hh = Σ_k dz_k h_{k−1}ᵀ
    (gated cells: by each parameter's role, ``Cell.param_grads``; the GRU's n rows of W_hh take
    (δ^n ⊙ r_k) h_{k−1}ᵀ)
    ∂L_t/∂W_xh = Σ_{k≤t} δ_{t,k} x_kᵀ
    ∂L_t/∂b_h  = Σ_{k≤t} δ_{t,k}
    ∂L_t/∂W_hy = e_t h_tᵀ                      ∂L_t/∂b_y = e_t
    ∂L/∂x_k    = W_xhᵀ dz_k

With a batch every term is summed over the sequences. Parameter names are canonical here.

Only the terms that exist are summed: a term with a zero factor (a step without loss, δ_{t,k} = 0
for k > t) is no term, so an infinite h_k beside it cannot make 0 · inf = NaN of a finite
gradient (``matmul_existing``). A null in a response then means that the number itself overflowed.
"""

from __future__ import annotations

import numpy as np

from .cells.base import Cell, Trace

#: per_step forms the per-step gradients by this many blocks of steps
_BLOCKS = 8


#: the fallback of ``matmul_existing`` forms its terms by blocks of at most this many floats
_TERMS_PER_BLOCK = 1 << 20


def matmul_existing(A: np.ndarray, Bm: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A (p, r) @ Bm (r, q), summing only the terms A[i, s] Bm[s, j] whose factors are both
    nonzero. The same as A @ Bm (BLAS) wherever that is finite; where it is not, the finite
    terms are taken by BLAS with the non-finite factors set to 0, and the terms with a
    non-finite factor one by one (zero times inf or NaN is no term; nonzero times inf is inf)."""
    res = np.matmul(A, Bm, out=out)
    if np.isfinite(res).all():
        return res
    finite_A, finite_B = np.isfinite(A), np.isfinite(Bm)
    res[...] = np.where(finite_A, A, 0.0) @ np.where(finite_B, Bm, 0.0)
    # the inner indices s where some factor is not finite: only their terms are left
    inner = np.flatnonzero(~finite_A.all(axis=0) | ~finite_B.all(axis=1))
    block = max(1, _TERMS_PER_BLOCK // max(1, A.shape[0] * Bm.shape[1]))
    for s0 in range(0, len(inner), block):
        s = inner[s0 : s0 + block]
        a, b = A[:, s].T[:, :, None], Bm[s][:, None, :]  # (s, p, 1), (s, 1, q)
        # the terms not taken above: a factor not finite, and neither factor zero
        left = ~(np.isfinite(a) & np.isfinite(b)) & (a != 0) & (b != 0)
        res += np.where(left, a * b, 0.0).sum(axis=0)
    return res


def _outer_sum(A: np.ndarray, Bm: np.ndarray) -> np.ndarray:
    """Σ over all leading axes of a_i b_jᵀ: A (..., i), Bm (..., j) → (i, j)."""
    return matmul_existing(A.reshape(-1, A.shape[-1]).T, Bm.reshape(-1, Bm.shape[-1]))


def summed(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], X: np.ndarray, dz: np.ndarray,
           e: np.ndarray | None) -> dict[str, np.ndarray]:
    """dz (B, T, G·m) Σ_t δ_{t,k}, X (B, T, n), e (B, T, p) weighted e_t: canonical gradients of
    the cell's parameters (by their roles, ``Cell.param_grads``) and of the output layer."""
    g = cell.param_grads(tr, theta, X, dz, matmul_existing)
    if e is not None:
        g |= output_grads(tr.h, e)
    return g


def output_grads(h: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    """The output layer's own gradients: ∂L/∂W_hy = Σ_t e_t h_tᵀ, ∂L/∂b_y = Σ_t e_t."""
    return {"W_hy": _outer_sum(e, h), "b_y": e.sum(axis=(0, 1))}


def per_step(cell: Cell, tr: Trace, delta: np.ndarray, X: np.ndarray,
             e: np.ndarray | None) -> dict[str, np.ndarray]:
    """∂L_t/∂θ for every t: delta (B, T, T, G·m) = δ[b, t, k]; each result has a leading T axis."""
    B, T, _, Gm = delta.shape
    n, m = X.shape[-1], tr.h.shape[-1]
    # δ as a (k, b) × (t, i) matrix, so that each gradient is a matrix product over (k, b): a
    # view for the k-major table of bptt.delta_table. δ_{t,k} = 0 for k > t, so the columns
    # of steps t < t1 only need the rows k < t1: the products go by blocks of steps.
    D = delta.transpose(2, 0, 1, 3).reshape(T * B, T * Gm)
    scale = cell.recurrent_scale(tr)  # (B, T(k), G·m): the GRU's r_k on the n rows
    Dh = D if scale is None else (delta * scale[:, None]).transpose(2, 0, 1, 3).reshape(T * B, T * Gm)
    xs = X.transpose(1, 0, 2).reshape(T * B, n)  # x_k, rows (k, b)
    hs = tr.h_prev.transpose(1, 0, 2).reshape(T * B, m)  # h_{k−1}
    g_x = np.empty((T, Gm, n))
    g_h = np.empty((T, Gm, m))
    step = -(-T // _BLOCKS)
    for t0 in range(0, T, step):
        t1 = min(T, t0 + step)
        cols = slice(t0 * Gm, t1 * Gm)  # (t, i) × (k, b), k < t1
        matmul_existing(D[: t1 * B, cols].T, xs[: t1 * B], out=g_x[t0:t1].reshape(-1, n))  # Σ_k δ_{t,k} x_kᵀ
        matmul_existing(Dh[: t1 * B, cols].T, hs[: t1 * B], out=g_h[t0:t1].reshape(-1, m))  # Σ_k δ^h_{t,k} h_{k−1}ᵀ
    by_role = {
        "input": lambda: g_x, "recurrent": lambda: g_h,
        "input_bias": lambda: D.sum(axis=0).reshape(T, Gm),  # Σ_k δ_{t,k}
        "recurrent_bias": lambda: Dh.sum(axis=0).reshape(T, Gm),
    }
    g = {s.name: by_role[s.role]() for s in cell.specs(n, m)}
    if e is not None:
        g["W_hy"] = np.einsum("bti,btj->tij", e, tr.h)  # e_t h_tᵀ (summed over the batch)
        for t in np.flatnonzero(~np.isfinite(g["W_hy"]).all(axis=(1, 2))):
            g["W_hy"][t] = matmul_existing(e[:, t].T, tr.h[:, t])
        g["b_y"] = e.sum(axis=0)  # e_t
    return g


def per_copy(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], X: np.ndarray, dz: np.ndarray,
             e: np.ndarray | None) -> dict[str, np.ndarray]:
    """The term of unrolled copy k in each summed gradient, for every k (summed over the batch):
    dz_k x_kᵀ, dz^h_k h_{k−1}ᵀ, dz_k, … by the parameters' roles (``Cell.param_grads`` with
    dz_k = Σ_t δ_{t,k} in place of the sum over k), and the output layer's e_k h_kᵀ, e_k.
    dz (B, T, G·m), X (B, T, n), e (B, T, p) or None; each result has a leading T axis, and
    its sum over that axis is the summed gradient."""
    B, T, _ = dz.shape
    n = X.shape[-1]
    scale = cell.recurrent_scale(tr)
    dR = dz if scale is None else dz * scale  # the recurrent product's error

    def outer_by_step(A: np.ndarray, Bm: np.ndarray) -> np.ndarray:
        """(T, i, j) Σ_b a_{b,k} b_{b,k}ᵀ, summing only the terms that exist (``matmul_existing``)."""
        out = np.einsum("bki,bkj->kij", A, Bm)
        for k in np.flatnonzero(~np.isfinite(out).all(axis=(1, 2))):
            out[k] = matmul_existing(A[:, k].T, Bm[:, k])
        return out

    by_role = {
        "input": lambda: outer_by_step(dz, X),
        "recurrent": lambda: outer_by_step(dR, tr.h_prev),
        "input_bias": lambda: dz.sum(axis=0),
        "recurrent_bias": lambda: dR.sum(axis=0),
    }
    g = {s.name: by_role[s.role]() for s in cell.specs(n, tr.h.shape[-1])}
    if e is not None:
        g["W_hy"] = outer_by_step(e, tr.h)
        g["b_y"] = e.sum(axis=0)
    return g
