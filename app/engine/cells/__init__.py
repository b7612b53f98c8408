"""Recurrent cells, one module each, behind one protocol (``base.Cell``); ``CELLS`` is the one
source of cell names and options (the API's parser and schema, /api/v1/cells read it)."""

from __future__ import annotations

from .base import Cell, ParamSpec, Trace
from .gru import GRUCell
from .lstm import LSTMCell
from .residual import ResidualCell
from .vanilla import Forward, VanillaCell

CELLS: dict[str, Cell] = {c.name: c for c in (VanillaCell(), ResidualCell(), LSTMCell(), GRUCell())}



def describe() -> dict:
    """The registry as data (``GET /api/v1/cells``): per cell its summary, states, gates,
    activations, and its parameters (shape as words of n, m; role; name in every notation)."""
    from ..notation import NOTATIONS, shown_names

    out = {}
    for name, c in CELLS.items():
        specs = c.specs(1, 1)
        params = [
            {"canonical": sp.name, "shape": _shape_words(sp.shape), "role": sp.role, "doc": sp.doc,
             "names": {nt: list(shown_names(nt, sp.name, c.hidden)) for nt in NOTATIONS}}
            for sp in specs
        ]
        out[name] = {"summary": c.summary, "states": list(c.states), "gates": list(c.gates),
                     "activations": list(c.activations), "params": params,
                     "parts": list(c.parts)}
    return out


def _shape_words(shape) -> list[str]:
    """A shape function of (n, m) as words, e.g. ["4m", "n"], read off two probes."""
    a, b = shape(1, 1000), shape(1000, 1)  # n = 1, m = 1000 and n = 1000, m = 1
    words = []
    for x, y in zip(a, b):
        if y == 1000:
            words.append("n")
        else:
            k = x // 1000
            words.append("m" if k == 1 else f"{k}m")
    return words


__all__ = ["CELLS", "Cell", "Forward", "ParamSpec", "Trace", "describe"]
