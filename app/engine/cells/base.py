"""The cell protocol: what a recurrent cell tells the generic algorithms (bptt, rtrl, diagnostics).

A cell maps its state s_{k−1} and the input x_k to the state s_k through the pre-activations
a_k (``Trace.z``; for the vanilla cell z_k, for gated cells the stacked gate pre-activations):

    a_k = W_x x_k + b_x + W_h h_{k−1} (+ b_h)            (GRU: the n rows take r_k ⊙ (W_hn h + b_hn))
    s_k = F(s_{k−1}, a_k)                               s = (h,) or (h, c)

and the error terms generalise (bptt-math.md, "Gated cells"): ε^s_{t,k} = ∂L_t/∂s_k for each
state s, δ_{t,k} = ∂L_t/∂a_k. One step backwards, ``backward_step``, takes ε^s_{t,k} of many
loss rows t at once and gives δ_{t,k} and ε^s_{t,k−1}. Everything else follows from it:

- the parameter gradients from δ, by the parameters' roles (``ParamSpec.role``): an input
  weight takes Σ δ_{t,k} x_kᵀ, a recurrent weight Σ δ^h_{t,k} h_{k−1}ᵀ, where δ^h = δ except
  where the cell scales the recurrent product (the GRU's n rows: δ^n ⊙ r_k, ``recurrent_scale``);
- the whole state's step Jacobian J_k = ∂s_k/∂s_{k−1} and the local L_k = ∂s_k/∂a_k (what
  diagnostics and RTRL need), from ``backward_step`` applied to the unit vectors of the state
  (ε_{k−1} = J_kᵀ ε_k, δ_k = L_kᵀ ε_k: the rows of J_k and L_k). A cell may override them
  with closed forms (the vanilla cell does).

Vectors are rows (numpy convention): ``x W_xᵀ`` is the row form of ``W_x x``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..activations import Activation

#: the roles of a parameter in a_k = W_x x_k + b_x + W_h h_{k−1} + b_h
ROLES = ("input", "input_bias", "recurrent", "recurrent_bias")


@dataclass(frozen=True)
class ParamSpec:
    #: canonical name (app/engine/notation.py renames it per notation)
    name: str
    #: shape from the sizes (n inputs, m hidden units)
    shape: Callable[[int, int], tuple[int, ...]]
    #: one of ROLES: which product of a_k it enters
    role: str
    #: one line: what it is
    doc: str


@dataclass(frozen=True)
class Trace:
    """Forward-pass record of one run; B = batch, T = steps, m = hidden units, G gates
    (leading axes "..." only in the gradient check's perturbed copies)."""

    #: (..., B, T, G·m) pre-activations a_t, δ_{t,k} = ∂L_t/∂a_k (vanilla: z_t)
    z: np.ndarray
    #: (..., B, T, m) hidden states h_t
    h: np.ndarray
    #: (..., B, T, m) h_{t−1} (h_prev[:, 0] = h_0)
    h_prev: np.ndarray
    #: state name → (..., B, T, m) s_t: "h" (and "c" for the LSTM)
    states: dict[str, np.ndarray]
    #: state name → (..., B, T, m) s_{t−1}
    states_prev: dict[str, np.ndarray]
    #: gate name → (..., B, T, m) the gate's activations per step (empty for ungated cells)
    gates: dict[str, np.ndarray] = field(default_factory=dict)


class Cell:
    """The protocol, with the generic parts written once. A cell module subclasses it."""

    #: registry name
    name: str = ""
    #: state names, in the order of the whole state s = (h, c)
    states: tuple[str, ...] = ("h",)
    #: gate names, in the order of the stacked pre-activations (empty: one block, no gates)
    gates: tuple[str, ...] = ()
    #: activations the cell accepts (gated cells fix their own: tanh)
    activations: tuple[str, ...] = ("tanh",)
    #: one line for /api/v1/cells and the docs
    summary: str = ""

    @property
    def G(self) -> int:
        """Blocks of m in a_k: the number of gates (1 without gates)."""
        return max(1, len(self.gates))

    def specs(self, n: int, m: int) -> tuple[ParamSpec, ...]:
        """The hidden-layer parameters (the output layer W_hy, b_y is not the cell's)."""
        raise NotImplementedError

    @property
    def hidden(self) -> tuple[str, ...]:
        """The canonical names of the hidden-layer parameters, in order (notation.py's ``hidden``)."""
        return tuple(s.name for s in self.specs(1, 1))

    def input_weight(self) -> str:
        """The canonical name of the input weight W_x: ∂L/∂x_k = W_xᵀ Σ_t δ_{t,k}."""
        return next(s.name for s in self.specs(1, 1) if s.role == "input")

    def forward(self, act: Activation, theta: dict[str, np.ndarray], X: np.ndarray,
                s0: dict[str, np.ndarray]) -> Trace:
        """theta canonical (leading axes allowed), X (..., B, T, n), s0 state → (..., B, m)."""
        raise NotImplementedError

    #: the names of ``backward_parts``, in the order of the formulas (the API's
    #: ``backward_parts.step`` keys; the page's formula panel reads them by these names)
    parts: tuple[str, ...] = ()

    def backward_parts(self, tr: Trace, theta: dict[str, np.ndarray], k: int,
                       eps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One step backwards with every intermediate named as in the cell's formulas: eps
        state → (B, R, m) ε^s_{t,k} for R loss rows t → name → (B, R or 1, ·): the errors that
        came in (``eps_h``, ``eps_c``), the step's own factors (gate values, derivatives), δ_{t,k}
        (``delta``, (B, R, G·m)) and its gate blocks, and the errors passed to k−1
        (``eps_<state>_prev``) with their summands. Factors of step k alone have R = 1."""
        raise NotImplementedError

    def backward_step(self, tr: Trace, theta: dict[str, np.ndarray], k: int,
                      eps: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """eps: state → (B, R, m) ε^s_{t,k} for R loss rows t → (δ_{t,k} (B, R, G·m),
        state → (B, R, m) ε^s_{t,k−1}). Linear in eps, so it carries sums of rows too.
        The same numbers as ``backward_parts`` (it is read off them)."""
        p = self.backward_parts(tr, theta, k, eps)
        return p["delta"], {s: p[f"eps_{s}_prev"] for s in self.states}

    def recurrent_scale(self, tr: Trace) -> np.ndarray | None:
        """(B, T, G·m) the factor between δ_{t,k} and the error of the recurrent product
        W_h h_{k−1} + b_h, or None where it is 1 (every cell but the GRU)."""
        return None

    # ---------------------------------------------------------------- generic, from backward_step

    def unit_rows(self, B: int, m: int) -> dict[str, np.ndarray]:
        """The unit vectors of the whole state (S = len(states)·m of them) as ε rows:
        state → (B, S, m), row j the j-th unit vector of s = (h, c)."""
        S = len(self.states) * m
        eye = np.eye(S)
        return {s: np.broadcast_to(eye[:, i * m : (i + 1) * m], (B, S, m)) for i, s in enumerate(self.states)}

    def local_jacobians(self, tr: Trace, theta: dict[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(J_k (B, S, S) = ∂s_k/∂s_{k−1}, L_k (B, S, G·m) = ∂s_k/∂a_k) at step k."""
        B, _, m = tr.h.shape
        delta, prev = self.backward_step(tr, theta, k, self.unit_rows(B, m))
        return np.concatenate([prev[s] for s in self.states], axis=-1), delta

    def step_jacobians(self, tr: Trace, theta: dict[str, np.ndarray], steps: range) -> tuple[np.ndarray, np.ndarray]:
        """(J (B, len(steps), S, S), L (B, len(steps), S, G·m)) for the steps k in ``steps``."""
        Js, Ls = zip(*(self.local_jacobians(tr, theta, k) for k in steps))
        return np.stack(Js, axis=1), np.stack(Ls, axis=1)

    def gain_norms(self, tr: Trace, steps: range, L: np.ndarray) -> np.ndarray:
        """(B, len(steps)) ‖L_k‖₂ from L (B, len(steps), S, G·m) (a cell may know it closed-form)."""
        from ..diagnostics import svd_norms

        return svd_norms(L)

    def param_grads(self, tr: Trace, theta: dict[str, np.ndarray], X: np.ndarray, dA: np.ndarray,
                    product) -> dict[str, np.ndarray]:
        """Σ over the batch and the steps: dA (B, T, G·m) = Σ_t δ_{t,k} (or any δ aligned with the
        steps k) → canonical gradients. ``product(A, B)`` is Aᵀ-summed (rows, i) × (rows, j)."""
        Gm = dA.shape[-1]
        scale = self.recurrent_scale(tr)
        dR = dA if scale is None else dA * scale  # the recurrent product's error
        rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
        g = {}
        for s in self.specs(X.shape[-1], tr.h.shape[-1]):
            if s.role == "input":
                g[s.name] = product(rows(dA).T, rows(X))  # Σ_k δ_k x_kᵀ
            elif s.role == "recurrent":
                g[s.name] = product(rows(dR).T, rows(tr.h_prev))  # Σ_k δ^h_k h_{k−1}ᵀ
            elif s.role == "input_bias":
                g[s.name] = rows(dA).sum(axis=0).reshape(Gm)
            else:
                g[s.name] = rows(dR).sum(axis=0).reshape(Gm)
        return g
