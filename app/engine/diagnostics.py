"""Why gradients vanish or explode: step Jacobians and the bound they put on ‖δ_{t,k}‖.

    J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh          (residual: I + diag(f'(z_k)) W_hh)
    ε_{t,k} = J_{k+1}ᵀ ε_{t,k+1}                       so, with δ_{t,k} = f'(z_k) ⊙ ε_{t,k},
    ‖δ_{t,k}‖ ≤ max|f'(z_k)| · Π_{τ=k+1}^{t} ‖J_τ‖₂ · ‖ε_{t,t}‖          (Pascanu et al. 2013)

and ‖J_k‖₂ ≤ γ σ_max(W_hh) for the vanilla cell, γ = sup|f'| (1 for tanh, ¼ for sigmoid).
‖J_k‖₂ of every step is the largest singular value of J_k, by LAPACK (``np.linalg.svd`` of all
steps at once, in blocks of bounded size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import norms
from .cells import Cell


#: ``jacobian_norms`` forms the step Jacobians by blocks of at most this many floats
_FLOATS_PER_BLOCK = 1 << 21


def jacobian_norms(cell: Cell, fprime: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """‖J_k‖₂ for every row of fprime (N, m) = f'(z_k): (N,), NaN where J_k is not finite.

    One batched LAPACK SVD (singular values only) per block of steps; LAPACK scales a matrix
    whose entries are very large or small, so neither squares nor products over- or underflow.
    """
    N, m = fprime.shape
    out = np.full(N, np.nan)
    block = max(1, _FLOATS_PER_BLOCK // (m * m))
    for i0 in range(0, N, block):
        J = cell.jacobian(fprime[i0 : i0 + block], W_hh)  # (b, m, m)
        ok = np.isfinite(J).all(axis=(-1, -2))
        if ok.any():
            out[i0 : i0 + block][ok] = np.linalg.svd(J[ok], compute_uv=False)[..., 0]
    return out


@dataclass(frozen=True)
class Diagnostics:
    #: (B, T) ‖J_k‖₂ for every step k (NaN where J_k overflowed)
    jacobian_norm: np.ndarray
    #: (B, T, T) the bound above on ‖δ_{t,k}‖ [b, t, k], zero above the diagonal (a view of
    #: a k-major array); None when not asked for
    delta_bound: np.ndarray | None
    #: max |λ(W_hh)|
    spectral_radius: float
    #: largest singular value of W_hh
    sigma_max: float
    #: sup |f'| of the activation
    gamma: float


def compute(
    cell: Cell, fprime: np.ndarray, W_hh: np.ndarray, eps_tt: np.ndarray, gamma: float,
    with_bound: bool = True,
) -> Diagnostics:
    """fprime (B, T, m), W_hh (m, m), eps_tt (B, T, m) ε_{t,t}; with_bound=False leaves the
    T×T bound out (delta_bound None), as detail "norms" does."""
    B, T, m = fprime.shape
    with np.errstate(all="ignore"):
        jn = jacobian_norms(cell, fprime.reshape(B * T, m), W_hh).reshape(B, T)
        fmax = np.abs(fprime).max(axis=-1)  # (B, T)
        eps_norm = norms.of_vectors(eps_tt)  # (B, T) ‖ε_{t,t}‖, no overflow of its squares
    bound = _bound(jn, fmax, eps_norm) if with_bound else None
    with np.errstate(all="ignore"):
        finite = bool(np.isfinite(W_hh).all())
        rho = float(np.max(np.abs(np.linalg.eigvals(W_hh)))) if finite else float("nan")
        smax = float(np.linalg.svd(W_hh, compute_uv=False)[0]) if finite else float("nan")
    return Diagnostics(jn, bound, rho, smax, gamma)


def _bound(jn: np.ndarray, fmax: np.ndarray, eps_norm: np.ndarray) -> np.ndarray:
    """(B, T, T) [b, t, k] from ‖J_k‖ (B, T), max|f'(z_k)| (B, T) and ‖ε_{t,t}‖ (B, T)."""
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
