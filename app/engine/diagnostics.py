"""Why gradients vanish or explode: step Jacobians and the bound they put on ‖δ_{t,k}‖.

    J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh          (residual: I + diag(f'(z_k)) W_hh)
    ε_{t,k} = J_{k+1}ᵀ ε_{t,k+1}                       so, with δ_{t,k} = f'(z_k) ⊙ ε_{t,k},
    ‖δ_{t,k}‖ ≤ max|f'(z_k)| · Π_{τ=k+1}^{t} ‖J_τ‖₂ · ‖ε_{t,t}‖          (Pascanu et al. 2013)

For any cell J_k is the whole state's step Jacobian ∂s_k/∂s_{k−1} and max|f'(z_k)| becomes
‖L_k‖₂, L_k = ∂s_k/∂a_k (δ_{t,k} = L_kᵀ ε^s_{t,k}; for the vanilla cell L_k = diag(f'(z_k))).

and ‖J_k‖₂ ≤ γ σ_max(W_hh) for the vanilla cell, γ = sup|f'| (1 for tanh, ¼ for sigmoid).
‖J_k‖₂ of every step is the largest singular value of J_k, by LAPACK (``np.linalg.svd`` of all
steps at once, in blocks of bounded size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import norms
from .cells.base import Cell, Trace


#: the step Jacobians are formed by blocks of at most this many floats
_FLOATS_PER_BLOCK = 1 << 21


def svd_norms(M: np.ndarray) -> np.ndarray:
    """Largest singular value of each matrix in M (..., a, b) → (...): one batched LAPACK SVD
    (singular values only), NaN where the matrix is not finite. LAPACK scales a matrix whose
    entries are very large or small, so neither squares nor products over- or underflow."""
    out = np.full(M.shape[:-2], np.nan)
    ok = np.isfinite(M).all(axis=(-1, -2))
    if ok.any():
        out[ok] = np.linalg.svd(M[ok], compute_uv=False)[..., 0]
    return out


def jacobian_norms(cell: Cell, tr: Trace, theta: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(‖J_k‖₂, ‖L_k‖₂), each (B, T): the whole state's step Jacobian J_k = ∂s_k/∂s_{k−1}
    ((h, c): 2m × 2m for the LSTM) and L_k = ∂s_k/∂a_k, by blocks of steps."""
    B, T, m = tr.h.shape
    S, Gm = len(cell.states) * m, tr.z.shape[-1]
    jn, gain = np.empty((B, T)), np.empty((B, T))
    block = max(1, _FLOATS_PER_BLOCK // (B * S * (S + Gm)))
    for k0 in range(0, T, block):
        steps = range(k0, min(T, k0 + block))
        J, L = cell.step_jacobians(tr, theta, steps)
        jn[:, k0 : steps.stop] = svd_norms(J)
        gain[:, k0 : steps.stop] = cell.gain_norms(tr, steps, L)
    return jn, gain


@dataclass(frozen=True)
class Diagnostics:
    #: (B, T) ‖J_k‖₂ for every step k (NaN where J_k overflowed)
    jacobian_norm: np.ndarray
    #: (B, T, T) the bound above on ‖δ_{t,k}‖ [b, t, k], zero above the diagonal (a view of
    #: a k-major array); None when not asked for
    delta_bound: np.ndarray | None
    #: max |λ(W_hh)| (None for gated cells, whose W_hh is G·m × m)
    spectral_radius: float | None
    #: largest singular value of W_hh
    sigma_max: float
    #: sup |f'| of the activation (None for gated cells)
    gamma: float | None


def compute(
    cell: Cell, tr: Trace, theta: dict[str, np.ndarray], eps_tt: np.ndarray, gamma: float | None,
    with_bound: bool = True,
) -> Diagnostics:
    """tr the cell's trace, eps_tt (B, T, m) ε_{t,t}; with_bound=False leaves the T×T bound out
    (delta_bound None), as detail "norms" does."""
    W_hh = theta["W_hh"]
    with np.errstate(all="ignore"):
        jn, gain = jacobian_norms(cell, tr, theta)  # (B, T) ‖J_k‖₂ and ‖∂s_k/∂a_k‖₂
        eps_norm = norms.of_vectors(eps_tt)  # (B, T) ‖ε_{t,t}‖, no overflow of its squares
    bound = _bound(jn, gain, eps_norm) if with_bound else None
    with np.errstate(all="ignore"):
        finite = bool(np.isfinite(W_hh).all())
        square = W_hh.shape[0] == W_hh.shape[1]  # gated cells stack G blocks: no eigenvalues
        rho = float(np.max(np.abs(np.linalg.eigvals(W_hh)))) if finite and square else (
            float("nan") if square else None)
        smax = float(np.linalg.svd(W_hh, compute_uv=False)[0]) if finite else float("nan")
    return Diagnostics(jn, bound, rho, smax, gamma)


def _bound(jn: np.ndarray, fmax: np.ndarray, eps_norm: np.ndarray) -> np.ndarray:
    """(B, T, T) [b, t, k] from ‖J_k‖ (B, T), ‖L_k‖ (B, T) (max|f'(z_k)|) and ‖ε_{t,t}‖ (B, T)."""
    B, T = jn.shape
    with np.errstate(all="ignore"):
        # bound[b, k, t] = max|f'(z_k)| · Π_{τ=k+1}^{t} ‖J_τ‖ · ‖ε_{t,t}‖ for t ≥ k, built in
        # place: the product is a running product along t of ‖J_τ‖ where τ > k and of 1 where
        # τ ≤ k (the empty product is 1 at t = k), the same products in the same order as one
        # cumprod of ‖J_{k+1}‖, ‖J_{k+2}‖, … per k.
        later = np.tri(T, k=-1, dtype=bool).T  # [k, τ]: τ > k
        bound = np.empty((B, T, T))
        bound[:] = jn[:, None, :]
        np.copyto(bound, 1.0, where=~later)
        np.cumprod(bound, axis=-1, out=bound)
        np.multiply(fmax[:, :, None], bound, out=bound)
        bound *= eps_norm[:, None, :]
        np.copyto(bound, 0.0, where=np.tri(T, k=-1, dtype=bool))  # t < k
        return bound.transpose(0, 2, 1)  # [b, t, k]
