"""The same matrices under the names of each textbook (bptt-math.md, "Notations").

Goodfellow and NNDL both use U and W, for opposite matrices: always go through this table.
"""

from __future__ import annotations

import numpy as np

#: canonical parameter names, in the order they are shown
CANONICAL = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
HIDDEN = ("W_xh", "W_hh", "b_h")
OUTPUT = ("W_hy", "b_y")

#: notation → canonical name → the name(s) a request uses and a response shows.
#: A tuple means several arrays that add up to the canonical one (PyTorch's two biases).
NOTATIONS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "canonical": {"W_xh": "W_xh", "W_hh": "W_hh", "b_h": "b_h", "W_hy": "W_hy", "b_y": "b_y", "h": "h"},
    "goodfellow": {"W_xh": "U", "W_hh": "W", "b_h": "b", "W_hy": "V", "b_y": "c", "h": "h"},
    "nndl": {"W_xh": "W", "W_hh": "U", "b_h": "b", "W_hy": "V", "b_y": "c", "h": "h"},
    "coursera": {"W_xh": "Wax", "W_hh": "Waa", "b_h": "ba", "W_hy": "Wya", "b_y": "by", "h": "a"},
    "pytorch": {
        "W_xh": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_h": ("bias_ih_l0", "bias_hh_l0"),
        "W_hy": "linear.weight", "b_y": "linear.bias", "h": "h",
    },
}


def shown_names(notation: str, canonical: str) -> tuple[str, ...]:
    """The request/response names of one canonical parameter."""
    name = NOTATIONS[notation][canonical]
    return name if isinstance(name, tuple) else (name,)


def names_map(notation: str) -> dict[str, str]:
    """canonical → shown name, for the response's ``names`` (PyTorch: "bias_ih_l0 + bias_hh_l0")."""
    return {k: " + ".join(v) if isinstance(v, tuple) else v for k, v in NOTATIONS[notation].items()}


def param_names(notation: str, with_output: bool) -> list[tuple[str, str]]:
    """(shown name, canonical name) of every array a request carries, in order."""
    canon = CANONICAL if with_output else HIDDEN
    return [(shown, c) for c in canon for shown in shown_names(notation, c)]


def to_canonical(notation: str, named: dict[str, np.ndarray], with_output: bool) -> dict[str, np.ndarray]:
    """Arrays under the notation's names → canonical arrays (PyTorch's biases are added)."""
    canon = CANONICAL if with_output else HIDDEN
    out: dict[str, np.ndarray] = {}
    for c in canon:
        parts = [named[s] for s in shown_names(notation, c)]
        out[c] = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)
    return out


def from_canonical(notation: str, canonical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical gradients (or per-step stacks) → the notation's names; each of PyTorch's two
    biases gets the b_h gradient, since z_t depends on their sum."""
    out: dict[str, np.ndarray] = {}
    for c in CANONICAL:
        if c in canonical:
            for s in shown_names(notation, c):
                out[s] = canonical[c]
    return out
