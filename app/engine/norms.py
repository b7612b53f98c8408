"""Euclidean norms of vectors whose squares may overflow or underflow.

‖x‖₂ = √Σ xᵢ² overflows once ‖x‖₂ exceeds about 1.3e154 and loses digits to subnormal squares
below about 1e-145, while x itself is representable far beyond both: the δ of an exploding or a
vanishing RNN go there, and that is a lesson, not an error. There ‖x‖₂ = s·‖x/s‖₂ with
s = max|xᵢ| (the scaling of LAPACK's dnrm2). The sum of squares is the fast way and right
almost always, so callers take it first and mend the entries ``suspect`` points at.
"""

from __future__ import annotations

import numpy as np

#: a sum of squares in [SQ_LOW, ∞) has neither overflowed nor lost digits to underflow (each
#: subnormal square is off by at most 2⁻¹⁰⁷⁵, nothing beside 1e-290)
SQ_LOW = 1e-290


def suspect(sq: np.ndarray) -> np.ndarray:
    """Where a sum of squares may be wrong: overflowed (inf) or small enough to have lost digits
    (zero included: all its squares may have underflowed). NaN is not suspect (x holds a NaN)."""
    return (sq < SQ_LOW) | (sq == np.inf)


def scaled(x: np.ndarray) -> np.ndarray:
    """x (..., m) → (...) ‖x‖₂ as s·‖x/s‖₂, s = max|xᵢ|: finite wherever x is; 0 for zero
    vectors, inf where an entry is infinite, NaN where one is NaN."""
    s = np.abs(x).max(axis=-1)
    with np.errstate(all="ignore"):
        y = x / s[..., None]
        out = s * np.sqrt(np.einsum("...m,...m->...", y, y))
    out[s == 0] = 0.0
    out[np.isinf(s)] = np.inf
    return out


def sqrt_mended(sq: np.ndarray, x: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """sq (...) the sums of squares of the vectors x (..., m) → (...) ‖x‖₂, in place of sq:
    the square root, and ``scaled`` where the sum is suspect (only within ``where``, when given:
    the entries that may hold a vector other than zero)."""
    bad = suspect(sq)
    if where is not None:
        bad &= where
    out = np.sqrt(sq, out=sq)
    if bad.any():
        out[bad] = scaled(x[bad])
    return out


def of_vectors(x: np.ndarray) -> np.ndarray:
    """x (..., m) → (...) ‖x‖₂: the sum of squares, mended where it is suspect."""
    flat = x.reshape(-1, x.shape[-1])
    with np.errstate(all="ignore"):
        sq = np.einsum("im,im->i", flat, flat)
    return sqrt_mended(sq, flat).reshape(x.shape[:-1])
