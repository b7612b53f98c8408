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


#: gated cells (LSTM, GRU): canonical name → the name each notation uses. The gates' blocks are
#: stacked in PyTorch's order in every notation (W_ih = [W_i; W_f; W_g; W_o] for the LSTM), and
#: the two biases stay two (for the GRU they are not interchangeable: b_hn sits inside r ⊙ (…)).
GATED_HIDDEN = ("W_ih", "W_hh", "b_ih", "b_hh")
GATED_NAMES: dict[str, dict[str, str]] = {
    "canonical": {"W_ih": "W_ih", "W_hh": "W_hh", "b_ih": "b_ih", "b_hh": "b_hh"},
    "goodfellow": {"W_ih": "U", "W_hh": "W", "b_ih": "b", "b_hh": "b_W"},
    "nndl": {"W_ih": "W", "W_hh": "U", "b_ih": "b", "b_hh": "b_U"},
    "coursera": {"W_ih": "Wax", "W_hh": "Waa", "b_ih": "bx", "b_hh": "ba"},
    "pytorch": {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"},
}


def _table(notation: str, hidden: tuple[str, ...]) -> dict[str, str | tuple[str, ...]]:
    """canonical → shown name(s) for a cell whose hidden-layer parameters are ``hidden``."""
    if hidden == HIDDEN:
        return NOTATIONS[notation]
    base = NOTATIONS[notation]
    return GATED_NAMES[notation] | {k: base[k] for k in OUTPUT + ("h",)}


def shown_names(notation: str, canonical: str, hidden: tuple[str, ...] = HIDDEN) -> tuple[str, ...]:
    """The request/response names of one canonical parameter."""
    name = _table(notation, hidden)[canonical]
    return name if isinstance(name, tuple) else (name,)


def names_map(notation: str, hidden: tuple[str, ...] = HIDDEN) -> dict[str, str]:
    """canonical → shown name, for the response's ``names`` (PyTorch: "bias_ih_l0 + bias_hh_l0")."""
    return {k: " + ".join(v) if isinstance(v, tuple) else v for k, v in _table(notation, hidden).items()}


def param_names(notation: str, with_output: bool, hidden: tuple[str, ...] = HIDDEN) -> list[tuple[str, str]]:
    """(shown name, canonical name) of every array a request carries, in order; ``hidden``: the
    cell's canonical hidden-layer names (``Cell.specs``)."""
    canon = hidden + OUTPUT if with_output else hidden
    return [(shown, c) for c in canon for shown in shown_names(notation, c, hidden)]


def to_canonical(notation: str, named: dict[str, np.ndarray], with_output: bool,
                 hidden: tuple[str, ...] = HIDDEN) -> dict[str, np.ndarray]:
    """Arrays under the notation's names → canonical arrays (PyTorch's biases are added for the
    vanilla and residual cells, whose z_t depends on their sum only)."""
    canon = hidden + OUTPUT if with_output else hidden
    out: dict[str, np.ndarray] = {}
    for c in canon:
        parts = [named[s] for s in shown_names(notation, c, hidden)]
        out[c] = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)
    return out


def from_canonical(notation: str, canonical: dict[str, np.ndarray],
                   hidden: tuple[str, ...] = HIDDEN) -> dict[str, np.ndarray]:
    """Canonical gradients (or per-step stacks) → the notation's names; each of PyTorch's two
    biases of the vanilla cell gets the b_h gradient, since z_t depends on their sum."""
    out: dict[str, np.ndarray] = {}
    for c in hidden + OUTPUT:
        if c in canonical:
            for s in shown_names(notation, c, hidden):
                out[s] = canonical[c]
    return out
