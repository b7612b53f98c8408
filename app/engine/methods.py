"""BPTT beside RTRL on one problem (seed 003): the same gradient by both exact routes, the
largest relative difference between them, and what each costs.

Both routes share the forward pass and the losses, so the difference is the backward part alone:

    BPTT   the dh_next pass (``bptt.dh_next_pass``) and Σ_k dz_k (…)ᵀ       time O(T·S²)    memory O(T·S)
    RTRL   P_t = J_t P_{t−1} + ∂F/∂θ|_t, ∂L/∂θ = Σ_t ε_{t,t}ᵀ P_t (``rtrl``)  time O(T·S²·|θ|) memory O(S·|θ|)

(S = the whole state's size: m, 2m for the LSTM; |θ| = the hidden layer's parameters). The
gradients compared are the exact ones (no truncation, before clipping) of the hidden layer and
of the initial states; the output layer's Σ_t e_t h_tᵀ is the same product in both routes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import bptt, gradients, losses, rtrl
from .activations import ACTIVATIONS
from .cells import CELLS, Cell
from .notation import to_canonical
from .problem import Problem

#: the orders of growth, as the page and the docs print them
ORDERS = {
    "bptt": {"time": "O(T·S²)", "memory": "O(T·S)"},
    "rtrl": {"time": "O(T·S²·|θ|)", "memory": "O(S·|θ|)"},
}


@dataclass(frozen=True)
class Route:
    #: wall time of the backward part (after the shared forward pass), measured here
    seconds: float
    #: multiply-adds of the backward part, estimated from the sizes
    work: float
    #: floats the route must hold: BPTT every step's forward trace (T·(S + G·m) per sequence)
    #: and dh_next; RTRL the sensitivities P_t, Q_t (S·(|θ| + S) per sequence), whatever T is
    floats: int


@dataclass(frozen=True)
class MethodsReport:
    #: max over the arrays of ``per_array``
    max_rel_diff: float
    #: canonical name (and "h0", "c0") → max |g_bptt − g_rtrl| / max |g_bptt| (0 when both are 0)
    per_array: dict[str, float]
    bptt: Route
    rtrl: Route
    #: S, the whole state's size
    state_size: int
    #: |θ| of the hidden layer
    n_params: int


def bptt_work(cell: Cell, B: int, T: int, n: int, m: int) -> float:
    """Multiply-adds of the dh_next pass and the summed gradients: per sequence and step the
    step back (W_hᵀ δ: G·m·m) and the gradient products (G·m·(n + m))."""
    return float(B * T * cell.G * m * (2 * m + n))


def bptt_floats(cell: Cell, B: int, T: int, m: int) -> int:
    """The forward trace BPTT reads back (states and pre-activations of every step) and dh_next."""
    S = len(cell.states) * m
    return B * T * (S + cell.G * m) + B * S


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(a), initial=0.0))
    diff = float(np.max(np.abs(a - b), initial=0.0))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale  # NaN when either overflowed (written as null)


def compare(p: Problem) -> MethodsReport:
    """The exact gradient of ``p`` by BPTT and by RTRL (call under ``np.errstate(all="ignore")``)."""
    from .run import initial_states  # (run imports this module)

    cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
    theta = to_canonical(p.notation, p.params, p.has_output, cell.hidden)
    fw = cell.forward(act, theta, p.X, initial_states(cell, p))
    out = losses.compute(p.loss, fw.h, p.step_weights, W_hy=theta.get("W_hy"), b_y=theta.get("b_y"), Y=p.Y, G=p.G)
    B, T, n = p.X.shape
    m = fw.h.shape[-1]

    t0 = time.perf_counter()
    dz, _, ds0_b = bptt.dh_next_pass(cell, fw, theta, out.eps_tt)
    g_b = gradients.summed(cell, fw, theta, p.X, dz, None)
    t1 = time.perf_counter()
    g_r, ds0_r = rtrl.gradients(cell, fw, theta, p.X, out.eps_tt)
    t2 = time.perf_counter()

    per = {name: _rel(g_b[name], g_r[name]) for name in cell.hidden}
    per |= {f"{s}0": _rel(ds0_b[s], ds0_r[s]) for s in cell.states}
    vals = list(per.values())
    worst = float("nan") if any(np.isnan(vals)) else max(vals)
    return MethodsReport(
        max_rel_diff=worst, per_array=per,
        bptt=Route(t1 - t0, bptt_work(cell, B, T, n, m), bptt_floats(cell, B, T, m)),
        rtrl=Route(t2 - t1, rtrl.work(cell, B, T, n, m), rtrl.memory_floats(cell, B, n, m)),
        state_size=len(cell.states) * m, n_params=rtrl.n_params(cell, n, m),
    )
