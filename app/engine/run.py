"""Runs a ``Problem``: forward pass → losses → δ table → gradients (``core``) → clipping →
diagnostics → gradient check. Overflow is not an error: numpy's warnings are silenced and
non-finite numbers travel on to the caller, which reports where they are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bptt, clipping, diagnostics, gradcheck, gradients, losses, methods, parts, rtrl
from .activations import ACTIVATIONS
from .bptt import DeltaTable
from .cells import CELLS, Cell, Trace
from .gradients import matmul_existing
from .losses import LossOut
from .notation import shown_names, to_canonical
from .problem import Problem, Result


@dataclass(frozen=True)
class Core:
    """What ``core`` computes: the numbers of the δ table and the gradients, before clipping."""

    theta: dict[str, np.ndarray]
    forward: Trace
    out: LossOut
    #: None with method "rtrl"
    table: DeltaTable | None
    #: canonical → summed gradient ∂L/∂θ
    grads: dict[str, np.ndarray]
    #: (B, T, n) ∂L/∂x_k = W_xᵀ dz_k (None with method "rtrl")
    dX: np.ndarray | None
    #: canonical → (T, *shape) ∂L_t/∂θ; None with detail "norms"
    per_step: dict[str, np.ndarray] | None
    #: state → (B, m) ∂L/∂s_0
    ds0: dict[str, np.ndarray]


def initial_states(cell: Cell, p: Problem) -> dict[str, np.ndarray]:
    """state → (B, m) s_0: h_0, and c_0 (zeros when not given) for a cell with a cell state."""
    s0 = {"h": p.h0}
    if "c" in cell.states:
        s0["c"] = np.zeros_like(p.h0) if p.c0 is None else p.c0
    return s0


def table_of(cell: Cell, fw: Trace, theta: dict[str, np.ndarray], eps_tt: np.ndarray, p: Problem) -> DeltaTable:
    """The δ table: the cell's registered fast loop where it has one (the ε tables and their
    norms included; not with the dh_next pass), else the generic loop of ``bptt``; the same
    numbers to rounding (tested)."""
    fast = getattr(cell, "fast_table", None)
    # (with the dh_next pass beside it, the generic loop: the pass's gap to dz is then the same
    # bits whatever else the request asks for)
    if fast is not None and not p.dh_next_steps and not p.eps_row:  # (the rows: the generic loop keeps them)
        return fast()(cell, fw.fprime, eps_tt, theta["W_hh"], p.truncation, p.keeps_table, norms=p.delta_norm,
                      eps_tables=p.eps_tables and p.detail == "full", eps_norms=p.eps_norms)
    return bptt.delta_table(cell, fw, theta, eps_tt, p.truncation, p.keeps_table, norms=p.delta_norm,
                            eps_tables=p.eps_tables and p.detail == "full", eps_norms=p.eps_norms,
                            eps_row=(p.select[0], p.select[2]) if p.eps_row and p.select is not None else None)


def core(p: Problem) -> Core:
    """Forward pass → losses → δ table → summed and per-step gradients (call it under
    ``np.errstate(all="ignore")``, as ``run`` does)."""
    cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
    theta = to_canonical(p.notation, p.params, p.has_output, cell.hidden)
    fw = cell.forward(act, theta, p.X, initial_states(cell, p))
    out = losses.compute(
        p.loss, fw.h, p.step_weights, W_hy=theta.get("W_hy"), b_y=theta.get("b_y"), Y=p.Y, G=p.G
    )
    if p.method == "rtrl":
        if p.truncates:
            raise ValueError("RTRL has no truncation")
        grads, ds0 = rtrl.gradients(cell, fw, theta, p.X, out.eps_tt)
        if out.e is not None:
            grads |= gradients.output_grads(fw.h, out.e)
        return Core(theta, fw, out, None, grads, None, None, ds0)
    table = table_of(cell, fw, theta, out.eps_tt, p)
    grads = gradients.summed(cell, fw, theta, p.X, table.dz, out.e)
    dX = _dX(table.dz, theta[cell.input_weight()])
    per_step = None
    if p.detail == "full" and p.per_step:
        per_step = gradients.per_step(cell, fw, table.delta, p.X, out.e)
    return Core(theta, fw, out, table, grads, dX, per_step, table.ds0)


def _dX(dz: np.ndarray, W_x: np.ndarray) -> np.ndarray:
    """(B, T, n) ∂L/∂x_k = W_xᵀ dz_k (rows: dz_k W_x)."""
    B, T, _ = dz.shape
    return matmul_existing(dz.reshape(B * T, -1), W_x).reshape(B, T, -1)


def run(p: Problem) -> Result:
    cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
    warnings: list[str] = []
    with np.errstate(all="ignore"):
        c = core(p)
        theta, fw, out, table, grads, dX = c.theta, c.forward, c.out, c.table, c.grads, c.dX
        grads_unclipped = None
        report = None
        if p.clip is not None:
            grads_unclipped = grads
            # the global norm runs over the arrays the notation has: PyTorch's two biases each
            # carry the b_h gradient, so it counts twice there, as in torch's clip_grad_norm_
            copies = {c: len(shown_names(p.notation, c, cell.hidden)) for c in grads}
            grads, report = clipping.clip(grads, *p.clip, copies=copies)
        diag = None
        if p.diagnostics:
            # the bound is B×T×T like delta_norm: with detail "norms" too
            diag = diagnostics.compute(cell, fw, theta, out.eps_tt, act.gamma if cell.G == 1 else None)
        per_copy = sel = None
        if p.per_copy and table is not None:
            per_copy = gradients.per_copy(cell, fw, theta, p.X, table.dz, out.e)
        if p.select is not None and p.method != "rtrl":
            t, k, b = p.select
            sel = parts.compute(cell, fw, theta, p.X, out.eps_tt, out.e, p.mask, p.truncation, t, k, b)
        steps = gap = None
        if p.dh_next_steps and table is not None:
            # the textbook route beside the table's, both from the same forward pass
            steps = bptt.dh_next_steps(cell, fw, theta, out.eps_tt)
            gap = np.abs(steps.dz - table.dz).max(axis=-1, initial=0.0)
        check = None
        if p.gradient_check:
            if not np.isfinite(out.loss):
                warnings.append("gradient_check: skipped, the loss is not finite")
            else:
                check = _check(
                    p, cell, act, theta, fw, out, c.ds0,
                    grads_unclipped if grads_unclipped is not None else grads, dX,
                )
                if p.truncates:
                    warnings.append(
                        "gradient_check: compares the exact (untruncated) BPTT gradient with "
                        "finite differences; the truncated gradients in grads differ by design"
                    )
        compared = methods.compare(p) if p.methods else None
    return Result(
        problem=p, theta=theta, forward=fw, out=out, table=table, grads=grads,
        grads_unclipped=grads_unclipped, dX=dX, clip=report, per_step=c.per_step,
        diagnostics=diag, check=check,
        warnings=warnings, ds0=c.ds0, per_copy=per_copy, parts=sel, methods=compared, dh_next=steps, dz_gap=gap,
    )


def _check(p, cell, act, theta, fw, out, ds0, grads, dX) -> gradcheck.CheckReport:
    """Finite differences against the exact gradient: the table's when untruncated, the
    dh_next pass's when truncated (finite differences know nothing of truncation)."""
    s0 = initial_states(cell, p)
    if p.truncates:
        dz, _, ds0 = bptt.dh_next_pass(cell, fw, theta, out.eps_tt)
        grads = gradients.summed(cell, fw, theta, p.X, dz, out.e)
        dX = _dX(dz, theta[cell.input_weight()])
    w = p.step_weights
    base = dict(theta, inputs=p.X) | {f"{s}0": v for s, v in s0.items()}
    states = tuple(f"{s}0" for s in cell.states)

    def forward_loss(v: dict[str, np.ndarray], seqs=slice(None)) -> losses.LossOut:
        """The forward pass and the losses with the values v, of the sequences seqs."""
        f = cell.forward(act, v, v["inputs"], {s: v[f"{s}0"] for s in cell.states})
        Y = None if p.Y is None else p.Y[seqs]
        G = None if p.G is None else p.G[seqs]
        return losses.compute(p.loss, f.h, w, W_hy=v.get("W_hy"), b_y=v.get("b_y"), Y=Y, G=G)

    def loss_of(overrides: dict[str, np.ndarray]) -> np.ndarray:
        return forward_loss(base | overrides).loss

    def sequence_loss_of(name: str, rows: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """(c,) L_b of the sequences seqs, run as a batch of c with rows in place of theirs."""
        own = {k: base[k][seqs] for k in states + ("inputs",)}
        out = forward_loss(base | own | {name: rows}, seqs)
        return out.loss_t @ w  # L_b = Σ_t w_t L_{b,t}

    analytic = dict(grads) | ({} if dX is None else {"inputs": dX}) | {f"{s}0": v for s, v in ds0.items()}
    B, T, _ = p.X.shape
    m, Gm = p.h0.shape[-1], fw.z.shape[-1]
    checked = base if dX is not None else {k: v for k, v in base.items() if k != "inputs"}  # RTRL: no ∂L/∂x
    return gradcheck.check(
        loss_of, checked, analytic,
        # z, a, h, h_prev (gates, states) per hidden unit; o, ŷ / log ŷ, e and a temporary per output
        floats_per_copy=B * T * (4 * Gm + len(states) * m + 4 * (p.Y.shape[-1] if p.Y is not None else 0)),
        max_entries=p.gradient_check_max_entries,
        sequence_loss_of=sequence_loss_of, per_sequence=frozenset(states + ("inputs",)),
    )
