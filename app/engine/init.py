"""Seeded initialisation of the parameters when a request gives ``init`` instead of ``params``.

Every entry is drawn from U(−s, s), s = ``scale`` (default 1/√m, PyTorch's nn.RNN default),
with numpy's PCG64 generator seeded by ``seed``, array by array in the notation's order, so
the same (seed, sizes, scale, notation) always gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .notation import param_names


def init_params(
    notation: str, seed: int, n: int, m: int, p: int | None, scale: float | None
) -> dict[str, np.ndarray]:
    """Parameters under the notation's names; p None means no output layer."""
    s = 1.0 / math.sqrt(m) if scale is None else scale
    shapes = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,)}
    rng = np.random.default_rng(seed)
    return {
        shown: rng.uniform(-s, s, size=shapes[canon])
        for shown, canon in param_names(notation, with_output=p is not None)
    }
