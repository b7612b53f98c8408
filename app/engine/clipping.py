"""Gradient clipping (Pascanu et al. 2013), over all parameter gradients together.

    by norm:  g ← g · min(1, c / ‖g‖)     ‖g‖ = sqrt(Σ over every parameter entry g²)
    by value: g ← clip(g, −c, c)          elementwise
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import norms


@dataclass(frozen=True)
class ClipReport:
    method: str  # "norm" or "value"
    threshold: float
    norm_before: float
    norm_after: float
    clipped: bool
    #: clipping by norm: the factor every gradient was multiplied by, min(1, c / ‖g‖); None by value
    scale: float | None = None


def global_norm(grads: dict[str, np.ndarray], copies: dict[str, int] | None = None) -> float:
    """sqrt(Σ g²) over every entry; ``copies[name]`` counts an array that many times (an
    array shown under several names, as PyTorch's two biases)."""
    copies = copies or {}
    # each array's norm, then the norm of those (weighted by √copies): no overflow of the squares
    each = [np.sqrt(copies.get(k, 1)) * norms.of_vectors(np.ravel(g)) for k, g in grads.items()]
    return float(norms.of_vectors(np.array(each)))


def clip(
    grads: dict[str, np.ndarray], method: str, threshold: float, copies: dict[str, int] | None = None
) -> tuple[dict[str, np.ndarray], ClipReport]:
    before = global_norm(grads, copies)
    if method == "norm":
        scale = min(1.0, threshold / before) if before > 0 else 1.0
        out = {k: g * scale for k, g in grads.items()}
        clipped = scale < 1.0
    else:
        out = {k: np.clip(g, -threshold, threshold) for k, g in grads.items()}
        clipped = any(bool(np.any(np.abs(g) > threshold)) for g in grads.values())
    return out, ClipReport(method, threshold, before, global_norm(out, copies), clipped,
                           scale if method == "norm" else None)
