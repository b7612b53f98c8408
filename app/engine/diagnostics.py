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


def finite_median(jn: np.ndarray) -> list[float | None]:
    """jn (B, T) ‖J_k‖₂ → per sequence the median of its finite entries (None when none is)."""
    out: list[float | None] = []
    for row in np.asarray(jn, dtype=np.float64):
        ok = row[np.isfinite(row)]
        out.append(float(np.median(ok)) if ok.size else None)
    return out


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


# ---- reading the decay along the last loss row (the page's sentence under the plot) ------------

#: a factor per step below this, or over the span below VANISH_SPAN, reads as vanishing
VANISH_STEP, VANISH_SPAN = 0.8, 0.2
#: a factor per step above this, or over the span above EXPLODE_SPAN, reads as exploding
EXPLODE_STEP, EXPLODE_SPAN = 1.25, 5.0
#: a vanishing row this long (d ≥ LONG_SPAN steps back) whose factor over the span is below
#: LONG_FACTOR barely reaches the first steps: long-range dependencies are hard to learn
LONG_SPAN, LONG_FACTOR = 8, 1e-3
#: fewer terms than this (or a last loss step before index 3, or a window K below 3) give no trend
MIN_POINTS = 3


@dataclass(frozen=True)
class VanishReading:
    """How ‖δ_{t,k}‖ changes going back from the last loss step t, over the terms truncation
    keeps (t − k < K): the geometric-mean factor per step f = exp(slope) of the least-squares
    line of log ‖δ_{t,k}‖ against t − k, and F = f^d over the span d = the largest t − k read.
    A verdict, or the reason there is none."""

    #: the last loss step (0-based), None when no step carries a loss
    t: int | None
    #: f, None without a trend
    factor_per_step: float | None
    #: d = the largest distance t − k read, None without a trend
    span: int | None
    #: F = f^d (may overflow to inf or underflow to 0), None without a trend
    factor_over_span: float | None
    #: "vanish" (f < 0.8 or F < 0.2), "explode" (f > 1.25 or F > 5), "stable"; None with a reason
    verdict: str | None
    #: why there is no trend: "short" (t < 3), "overflow_forward" (h or the pre-activations
    #: overflowed in the forward pass), "overflow" (some ‖δ_{t,k}‖ overflowed), "zero" (some δ_{t,k}
    #: are exactly 0), "truncation" (K < 3), "few" (fewer than 3 nonzero norms); None with a verdict
    reason: str | None
    #: how many ‖δ_{t,k}‖ of the row read are not finite, and how many are exactly 0
    overflowed: int
    zero: int
    #: K when truncation drops terms of this row (K ≤ t), else None
    truncation: int | None
    #: vanishing over d ≥ 8 steps to F < 1e-3: the loss at the end barely reaches the first steps
    long: bool


def vanish_reading(delta_norm: np.ndarray, mask: np.ndarray, truncation: int | None,
                   forward_overflowed: bool) -> VanishReading:
    """delta_norm (T, T) ‖δ_{t,k}‖ of one sequence [t, k] (NaN or inf where it overflowed); mask
    (T,) the loss steps; truncation the window K (None: none); forward_overflowed: the forward pass
    of this sequence is not finite (then clipping the gradient cannot help)."""
    steps = np.flatnonzero(mask)
    t = int(steps[-1]) if steps.size else None
    K = truncation
    cut = K if K is not None and K <= (t if t is not None else -1) else None
    none = dict(factor_per_step=None, span=None, factor_over_span=None, verdict=None, long=False)
    if t is None or t < MIN_POINTS:
        return VanishReading(t=t, reason="short", overflowed=0, zero=0, truncation=cut, **none)
    d = np.arange(t, -1, -1)  # t − k for k = 0 … t
    row = np.asarray(delta_norm[t, : t + 1], dtype=np.float64)
    read = d < K if K is not None else np.ones(t + 1, dtype=bool)
    bad = read & ~np.isfinite(row)
    zero = read & (row == 0)
    ok = read & np.isfinite(row) & (row > 0)
    overflowed, zeros = int(bad.sum()), int(zero.sum())
    if ok.sum() < MIN_POINTS:
        if overflowed:
            reason = "overflow_forward" if forward_overflowed else "overflow"
        elif zeros:
            reason = "zero"
        elif K is not None and K < MIN_POINTS:
            reason = "truncation"
        else:
            reason = "few"
        return VanishReading(t=t, reason=reason, overflowed=overflowed, zero=zeros, truncation=cut, **none)
    x, y = d[ok].astype(np.float64), np.log(row[ok])
    xc = x - x.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    with np.errstate(over="ignore", under="ignore"):
        f = float(np.exp(slope))
        span = int(x.max())
        F = float(np.float64(f) ** span)
    if f < VANISH_STEP or F < VANISH_SPAN:
        verdict = "vanish"
    elif f > EXPLODE_STEP or F > EXPLODE_SPAN:
        verdict = "explode"
    else:
        verdict = "stable"
    return VanishReading(
        t=t, factor_per_step=f, span=span, factor_over_span=F, verdict=verdict, reason=None,
        overflowed=overflowed, zero=zeros, truncation=cut,
        long=verdict == "vanish" and span >= LONG_SPAN and F < LONG_FACTOR,
    )
