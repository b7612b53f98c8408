"""Gradient check by central finite differences in float64.

    ∂L/∂θ_i ≈ (L(θ + h e_i) − L(θ − h e_i)) / 2h

Perturbed copies of the network run together as one vectorised forward pass (a leading
axis on the perturbed array). An array of one sequence's own (h_0, the inputs: leading batch
axis) changes only that sequence's loss, so its copies run as single sequences, stacked as a
batch of their own, and the quotient is taken of that sequence's loss L_b (∂L/∂θ_i = ∂L_b/∂θ_i):
B times less work than copies of the whole batch, and no cancellation against the other
sequences' losses. Arrays with more entries than ``max_entries`` are checked on a fixed random
sample of entries, and the report says how many were checked.

Error per entry: |a − n| / max(|a|, |n|, τ), τ = 1e-6 · max(1, |L|), so that entries at
the noise floor of the difference quotient (about 1e-16·|L|/h) are not counted as failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

STEP = 1e-5
TOLERANCE = 1e-4
_CHUNK_FLOATS = 2_000_000


@dataclass(frozen=True)
class CheckReport:
    step: float
    tolerance: float
    #: name → {"max_rel_error", "max_abs_error", "checked", "of"}
    per_array: dict[str, dict[str, float | int]]
    max_rel_error: float
    ok: bool


def check(
    loss_of: Callable[[dict[str, np.ndarray]], np.ndarray],
    values: dict[str, np.ndarray],
    analytic: dict[str, np.ndarray],
    floats_per_copy: int,
    max_entries: int,
    seed: int = 0,
    sequence_loss_of: Callable[[str, np.ndarray, np.ndarray], np.ndarray] | None = None,
    per_sequence: frozenset[str] = frozenset(),
) -> CheckReport:
    """loss_of(overrides) → L with the arrays in ``overrides`` replaced (each may carry one
    leading perturbation axis); values: name → array to check; analytic: name → ∂L/∂array.

    The arrays named in ``per_sequence`` have a leading batch axis of B sequences:
    sequence_loss_of(name, rows, seqs) → (c,) the losses L_b of the sequences ``seqs`` (c,),
    run as a batch of c with ``rows`` (c, …) in place of their rows of array ``name``."""
    rng = np.random.default_rng(seed)
    L0 = float(loss_of({}))
    tau = 1e-6 * max(1.0, abs(L0))
    per_array: dict[str, dict[str, float | int]] = {}
    for name, value in values.items():
        size = value.size
        idx = np.arange(size) if size <= max_entries else np.sort(rng.choice(size, max_entries, replace=False))
        if name in per_sequence:
            numeric = _sequence_quotients(sequence_loss_of, name, value, idx, floats_per_copy)
        else:
            numeric = _quotients(loss_of, name, value, idx, floats_per_copy)
        a = analytic[name].reshape(-1)[idx]
        err = np.abs(a - numeric)
        rel = err / np.maximum(np.maximum(np.abs(a), np.abs(numeric)), tau)
        per_array[name] = {
            "max_rel_error": float(rel.max(initial=0.0)),
            "max_abs_error": float(err.max(initial=0.0)),
            "checked": int(idx.size),
            "of": int(size),
        }
    worst = max((r["max_rel_error"] for r in per_array.values()), default=0.0)
    return CheckReport(STEP, TOLERANCE, per_array, worst, bool(worst < TOLERANCE))


def _quotients(loss_of, name: str, value: np.ndarray, idx: np.ndarray, floats_per_copy: int) -> np.ndarray:
    """(L(θ + h e_i) − L(θ − h e_i)) / 2h for the entries idx of a shared array: perturbed
    copies of the whole network, a chunk of them per forward pass."""
    flat = value.reshape(1, -1)
    return _central(
        idx, max(1, _CHUNK_FLOATS // max(1, 2 * floats_per_copy)),
        copies=lambda sel: (np.repeat(flat, 2 * sel.size, axis=0), sel),
        losses=lambda stack, sel: loss_of({name: stack.reshape((-1,) + value.shape)}),
    )


def _sequence_quotients(
    sequence_loss_of, name: str, value: np.ndarray, idx: np.ndarray, floats_per_copy: int
) -> np.ndarray:
    """The same for an array of per-sequence rows (B, …): entry i lies in row b = i // width,
    and only L_b moves, so each copy is that one sequence, run in a batch of copies."""
    B = value.shape[0]
    rows = value.reshape(B, -1)
    width = rows.shape[1]
    return _central(
        idx, max(1, _CHUNK_FLOATS // max(1, 2 * floats_per_copy // B)),
        copies=lambda sel: (rows[np.tile(sel // width, 2)], sel % width),
        losses=lambda stack, sel: sequence_loss_of(name, stack.reshape((-1,) + value.shape[1:]), np.tile(sel // width, 2)),
    )


def _central(idx: np.ndarray, chunk: int, copies, losses) -> np.ndarray:
    """The quotients for the entries idx, chunk of them per pass: copies(sel) → the rows of two
    copies per entry (2c, width) and the column j (c,) each entry lies in; the first c get + h,
    the last c − h; losses(stack, sel) → (2c,) their losses."""
    numeric = np.empty(idx.size)
    for start in range(0, idx.size, chunk):
        sel = idx[start : start + chunk]
        c = sel.size
        stack, j = copies(sel)
        stack[np.arange(c), j] += STEP
        stack[c + np.arange(c), j] -= STEP
        L = losses(stack, sel)
        numeric[start : start + c] = (L[:c] - L[c:]) / (2 * STEP)
    return numeric
