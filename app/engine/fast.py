"""The fast δ loop of the vanilla and residual cells, registered as their table
(``VanillaCell.fast_table``) and tested equal to the generic loop of ``bptt`` (the same
numbers, to rounding): every δ_{t,k} = ∂L_t/∂z_k, and their dh_next pass (bptt-math.md):

    ε_{t,t} = W_hyᵀ e_t            (upstream: g_t)          start, k = t
    ε_{t,k} = W_hhᵀ δ_{t,k+1}      (residual: + ε_{t,k+1})  k = t−1 … 1
    δ_{t,k} = f'(z_k) ⊙ ε_{t,k}

``delta_table`` runs the recursion for all t at once: it walks k from T down to 1 and
carries the stack of vectors δ_{t,k+1} for every t > k, so each step is one matrix product
(rows t) × W_hh instead of one backward pass per t. Truncation with window K keeps only
δ_{t,k} with t − k < K, so the stack never holds more than K rows.

Where the stacks live:

- the ε stack lives in one (B, T, m) array indexed by t, overwritten in place as k goes down
  (the rows t > k of step k only need the rows of step k + 1);
- δ with detail "full" (``keep=True``) goes straight into the table, stored k-major
  (``table[k, b, t] = δ_{t,k}``), so that the stack of step k is one block; its norms are
  taken once after the loop. ``DeltaTable.delta`` is the (b, t, k) view of it, and
  ``gradients.per_step`` reads it as a (k, b) × (t, i) matrix without a copy;
- δ with detail "norms" (``keep=False``) lives in one (B, T, m) array like ε, with the norms
  taken at each k, so that no (B, T, T, m) tensor is ever formed.

A norm is √Σ δ², whose squares overflow or underflow where δ does not (a vanishing δ of 1e-200,
an exploding one of 1e200): ``norms.sqrt_mended`` takes those few entries by scaling, from the
table after the loop or, with norms only, from the stack at each k.

The sums over t, dh_k = Σ_t ε_{t,k} and dz_k = Σ_t δ_{t,k} = f'(z_k) ⊙ dh_k: for the vanilla
cell untruncated, dz_k is summed at each k and dh_k = ε_{k,k} + W_hhᵀ dz_{k+1} after the loop
(ε_{t,k} = W_hhᵀ δ_{t,k+1}); otherwise dh_k is summed at each k and dz_k = f'(z_k) ⊙ dh_k.
The same arithmetic whether the table is kept or not, so the numbers do not depend on what the
caller asks to see. These short forms agree with the term-by-term sums to rounding; when one
is not finite they are taken again term by term (see ``delta_table``), so overflow looks as
the recursion makes it.

With one sequence the loop runs on views without the batch axis, and ``Cell.carry`` uses
``np.dot``: the loop is most of the time for small m, and numpy's cost per call matters there.

``dh_next_pass`` is the textbook pass (course notes 003, min-char-rnn) that never forms
δ_{t,k}: it carries dh_next backwards and yields dz_k = Σ_{t≥k} δ_{t,k} directly.
Both must give the same dz; the tests check it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import norms as vnorms
from .bptt import DeltaTable
from .cells.vanilla import VanillaCell as Cell


def delta_table(
    cell: Cell, fprime: np.ndarray, eps_tt: np.ndarray, W_hh: np.ndarray,
    truncation: int | None = None, keep: bool = True, exact_sums: bool = False, norms: bool = True,
    eps_tables: bool = False, eps_norms: bool = False,
) -> DeltaTable:
    """fprime (B, T, m) f'(z_k); eps_tt (B, T, m) ε_{t,t}; W_hh (m, m).

    keep=False computes the norms without ever holding the (B, T, T, m) tensor; keep=True with
    norms=False leaves the norms out (keep=False computes them whatever norms says).

    The sums dz_k = Σ_t δ_{t,k} and dh_k = Σ_t ε_{t,k} are taken the short way unless
    exact_sums: for the vanilla cell untruncated, dz_k = Σ_t δ_{t,k} at each k and
    dh_k = ε_{k,k} + W_hhᵀ dz_{k+1} (ε_{t,k} = W_hhᵀ δ_{t,k+1} for t > k) after the loop;
    otherwise dh_k = Σ_t ε_{t,k} at each k and dz_k = f'(z_k) ⊙ dh_k. Either way the same
    arithmetic in the same order with the table kept or not (keep), so asking for the table
    changes no bit of dz, dh or the gradients. The short sums are the same sums in real numbers
    and agree to rounding; but a sum taken first can overflow where the terms' own sum does not
    (f'(z_k) = 0 times an infinite Σ_t ε_{t,k}), so when a short sum is not finite they are
    taken again term by term, as the recursion defines them.

    ‖δ_{t,k}‖ is √Σ δ², which overflows or underflows where δ does not: ``norms.sqrt_mended``
    mends those entries, from the table or (keep=False) at each k, while the vectors are there.

    eps_tables keeps ε_{t,k} = ∂L_t/∂h_k (``DeltaTable.eps["h"]``, the API's delta_h), eps_norms
    (without eps_tables) only their norms, taken at each k: the rows t = k … k + K (with
    truncation K, h_k reaches the loss at t = k + K through copy k + 1, so that row is computed
    too: one more row of the carry, which no sum reads), as ``bptt.delta_table`` gives them.
    """
    B, T, m = fprime.shape
    K = T if truncation is None else min(truncation, T)
    dh = np.empty((B, T, m))
    dz = np.empty((B, T, m))
    # Norms, k-major: norm[b, k, t] = ‖δ_{t,k}‖, zero where t < k or t − k ≥ K (filled at each k;
    # with the whole table, from it after the loop)
    norm = None if keep else np.zeros((B, T, T))
    # lossy[b, t]: step t carries a loss, so δ_{t,·} may be other than zero (a zero sum of
    # squares elsewhere is no underflow)
    lossy = eps_tt.any(axis=-1)
    # eps[b, t] = ε_{t,k} for the k at hand: it starts as ε_{t,t} = W_hyᵀ e_t, and at step k the
    # rows t > k are overwritten by ε_{t,k}, computed from δ_{t,k+1} (and ε_{t,k+1} in place).
    eps = eps_tt.copy()
    # ε_{t,k} = ∂L_t/∂h_k kept (eps_tab[k, b, t]) or only their norms (eps_nrm[k, b, t])
    eps_tab = np.zeros((T, B, T, m)) if eps_tables else None
    eps_nrm = np.zeros((T, B, T)) if eps_norms and not eps_tables else None
    reach_row = (eps_tab is not None or eps_nrm is not None) and K < T  # the row t = k + K
    if keep:
        table = np.zeros((T, B, T, m))  # table[k, b, t] = δ_{t,k}: zero unless k ≤ t < k + K
        stack = None
    else:
        table = None
        stack = np.empty((B, T, m))  # stack[b, t] = δ_{t,k} for the k at hand, like eps

    # The loop is most of the time for small m, and numpy's cost per call matters there: with
    # one sequence it runs on views without the batch axis ("..." stands for it or for nothing).
    if B == 1:
        f_, eps_, dh_, dz_ = fprime[0], eps[0], dh[0], dz[0]
        norm_, lossy_ = None if norm is None else norm[0], lossy[0]
        table_ = None if table is None else table[:, 0]
        stack_ = None if stack is None else stack[0]
        eps_tab_ = None if eps_tab is None else eps_tab[:, 0]
        eps_nrm_ = None if eps_nrm is None else eps_nrm[:, 0]
    else:
        f_, eps_, dh_, dz_, norm_, lossy_, table_, stack_ = fprime, eps, dh, dz, norm, lossy, table, stack
        eps_tab_, eps_nrm_ = eps_tab, eps_nrm
    f_row = f_[..., :, None, :]  # f'(z_k) as one row, to multiply every row t
    add, multiply, einsum, sqrt_mended = np.add, np.multiply, np.einsum, vnorms.sqrt_mended
    carry = cell.carry_loop(B == 1, m)
    # the vanilla cell untruncated: dz_k = Σ_t δ_{t,k} in the loop, the sums dh_k after it
    sums_after = cell.carry_is_product and K == T and not exact_sums
    delta_next = eps_[..., T:, :]  # δ_{t,k+1} for t = k+1, k+2, … (none at k = T)
    for k in range(T - 1, -1, -1):
        rows = min(T, k + K) - k  # t = k … k+rows−1 (t − k < K)
        eps_k = eps_[..., k : k + rows, :]  # ε_{k,k} (in place already), ε_{k+1,k}, …
        # t > k: ε_{t,k+1} becomes ε_{t,k} (and for the ε tables, t = k + K: no sum reads it)
        later = min(rows, delta_next.shape[-2]) if reach_row else rows - 1
        eps_later = eps_[..., k + 1 : k + 1 + later, :]
        # ε_{t,k} = W_hhᵀ δ_{t,k+1} (residual: + ε_{t,k+1})
        carry(delta_next[..., :later, :], eps_later, W_hh, out=eps_later)
        if eps_tab_ is not None:
            eps_tab_[k, ..., k : k + 1 + later, :] = eps_[..., k : k + 1 + later, :]
        elif eps_nrm_ is not None:  # ‖ε_{t,k}‖ while the vectors ε_{t,k} are at hand
            eps_nrm_[k, ..., k : k + 1 + later] = vnorms.of_vectors(eps_[..., k : k + 1 + later, :])
        delta_k = table_[k, ..., k : k + rows, :] if keep else stack_[..., k : k + rows, :]
        multiply(f_row[..., k, :, :], eps_k, out=delta_k)  # δ_{t,k} = f'(z_k) ⊙ ε_{t,k}
        if not sums_after:
            add.reduce(eps_k, axis=-2, out=dh_[..., k, :])  # dh_k = Σ_t ε_{t,k}
        if sums_after or exact_sums:
            add.reduce(delta_k, axis=-2, out=dz_[..., k, :])  # dz_k = Σ_t δ_{t,k}
        if not keep:  # ‖δ_{t,k}‖ while the vectors δ_{t,k} are at hand
            row = norm_[..., k, k : k + rows]
            einsum("...tm,...tm->...t", delta_k, delta_k, out=row)
            sqrt_mended(row, delta_k, lossy_[..., k : k + rows])
        delta_next = delta_k
    # h_0 is reached from δ_{t,1} (0-based δ[t, 0]) for the rows still kept.
    dh0 = cell.carry(delta_next, eps_k, W_hh).sum(axis=-2).reshape(B, m)
    if sums_after:
        np.copyto(dh, eps_tt)
        dh[:, :-1] += dz[:, 1:] @ W_hh  # dh_k = ε_{k,k} + W_hhᵀ Σ_{t>k} δ_{t,k+1}
    elif not exact_sums:
        np.multiply(fprime, dh, out=dz)  # dz_k = Σ_t δ_{t,k} = f'(z_k) ⊙ Σ_t ε_{t,k}
    if not exact_sums and not (np.isfinite(dh).all() and np.isfinite(dz).all()):
        return delta_table(cell, fprime, eps_tt, W_hh, truncation, keep, exact_sums=True, norms=norms,
                           eps_tables=eps_tables, eps_norms=eps_norms)

    delta = None if table is None else table.transpose(1, 2, 0, 3)  # δ[b, t, k]
    if keep and norms:  # the norms of the whole table at once; where there may be a δ_{t,k}:
        # k ≤ t < k + K and a loss at step t (elsewhere a zero sum of squares is no underflow)
        norm = np.einsum("kbtm,kbtm->bkt", table, table)
        vnorms.sqrt_mended(norm, table.transpose(1, 0, 2, 3), _window(T, K) & lossy[:, None, :])
    delta_norm = None if norm is None else norm.transpose(0, 2, 1)  # [b, t, k]
    return DeltaTable(
        delta=delta, delta_norm=delta_norm, dz=dz, dh=dh, dh0=dh0, d={"h": dh}, ds0={"h": dh0},
        eps=None if eps_tab is None else {"h": eps_tab.transpose(1, 2, 0, 3)},
        eps_norm=None if eps_nrm is None else {"h": eps_nrm.transpose(1, 2, 0)},
    )


@lru_cache(maxsize=8)
def _window(T: int, K: int) -> np.ndarray:
    """(T, T) [k, t]: k ≤ t < k + K, where δ_{t,k} is kept (read-only, shared)."""
    k, t = np.ogrid[:T, :T]
    window = (t >= k) & (t - k < K)
    window.flags.writeable = False
    return window


def dh_next_pass(
    cell: Cell, fprime: np.ndarray, eps_tt: np.ndarray, W_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The efficient pass, untruncated: returns dz (B, T, m), dh (B, T, m), dh0 (B, m).

        dh_k      = ε_{k,k} + dh_next           (total ∂L/∂h_k)
        dz_k      = f'(z_k) ⊙ dh_k
        dh_next   = W_hhᵀ dz_k  (+ dh_k for the residual cell)
    """
    B, T, m = fprime.shape
    dz = np.empty((B, T, m))
    dh = np.empty((B, T, m))
    dh_next = np.zeros((B, m))
    for k in range(T - 1, -1, -1):
        dh[:, k] = eps_tt[:, k] + dh_next
        dz[:, k] = fprime[:, k] * dh[:, k]
        dh_next = cell.carry(dz[:, k], dh[:, k], W_hh)
    return dz, dh, dh_next
