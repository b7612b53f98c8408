"""Recurrent cells, one module each, behind one protocol (``base.Cell``); ``CELLS`` is the one
source of cell names and options (the API's parser and schema, /api/v1/cells read it)."""

from __future__ import annotations

from .base import Cell, ParamSpec, Trace
from .gru import GRUCell
from .lstm import LSTMCell
from .residual import ResidualCell
from .vanilla import Forward, VanillaCell

CELLS: dict[str, Cell] = {c.name: c for c in (VanillaCell(), ResidualCell(), LSTMCell(), GRUCell())}

__all__ = ["CELLS", "Cell", "Forward", "ParamSpec", "Trace"]
