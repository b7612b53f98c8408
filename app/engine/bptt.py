"""The δ recursion over any cell: every error term δ_{t,k} = ∂L_t/∂a_k, and the dh_next pass.

With the cell's one step backwards (``Cell.backward_step``: ε^s_{t,k} of many rows t → δ_{t,k}
and ε^s_{t,k−1}), the whole table is one loop over k, from T down to 1, carrying the stack of
error terms of every loss row t ≥ k (bptt-math.md):

    ε^h_{t,t} = W_hyᵀ e_t (upstream: g_t),  ε^c_{t,t} = 0          start, k = t
    δ_{t,k}, ε^s_{t,k−1} = backward_step(ε^s_{t,k})                 k = t … 1

Truncation with window K keeps the rows t − k < K only. The sums over t, dh_k = Σ_t ε^h_{t,k}
(dc_k for the LSTM) and dz_k = Σ_t δ_{t,k}, are taken term by term at each k: a sum taken first
could overflow where the terms' own sum does not.

``dh_next_pass`` is the textbook pass (course notes 003, min-char-rnn) that never forms
δ_{t,k}: it carries dh_next (and dc_next) backwards, linear in the errors, and yields
dz_k = Σ_{t≥k} δ_{t,k} directly. A cell may register a faster table of its own
(``fast_table``: the vanilla and residual cells, ``app/engine/fast.py``), tested equal to this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import norms as vnorms
from .cells.base import Cell, Trace


@dataclass(frozen=True)
class DeltaTable:
    """Error terms of a batch of B sequences, T steps, m hidden units, G gates (0-based steps)."""

    #: (B, T, T, G·m) δ[b, t, k] = ∂L_t/∂a_k, zero for k > t and for dropped (truncated) terms;
    #: None when only norms were asked for (detail "norms"). A view of a k-major array
    #: (``delta.transpose(2, 0, 1, 3)`` is C-contiguous), which ``gradients.per_step`` uses.
    delta: np.ndarray | None
    #: (B, T, T) ‖δ_{t,k}‖₂ [b, t, k], zero above the diagonal (a view of a k-major array);
    #: None when not asked for
    delta_norm: np.ndarray | None
    #: (B, T, G·m) dz_k = Σ_{t≥k} δ_{t,k} = ∂L/∂a_k
    dz: np.ndarray
    #: (B, T, m) dh_k = Σ_{t≥k} ε^h_{t,k} = ∂L/∂h_k
    dh: np.ndarray
    #: (B, m) ∂L/∂h_0 = Σ_t ε^h_{t,0}
    dh0: np.ndarray
    #: state → (B, T, m) Σ_t ε^s_{t,k} = ∂L/∂s_k ("h": dh; "c": dc for the LSTM)
    d: dict[str, np.ndarray] = field(default_factory=dict)
    #: state → (B, m) ∂L/∂s_0
    ds0: dict[str, np.ndarray] = field(default_factory=dict)
    #: state → (B, T, T, m) ε^s[b, t, k] = ∂L_t/∂s_k through the kept copies ("h": delta_h,
    #: "c": delta_c): zero for k > t and for t − k > K (with truncation K, s_k reaches the loss
    #: at t = k + K through copy k + 1, as h_0 reaches the losses t < K, so that row is there
    #: although δ_{t,k} is dropped; dh_k sums the rows t − k < K, so dz_k = f'(z_k) ⊙ dh_k
    #: holds); None unless asked for (``delta_table(eps_tables=True)``)
    eps: dict[str, np.ndarray] | None = None
    #: state → (B, T, T) ‖ε^s_{t,k}‖₂ [b, t, k] (the same rows as ``eps``, zero elsewhere), formed
    #: without holding the ε tables; None unless asked for (``delta_table(eps_norms=True)``)
    eps_norm: dict[str, np.ndarray] | None = None
    #: state → (t + 1, m) row t of ``eps`` for sequence b: eps_row[s][k] = ε^s_{t,k}, k ≤ t, the
    #: same numbers as eps[s][b, t, : t + 1] without holding the tables (the player's one row);
    #: None unless asked for (``delta_table(eps_row=(t, b))``)
    eps_row: dict[str, np.ndarray] | None = None
    #: (t + 1, G·m) row t of ``delta`` for sequence b (with ``eps_row``): delta_row[k] = δ_{t,k},
    #: 0 where truncation drops it; kept in either detail
    delta_row: np.ndarray | None = None


def delta_table(
    cell: Cell, tr: Trace, theta: dict[str, np.ndarray], eps_tt: np.ndarray,
    truncation: int | None = None, keep: bool = True, norms: bool = True, eps_tables: bool = False,
    eps_norms: bool = False, eps_row: tuple[int, int] | None = None,
) -> DeltaTable:
    """tr: the cell's forward trace; eps_tt (B, T, m) ε^h_{t,t}.

    keep=False computes the norms without ever holding the (B, T, T, G·m) tensor; norms=False
    leaves them out (either way). eps_tables keeps ε^s_{t,k} = ∂L_t/∂s_k for every state;
    eps_norms (without eps_tables) keeps only their norms ‖ε^s_{t,k}‖, O(T²) numbers; eps_row
    (t, b) keeps row t of sequence b of the ε tables, O(T·m) numbers."""
    B, T, m = eps_tt.shape
    Gm = tr.z.shape[-1]
    K = T if truncation is None else min(truncation, T)
    # eps[s][b, t] = ε^s_{t,k} for the k at hand: rows t > k are overwritten at each step k
    # by ε^s_{t,k}; row t = k holds ε^h_{k,k} (ε^c_{k,k} = 0) until then.
    eps = {s: np.zeros((B, T, m)) for s in cell.states}
    eps["h"][:] = eps_tt
    d = {s: np.zeros((B, T, m)) for s in cell.states}
    dz = np.zeros((B, T, Gm))
    table = np.zeros((T, B, T, Gm)) if keep else None  # table[k, b, t] = δ_{t,k}
    eps_tab = {s: np.zeros((T, B, T, m)) for s in cell.states} if eps_tables else None
    eps_nrm = {s: np.zeros((T, B, T)) for s in cell.states} if eps_norms and not eps_tables else None
    norm = None if keep or not norms else np.zeros((B, T, T))  # norm[b, k, t] = ‖δ_{t,k}‖
    row_t, row_b = eps_row if eps_row is not None else (-1, 0)
    row = {s: np.zeros((row_t + 1, m)) for s in cell.states} if eps_row is not None else None
    drow = np.zeros((row_t + 1, Gm)) if eps_row is not None else None
    for k in range(T - 1, -1, -1):
        rows = slice(k, min(T, k + K))  # t = k … (t − k < K)
        eps_k = {s: eps[s][:, rows] for s in cell.states}
        for s in cell.states:
            np.add.reduce(eps_k[s], axis=1, out=d[s][:, k])  # dh_k = Σ_t ε^h_{t,k}
            if eps_tab is not None:  # what reaches s_k: also from t = k + K, whose window
                reach = slice(k, min(T, k + K + 1))  # starts at copy k + 1 (ε_{t,k} set then)
                eps_tab[s][k, :, reach] = eps[s][:, reach]
            elif eps_nrm is not None:  # the same rows, their norms only
                reach = slice(k, min(T, k + K + 1))
                eps_nrm[s][k, :, reach] = vnorms.of_vectors(eps[s][:, reach])
            if row is not None and k <= row_t < k + K + 1:  # the row's entry of the same reach
                row[s][k] = eps[s][row_b, row_t]
        delta_k, prev = cell.backward_step(tr, theta, k, eps_k)
        np.add.reduce(delta_k, axis=1, out=dz[:, k])  # dz_k = Σ_t δ_{t,k}
        if drow is not None and k <= row_t < k + K:  # the row's δ_{t,k}, as the table holds it
            drow[k] = delta_k[row_b, row_t - k]
        if keep:
            table[k, :, rows] = delta_k
        elif norms:
            norm[:, k, rows] = vnorms.of_vectors(delta_k)
        for s in cell.states:
            eps[s][:, rows] = prev[s]  # ε^s_{t,k−1}
    rows = slice(0, min(T, K))  # ∂L_t/∂s_0 for the rows still kept at k = 0
    ds0 = {s: eps[s][:, rows].sum(axis=1) for s in cell.states}
    if keep and norms:
        norm = vnorms.of_vectors(table.transpose(1, 0, 2, 3))  # [b, k, t]
    return DeltaTable(
        delta=None if table is None else table.transpose(1, 2, 0, 3),
        delta_norm=None if norm is None else norm.transpose(0, 2, 1),
        dz=dz, dh=d["h"], dh0=ds0["h"], d=d, ds0=ds0,
        eps=None if eps_tab is None else {s: e.transpose(1, 2, 0, 3) for s, e in eps_tab.items()},
        eps_norm=None if eps_nrm is None else {s: e.transpose(1, 2, 0) for s, e in eps_nrm.items()},
        eps_row=row, delta_row=drow,
    )


def dh_next_pass(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], eps_tt: np.ndarray):
    """The efficient pass, untruncated: returns dz (B, T, G·m), d (state → (B, T, m)),
    ds0 (state → (B, m)).

        dh_k            = ε^h_{k,k} + dh_next          (total ∂L/∂h_k; dc_k = dc_next)
        dz_k, d*_next   = backward_step(dh_k, dc_k)
    """
    r = dh_next_steps(cell, tr, theta, eps_tt)
    return r.dz, r.d, r.ds0


@dataclass(frozen=True)
class DhNextSteps:
    """The dh_next pass step by step (0-based steps k), for showing it: what each step takes
    from the step after it, beside what it adds itself."""

    #: (B, T, G·m) dz_k = ∂L/∂a_k, as the pass gives it (never from the δ table)
    dz: np.ndarray
    #: state → (B, T, m) ∂L/∂s_k: dh_k = ε^h_{k,k} + dh_next_k (dc_k = dc_next_k)
    d: dict[str, np.ndarray]
    #: state → (B, T, m) what copy k+1 passes back to s_k, (∂s_{k+1}/∂s_k)ᵀ ∂L/∂s_{k+1}
    #: (vanilla: dh_next_k = W_hhᵀ dz_{k+1}; residual: dh_{k+1} + W_hhᵀ dz_{k+1}); 0 at k = T
    d_next: dict[str, np.ndarray]
    #: state → (B, m) ∂L/∂s_0
    ds0: dict[str, np.ndarray]


def dh_next_steps(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], eps_tt: np.ndarray) -> DhNextSteps:
    """``dh_next_pass``, keeping every step's dh_next (and dc_next)."""
    B, T, m = eps_tt.shape
    dz = np.empty((B, T, tr.z.shape[-1]))
    d = {s: np.empty((B, T, m)) for s in cell.states}
    carried = {s: np.empty((B, T, m)) for s in cell.states}
    d_next = {s: np.zeros((B, 1, m)) for s in cell.states}
    for k in range(T - 1, -1, -1):
        for s in cell.states:
            carried[s][:, k] = d_next[s][:, 0]
        d_next["h"] = d_next["h"] + eps_tt[:, k, None, :]
        for s in cell.states:
            d[s][:, k] = d_next[s][:, 0]
        delta, d_next = cell.backward_step(tr, theta, k, d_next)
        dz[:, k] = delta[:, 0]
    return DhNextSteps(dz=dz, d=d, d_next=carried, ds0={s: v[:, 0] for s, v in d_next.items()})
