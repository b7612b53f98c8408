"""Seeded initialisation of the parameters when a request gives ``init`` instead of ``params``.

Every entry is drawn from U(−s, s), s = ``scale`` (default 1/√m, PyTorch's nn.RNN default),
with numpy's PCG64 generator seeded by ``seed``, array by array in the notation's order, so
the same (seed, sizes, scale, notation) always gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .cells.base import Cell
from .notation import HIDDEN, param_names


def init_params(
    notation: str, seed: int, n: int, m: int, p: int | None, scale: float | None, cell: Cell | None = None
) -> dict[str, np.ndarray]:
    """Parameters under the notation's names; p None means no output layer; cell None: vanilla
    (the shapes of the residual cell too). U(±1/√m) is also nn.LSTM's and nn.GRU's default."""
    s = 1.0 / math.sqrt(m) if scale is None else scale
    shapes = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,)}
    hidden = HIDDEN
    if cell is not None:
        shapes |= {sp.name: sp.shape(n, m) for sp in cell.specs(n, m)}
        hidden = cell.hidden
    rng = np.random.default_rng(seed)
    return {
        shown: rng.uniform(-s, s, size=shapes[canon])
        for shown, canon in param_names(notation, p is not None, hidden)
    }
