"""Runs a ``Problem``: forward pass → losses → δ table → gradients (``core``) → clipping →
diagnostics → gradient check. Overflow is not an error: numpy's warnings are silenced and
non-finite numbers travel on to the caller, which reports where they are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bptt, clipping, diagnostics, gradcheck, gradients, losses
from .activations import ACTIVATIONS
from .bptt import DeltaTable
from .cells import CELLS, Forward
from .losses import LossOut
from .notation import shown_names, to_canonical
from .problem import Problem, Result


@dataclass(frozen=True)
class Core:
    """What ``core`` computes: the numbers of the δ table and the gradients, before clipping."""

    theta: dict[str, np.ndarray]
    forward: Forward
    out: LossOut
    table: DeltaTable
    #: canonical → summed gradient ∂L/∂θ
    grads: dict[str, np.ndarray]
    #: (B, T, n) ∂L/∂x_k = W_xhᵀ dz_k
    dX: np.ndarray
    #: canonical → (T, *shape) ∂L_t/∂θ; None with detail "norms"
    per_step: dict[str, np.ndarray] | None


def core(p: Problem) -> Core:
    """Forward pass → losses → δ table → summed and per-step gradients (call it under
    ``np.errstate(all="ignore")``, as ``run`` does)."""
    cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
    theta = to_canonical(p.notation, p.params, p.has_output)
    fw = cell.forward(act, theta["W_xh"], theta["W_hh"], theta["b_h"], p.X, p.h0)
    out = losses.compute(
        p.loss, fw.h, p.step_weights, W_hy=theta.get("W_hy"), b_y=theta.get("b_y"), Y=p.Y, G=p.G
    )
    table = bptt.delta_table(
        cell, fw.fprime, out.eps_tt, theta["W_hh"], p.truncation, p.keeps_table, norms=p.delta_norm
    )
    grads = gradients.summed(table.dz, fw.h_prev, p.X, fw.h, out.e)
    dX = table.dz @ theta["W_xh"]
    per_step = None
    if p.detail == "full" and p.per_step:
        per_step = gradients.per_step(table.delta, fw.h_prev, p.X, fw.h, out.e)
    return Core(theta, fw, out, table, grads, dX, per_step)


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
            copies = {c: len(shown_names(p.notation, c)) for c in grads}
            grads, report = clipping.clip(grads, *p.clip, copies=copies)
        diag = None
        if p.diagnostics:
            diag = diagnostics.compute(
                cell, fw.fprime, theta["W_hh"], out.eps_tt, act.gamma, with_bound=p.detail == "full"
            )
        check = None
        if p.gradient_check:
            if not np.isfinite(out.loss):
                warnings.append("gradient_check: skipped, the loss is not finite")
            else:
                check = _check(
                    p, cell, act, theta, fw, out, table,
                    grads_unclipped if grads_unclipped is not None else grads, dX,
                )
                if p.truncates:
                    warnings.append(
                        "gradient_check: compares the exact (untruncated) BPTT gradient with "
                        "finite differences; the truncated gradients in grads differ by design"
                    )
    return Result(
        problem=p, theta=theta, forward=fw, out=out, table=table, grads=grads,
        grads_unclipped=grads_unclipped, dX=dX, clip=report, per_step=c.per_step,
        diagnostics=diag, check=check,
        warnings=warnings,
    )


def _check(p, cell, act, theta, fw, out, table, grads, dX) -> gradcheck.CheckReport:
    """Finite differences against the exact gradient: the table's when untruncated, the
    dh_next pass's when truncated (finite differences know nothing of truncation)."""
    W_hh = theta["W_hh"]
    if p.truncates:
        dz, _, dh0 = bptt.dh_next_pass(cell, fw.fprime, out.eps_tt, W_hh)
        grads = gradients.summed(dz, fw.h_prev, p.X, fw.h, out.e)
        dX = dz @ theta["W_xh"]
    else:
        dh0 = table.dh0
    w = p.step_weights
    base = dict(theta, h0=p.h0, inputs=p.X)

    def forward_loss(v: dict[str, np.ndarray], seqs=slice(None)) -> losses.LossOut:
        """The forward pass and the losses with the values v, of the sequences seqs."""
        f = cell.forward(act, v["W_xh"], v["W_hh"], v["b_h"], v["inputs"], v["h0"])
        Y = None if p.Y is None else p.Y[seqs]
        G = None if p.G is None else p.G[seqs]
        return losses.compute(p.loss, f.h, w, W_hy=v.get("W_hy"), b_y=v.get("b_y"), Y=Y, G=G)

    def loss_of(overrides: dict[str, np.ndarray]) -> np.ndarray:
        return forward_loss(base | overrides).loss

    def sequence_loss_of(name: str, rows: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """(c,) L_b of the sequences seqs, run as a batch of c with rows in place of theirs."""
        out = forward_loss(base | {"h0": p.h0[seqs], "inputs": p.X[seqs], name: rows}, seqs)
        return out.loss_t @ w  # L_b = Σ_t w_t L_{b,t}

    analytic = dict(grads, h0=dh0, inputs=dX)
    B, T, _ = p.X.shape
    return gradcheck.check(
        loss_of, base, analytic,
        # z, a, h, h_prev per hidden unit; o, ŷ / log ŷ, e and a temporary per output
        floats_per_copy=B * T * (5 * W_hh.shape[0] + 4 * (p.Y.shape[-1] if p.Y is not None else 0)),
        max_entries=p.gradient_check_max_entries,
        sequence_loss_of=sequence_loss_of, per_sequence=frozenset(("h0", "inputs")),
    )
