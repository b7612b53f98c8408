"""Why gradients vanish or explode: step Jacobians and the bound they put on ‖δ_{t,k}‖.

    J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh          (residual: I + diag(f'(z_k)) W_hh)
    ε_{t,k} = J_{k+1}ᵀ ε_{t,k+1}                       so, with δ_{t,k} = f'(z_k) ⊙ ε_{t,k},
    ‖δ_{t,k}‖ ≤ max|f'(z_k)| · Π_{τ=k+1}^{t} ‖J_τ‖₂ · ‖ε_{t,t}‖          (Pascanu et al. 2013)

and ‖J_k‖₂ ≤ γ σ_max(W_hh) for the vanilla cell, γ = sup|f'| (1 for tanh, ¼ for sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import Cell


@dataclass(frozen=True)
class Diagnostics:
    #: (B, T) ‖J_k‖₂ for every step k (NaN where J_k overflowed)
    jacobian_norm: np.ndarray
    #: (B, T, T) the bound above on ‖δ_{t,k}‖, zero above the diagonal
    delta_bound: np.ndarray
    #: max |λ(W_hh)|
    spectral_radius: float
    #: largest singular value of W_hh
    sigma_max: float
    #: sup |f'| of the activation
    gamma: float


def _spectral_norms(J: np.ndarray) -> np.ndarray:
    """Largest singular value of each (m, m) matrix in J (..., m, m); NaN where not finite."""
    out = np.full(J.shape[:-2], np.nan)
    ok = np.isfinite(J).all(axis=(-1, -2))
    if ok.any():
        out[ok] = np.linalg.svd(J[ok], compute_uv=False)[..., 0]
    return out


def compute(
    cell: Cell, fprime: np.ndarray, W_hh: np.ndarray, eps_tt: np.ndarray, gamma: float
) -> Diagnostics:
    """fprime (B, T, m), W_hh (m, m), eps_tt (B, T, m) ε_{t,t}."""
    B, T, _ = fprime.shape
    with np.errstate(all="ignore"):
        jn = _spectral_norms(cell.jacobian(fprime, W_hh))  # (B, T)
        fmax = np.abs(fprime).max(axis=-1)  # (B, T)
        eps_norm = np.sqrt(np.einsum("btm,btm->bt", eps_tt, eps_tt))  # (B, T)
        bound = np.zeros((B, T, T))
        for k in range(T):
            # Π_{τ=k+1}^{t} ‖J_τ‖ for t = k … T−1 (the empty product is 1 at t = k)
            prod = np.concatenate([np.ones((B, 1)), np.cumprod(jn[:, k + 1 :], axis=1)], axis=1)
            bound[:, k:, k] = fmax[:, k, None] * prod * eps_norm[:, k:]
        finite = bool(np.isfinite(W_hh).all())
        rho = float(np.max(np.abs(np.linalg.eigvals(W_hh)))) if finite else float("nan")
        smax = float(np.linalg.svd(W_hh, compute_uv=False)[0]) if finite else float("nan")
    return Diagnostics(jn, bound, rho, smax, gamma)
