"""Activations f and their derivatives f'.

Each derivative is written in terms of ``a = f(z)`` where that is how the course writes it
(tanh: 1 − a², sigmoid: a(1 − a)), and in terms of ``z`` otherwise. relu'(0) = 0, as in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit


def _sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # scipy's expit: the logistic function to rounding for every z (e^z / (1 + e^z) for z < 0),
    # where 0.5·(1 + tanh(z/2)) loses every digit below z ≈ −38 (1 + tanh cancels)
    return expit(z, out=out) if out is not None else expit(z)


def _identity(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return z.copy()
    np.copyto(out, z)
    return out


@dataclass(frozen=True)
class Activation:
    name: str
    #: f(z), written into ``out`` when given (the forward pass fills its arrays in place)
    f: Callable[..., np.ndarray]
    #: f'(z) given z and a = f(z)
    fprime: Callable[[np.ndarray, np.ndarray], np.ndarray]
    #: sup |f'|: the factor γ in the bound ‖J_k‖ ≤ γ σ_max(W_hh) (vanilla cell)
    gamma: float
    #: f and f' as the formula panel writes them
    latex: str


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", np.tanh, lambda z, a: 1.0 - a * a, 1.0, r"f'(z) = 1 - \tanh^2 z"),
    "sigmoid": Activation(
        "sigmoid", _sigmoid, lambda z, a: a * (1.0 - a), 0.25, r"f'(z) = \sigma(z)(1 - \sigma(z))"
    ),
    "relu": Activation(
        "relu", lambda z, out=None: np.maximum(z, 0.0, out=out), lambda z, a: (z > 0).astype(z.dtype), 1.0,
        r"f'(z) = [z > 0]",
    ),
    "identity": Activation("identity", _identity, lambda z, a: np.ones_like(z), 1.0, r"f'(z) = 1"),
}
