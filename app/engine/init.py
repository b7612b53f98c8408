"""Seeded initialisation of the parameters when a request gives ``init`` instead of ``params``.

Every entry is drawn from U(−s, s), s = ``scale`` (default 1/√m, PyTorch's nn.RNN default),
with numpy's PCG64 generator seeded by ``seed``, array by array in the notation's order, so
the same (seed, sizes, scale, notation) always gives the same numbers.

``forget_bias`` b (cells with a forget gate: the LSTM) then sets the forget gate's bias: its
block of the input bias b_ih (rows m … 2m − 1, PyTorch's gate order i, f, g, o) to b and the
same block of b_hh to 0, so that a^f = W_f x + U_f h + b and f = σ(b) at the start (b = 1 gives
f ≈ 0.73: the cell state, and its gradient, cross many steps; Gers et al. 2000, Jozefowicz et al.
2015). The draws are unchanged: only those entries are overwritten.
"""

from __future__ import annotations

import math

import numpy as np

from .cells.base import Cell
from .notation import HIDDEN, param_names


def has_forget_gate(cell: Cell | None) -> bool:
    return cell is not None and "f" in getattr(cell, "gates", ()) and "b_ih" in cell.hidden


def init_params(
    notation: str, seed: int, n: int, m: int, p: int | None, scale: float | None, cell: Cell | None = None,
    forget_bias: float | None = None,
) -> dict[str, np.ndarray]:
    """Parameters under the notation's names; p None means no output layer; cell None: vanilla
    (the shapes of the residual cell too). U(±1/√m) is also nn.LSTM's and nn.GRU's default.
    ``forget_bias``: see the module's docstring (ValueError for a cell without a forget gate)."""
    s = 1.0 / math.sqrt(m) if scale is None else scale
    shapes = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,)}
    hidden = HIDDEN
    if cell is not None:
        shapes |= {sp.name: sp.shape(n, m) for sp in cell.specs(n, m)}
        hidden = cell.hidden
    rng = np.random.default_rng(seed)
    names = param_names(notation, p is not None, hidden)
    out = {shown: rng.uniform(-s, s, size=shapes[canon]) for shown, canon in names}
    if forget_bias is not None:
        if not has_forget_gate(cell):
            raise ValueError("forget_bias: only for a cell with a forget gate (lstm)")
        f = cell.gates.index("f")
        for shown, canon in names:
            if canon in ("b_ih", "b_hh"):
                out[shown][f * m : (f + 1) * m] = forget_bias if canon == "b_ih" else 0.0
    return out
