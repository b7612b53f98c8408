"""Gradient clipping as a PyTorch training loop does it, so that a run with clipping replays
in PyTorch: ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

    by norm:   ‖g‖ = ‖(‖g_1‖, ‖g_2‖, …)‖ over the parameter arrays g_i;
               g ← g · min(1, max_norm / (‖g‖ + 1e-6))
    by value:  g ← clamp(g, −clip_value, clip_value)

The 1e-6 is PyTorch's: ``/api/v1/bptt``'s clipping (app/engine/clipping.py) scales by
min(1, c/‖g‖) as the course notes write it, which differs from PyTorch's by a relative 1e-6/‖g‖
whenever it clips; training uses PyTorch's rule so that its parameters replay to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import OptionError

#: PyTorch's guard in clip_grad_norm_: max_norm / (total_norm + 1e-6)
TORCH_EPS = 1e-6


def total_norm(grads: dict[str, np.ndarray]) -> float:
    """‖g‖₂ over every entry of every array, as the norm of the arrays' norms (as PyTorch)."""
    if not grads:
        return 0.0
    return float(np.linalg.norm([np.linalg.norm(np.ravel(g)) for g in grads.values()]))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> tuple[dict[str, np.ndarray], float, bool]:
    """(clipped gradients, the norm before, whether it clipped), as clip_grad_norm_ (norm 2)."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm >= 0 or math.isinf(max_norm):
        raise OptionError("max_norm", "a finite number ≥ 0", max_norm)
    norm = total_norm(grads)
    coef = min(max_norm / (norm + TORCH_EPS), 1.0)
    return {k: g * coef for k, g in grads.items()}, norm, coef < 1.0


def clip_grad_value(grads: dict[str, np.ndarray], clip_value: float) -> tuple[dict[str, np.ndarray], float, bool]:
    """(clipped gradients, the norm before, whether any entry changed), as clip_grad_value_."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value >= 0 or math.isinf(clip_value):
        raise OptionError("clip_value", "a finite number ≥ 0", clip_value)
    out = {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}
    changed = any(not np.array_equal(out[k], g) for k, g in grads.items())
    return out, total_norm(grads), changed
