"""What the labs page reads off a computation (issue 13's labs, issue 11 §6's compare view).

Pure numpy. Steps are 0-based (index i is step t = i + 1); T is the sequence length.

- ``reach``: how much of the gradient the last loss L_T still has k steps back,
  ‖∂L_T/∂h_{T−d}‖ for the lag d = T − k = 0 … T−1, and that norm over ‖∂L_T/∂h_T‖ ("kept").
- ``set_keep_bias``: the bias of the gate that keeps the state (the LSTM's forget gate f, the
  GRU's update gate u), the lever that lets a gated cell carry a gradient far back.
- ``scale_to_radius``: W_hh rescaled to a given spectral radius ρ.
- ``trend``: the fitted per-step factor of a norm over t, and whether it vanishes or explodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the gate that keeps the state, per cell: (gate name, block index in PyTorch's gate order)
KEEP_GATE = {"lstm": ("f", 1), "gru": ("u", 1)}
#: a norm that changes by more than this factor over the span is said to vanish or explode
TREND_FACTOR = 10.0


@dataclass(frozen=True)
class Reach:
    #: (T,) the lag d = T − k, 0 … T−1
    lag: np.ndarray
    #: (T,) ‖∂L_T/∂h_{T−d}‖ by lag d
    norm: np.ndarray
    #: (T,) norm[d] / norm[0]; NaN where norm[0] is 0 or not finite (nothing to compare with)
    kept: np.ndarray


def reach(eps_h_norm: np.ndarray) -> Reach:
    """eps_h_norm: (T, T) ‖∂L_t/∂h_k‖ (row t, column k; k ≤ t) of one sequence → the last
    row read by lag."""
    T = eps_h_norm.shape[-1]
    last = np.asarray(eps_h_norm[T - 1], dtype=np.float64)  # (T,) ‖∂L_T/∂h_k‖, k = 1 … T
    norm = last[::-1].copy()  # by lag d = T − k
    ref = norm[0]
    with np.errstate(all="ignore"):
        kept = norm / ref if (np.isfinite(ref) and ref > 0) else np.full(T, np.nan)
    kept = np.where(np.isfinite(norm), kept, np.nan)
    return Reach(np.arange(T), norm, kept)


def set_keep_bias(cell: str, theta: dict[str, np.ndarray], bias: float) -> dict[str, np.ndarray]:
    """θ (canonical names b_ih, b_hh of a gated cell) with the keep gate's bias set: its block
    of b_ih = bias and of b_hh = 0, so the gate's pre-activation bias is exactly ``bias``
    (σ(bias) its value at zero input). The other blocks are unchanged."""
    gate, block = KEEP_GATE[cell]
    m = theta["W_hh"].shape[-1]
    out = dict(theta)
    b_ih, b_hh = np.array(theta["b_ih"], dtype=np.float64), np.array(theta["b_hh"], dtype=np.float64)
    b_ih[block * m:(block + 1) * m] = bias
    b_hh[block * m:(block + 1) * m] = 0.0
    out["b_ih"], out["b_hh"] = b_ih, b_hh
    return out


def spectral_radius(W_hh: np.ndarray) -> float:
    """ρ(W_hh) = max |λ| (LAPACK's eigenvalues)."""
    return float(np.max(np.abs(np.linalg.eigvals(W_hh))))


def scale_to_radius(W_hh: np.ndarray, rho: float) -> np.ndarray:
    """W_hh · ρ / ρ(W_hh): the same directions, spectral radius ρ. ValueError when ρ(W_hh) = 0."""
    r0 = spectral_radius(W_hh)
    if not r0 > 0:
        raise ValueError("W_hh has spectral radius 0: it cannot be rescaled to another radius")
    return W_hh * (rho / r0)


@dataclass(frozen=True)
class Trend:
    #: exp of the least-squares slope of log ‖·‖ over t: the factor of one step (NaN: < 2 points)
    rate: float
    #: rate^(points' span): the fitted change from the first to the last step
    factor: float
    #: "vanishing" (factor < 1/TREND_FACTOR), "exploding" (> TREND_FACTOR), "steady", or
    #: "none" (fewer than two finite, nonzero norms)
    verdict: str


def trend(values: np.ndarray) -> Trend:
    """values: (T,) a norm at t = 1 … T. The fit uses the finite, nonzero entries."""
    v = np.asarray(values, dtype=np.float64)
    t = np.arange(v.size, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return Trend(float("nan"), float("nan"), "none")
    slope = np.polyfit(t[ok], np.log(v[ok]), 1)[0]
    span = t[ok][-1] - t[ok][0]
    with np.errstate(over="ignore"):
        rate, factor = float(np.exp(slope)), float(np.exp(slope * span))
    verdict = "vanishing" if factor < 1 / TREND_FACTOR else "exploding" if factor > TREND_FACTOR else "steady"
    return Trend(rate, factor, verdict)
