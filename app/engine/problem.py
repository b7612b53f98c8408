"""What the engine takes (``Problem``, validated by the caller) and what it gives (``Result``).

Shapes: B sequences, T steps, n inputs, m hidden units, p outputs; steps are 0-based
(index i is step t = i + 1). Parameters inside ``Result`` are canonical (the cell's
``Cell.specs`` names: W_xh, W_hh, b_h for vanilla and residual; W_ih, W_hh, b_ih, b_hh for
gated cells; W_hy, b_y); ``notation.from_canonical`` renames them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bptt import DeltaTable, DhNextSteps
from .cells import Trace
from .clipping import ClipReport
from .diagnostics import Diagnostics
from .gradcheck import CheckReport
from .losses import LossOut
from .parts import Parts


@dataclass(frozen=True)
class Problem:
    cell: str  # a name of cells.CELLS
    activation: str  # "tanh" | "sigmoid" | "relu" | "identity"
    loss: str  # "softmax_ce" | "mse" | "upstream"
    notation: str
    #: the parameters under the notation's names (PyTorch: both biases)
    params: dict[str, np.ndarray]
    #: (B, T, n) inputs x_t
    X: np.ndarray
    #: (B, m) initial states h_0
    h0: np.ndarray
    #: (T,) True where step t carries a loss (the set S)
    mask: np.ndarray
    #: (B, T, p) target rows y_t (class indices one-hot); None with loss upstream
    Y: np.ndarray | None = None
    #: (B, T, m) upstream gradients g_t = ∂L_t/∂h_t; only with loss upstream
    G: np.ndarray | None = None
    reduction: str = "sum"  # "sum" | "mean" (divides by |S| × B)
    truncation: int | None = None  # window K: keep δ_{t,k} with t − k < K
    clip: tuple[str, float] | None = None  # ("norm" | "value", c)
    detail: str = "full"  # "full" | "norms" (no T×T×m tensor is formed)
    gradient_check: bool = False
    gradient_check_max_entries: int = 256
    # What to compute besides the δ norms, dz, dh and the summed gradients (a caller that
    # does not need some of it says so; the API's "fields"):
    #: keep every vector δ_{t,k} (detail "full" only)
    delta: bool = True
    #: ‖δ_{t,k}‖ for every t, k (always with detail "norms": they are what it computes)
    delta_norm: bool = True
    #: the per-step gradients ∂L_t/∂θ (detail "full" only: they are formed from the δ table)
    per_step: bool = True
    #: ‖J_k‖₂, spectral radius, σ_max and the bound on ‖δ_{t,k}‖
    diagnostics: bool = True
    #: (B, m) initial cell states c_0 (cells with a state "c"; zeros when None)
    c0: np.ndarray | None = None
    #: keep ε^s_{t,k} = ∂L_t/∂s_k of every state (delta_h, delta_c; detail "full" only)
    eps_tables: bool = False
    #: keep only the norms ‖ε^s_{t,k}‖ (delta_h_norm, delta_c_norm; with either detail)
    eps_norms: bool = False
    #: keep row t of sequence b of the δ table and the ε tables, (t, k, b) = ``select``
    #: (delta_row, delta_h_row; either detail)
    eps_row: bool = False
    #: "bptt" (the δ table) or "rtrl" (forward sensitivities: the same gradients, no δ table,
    #: no truncation, no ∂L/∂x_k)
    method: str = "bptt"
    #: the terms of each unrolled copy k in the summed gradients (``gradients.per_copy``)
    per_copy: bool = False
    #: (t, k, b), 0-based: every number of δ_{t,k} of sequence b (``parts.compute``), or None
    select: tuple[int, int, int] | None = None
    #: also run the other exact route: BPTT beside RTRL (``methods.compare``)
    methods: bool = False
    #: also run the dh_next pass step by step (``bptt.dh_next_steps``) and compare its dz with
    #: the δ table's (the API's dh_next_pass; method bptt only)
    dh_next_steps: bool = False

    @property
    def keeps_table(self) -> bool:
        """The δ vectors are kept: asked for, or needed by the per-step gradients."""
        return self.detail == "full" and (self.delta or self.per_step)

    @property
    def has_output(self) -> bool:
        return self.loss != "upstream"

    @property
    def truncates(self) -> bool:
        """The window K drops some δ_{t,k} (K < T)."""
        return self.truncation is not None and self.truncation < self.X.shape[1]

    @property
    def step_weights(self) -> np.ndarray:
        """(T,) w_t: 0 off S; 1 (sum) or 1/(|S|·B) (mean) on S."""
        w = self.mask.astype(float)
        if self.reduction == "mean" and w.sum() > 0:
            w /= w.sum() * self.X.shape[0]
        return w


@dataclass(frozen=True)
class Result:
    problem: Problem
    #: canonical parameters as used (PyTorch's biases added into b_h)
    theta: dict[str, np.ndarray]
    forward: Trace
    out: LossOut
    #: None with method "rtrl"
    table: DeltaTable | None
    #: canonical → summed gradient ∂L/∂θ (after clipping, if any)
    grads: dict[str, np.ndarray]
    #: canonical → gradient before clipping (None without clipping)
    grads_unclipped: dict[str, np.ndarray] | None
    #: (B, T, n) ∂L/∂x_k = W_xᵀ dz_k (None with method "rtrl")
    dX: np.ndarray | None
    clip: ClipReport | None
    #: canonical → (T, *shape) ∂L_t/∂θ; None with detail "norms" or when not asked for
    per_step: dict[str, np.ndarray] | None
    #: None when not asked for
    diagnostics: Diagnostics | None
    check: CheckReport | None
    warnings: list[str] = field(default_factory=list)
    #: state → (B, m) ∂L/∂s_0 (h0; c0 for the LSTM), by BPTT or RTRL
    ds0: dict[str, np.ndarray] = field(default_factory=dict)
    #: canonical → (T, *shape) copy k's term of each summed gradient (before clipping); None
    #: when not asked for or with method "rtrl"
    per_copy: dict[str, np.ndarray] | None = None
    #: the numbers of the selected δ_{t,k} (``Problem.select``); None when not asked for or with
    #: method "rtrl"
    parts: Parts | None = None
    #: BPTT beside RTRL (``methods.MethodsReport``), when asked for
    methods: object | None = None
    #: the dh_next pass step by step, when asked for (``Problem.dh_next_steps``)
    dh_next: DhNextSteps | None = None
    #: (B, T) max_i |dz_k of the dh_next pass − dz_k of the δ table|_i (with it)
    dz_gap: np.ndarray | None = None
