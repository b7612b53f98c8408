"""Every number of one error term δ_{t,k} and what it feeds: the backward step that made it,
the bound on its norm, and its terms in the summed gradients (the API's ``backward_parts``).

For the selected loss row t, sequence b and copy k (0-based) the row's recursion is run from
the start ε^h_{t,t} (ε^c_{t,t} = 0) down to k with the cell's own ``backward_parts``, so each
intermediate is named and computed as in the cell's formulas (bptt-math.md):

    step       the cell's step at k: ε^s_{t,k} in, its factors, δ_{t,k}, ε^s_{t,k−1} out
    step_from  the same at k + 1 (k < t): what made ε^s_{t,k} from δ_{t,k+1}
    bound      ‖L_k‖₂ · Π_{τ=k+1}^{t} ‖J_τ‖₂ · ‖ε_{t,t}‖   (vanilla: ‖L_k‖₂ = max|f'(z_k)|)
    terms      copy k's term of ∂L_t/∂θ for the cell's parameters (δ_{t,k} x_kᵀ, δ^h_{t,k} h_{k−1}ᵀ,
               δ_{t,k}, …, by the parameters' roles: ``Cell.param_grads``), and step t's term
               of the output layer (e_t h_tᵀ, e_t)

With truncation K a δ_{t,k} with t − k ≥ K is dropped (``kept`` false: no step, zero terms);
on a step without loss every number of the row is 0. Cost: O((t − k + 1) · (G·m·m + S³)) for
one sequence, S the state size, whatever T is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import diagnostics, gradients, norms
from .cells.base import Cell, Trace


@dataclass(frozen=True)
class Parts:
    t: int
    k: int
    b: int
    #: step t carries a loss
    in_loss: bool
    #: δ_{t,k} is kept by truncation (t − k < K)
    kept: bool
    #: name → (·,) the cell's backward step at k (``Cell.parts``); None when not kept
    step: dict[str, np.ndarray] | None
    #: name → (·,) the step at k + 1 (None for k = t or when not kept)
    step_from: dict[str, np.ndarray] | None
    #: e_t (None without output layer), ε_{t,t}, h_t, h_{k−1}, x_k: the vectors the terms use
    vectors: dict[str, np.ndarray | None]
    #: canonical → copy k's term of ∂L_t/∂θ (hidden layer) or step t's (W_hy, b_y)
    terms: dict[str, np.ndarray]
    #: (t − k,) ‖J_τ‖₂ for τ = k + 1 … t
    jacobian_norms: np.ndarray
    #: Π_{τ=k+1}^{t} ‖J_τ‖₂ (1 for k = t), taken left to right as diagnostics.delta_bound does
    jacobian_product: float
    #: the geometric mean of those ‖J_τ‖₂ (None for k = t)
    jacobian_geomean: float | None
    #: ‖L_k‖₂ = ‖∂s_k/∂a_k‖₂ (vanilla: max|f'(z_k)|)
    gain: float
    #: ‖ε_{t,t}‖
    eps_tt_norm: float
    #: the bound on ‖δ_{t,k}‖: gain · jacobian_product · eps_tt_norm
    bound: float


def one_sequence(tr: Trace, b: int, steps: slice = slice(None)) -> Trace:
    """The trace of sequence b alone (B = 1), over the steps ``steps``: every array field of the
    cell's trace (and the states and gates) sliced alike, so any cell's trace works."""
    cut = lambda a: a[b : b + 1, steps]  # noqa: E731
    out = {}
    for f in dataclasses.fields(tr):
        v = getattr(tr, f.name)
        if isinstance(v, np.ndarray):
            out[f.name] = cut(v)
        elif isinstance(v, dict):
            out[f.name] = {q: cut(a) for q, a in v.items()}
        else:
            out[f.name] = v
    return type(tr)(**out)


def compute(cell: Cell, tr: Trace, theta: dict[str, np.ndarray], X: np.ndarray, eps_tt: np.ndarray,
            e: np.ndarray | None, mask: np.ndarray, truncation: int | None, t: int, k: int, b: int) -> Parts:
    """tr the whole run's trace, X (B, T, n), eps_tt (B, T, m) ε^h_{t,t}, e (B, T, p) or None,
    mask (T,) the loss steps; 0 ≤ k ≤ t < T, 0 ≤ b < B."""
    T = tr.h.shape[1]
    K = T if truncation is None else truncation
    kept = t - k < K
    one = one_sequence(tr, b)
    m = eps_tt.shape[-1]
    # the row's recursion, t down to k: ε^h_{t,t} from the loss, ε^c_{t,t} = 0
    eps = {s: np.zeros((1, 1, m)) for s in cell.states}
    eps["h"] = eps_tt[b : b + 1, t : t + 1].copy()
    step = step_from = None
    if kept:
        for j in range(t, k - 1, -1):
            parts = cell.backward_parts(one, theta, j, eps)
            if j == k + 1:
                step_from = parts
            eps = {s: parts[f"eps_{s}_prev"] for s in cell.states}
        step = parts
    flat = lambda p: None if p is None else {q: np.array(v[0, 0]) for q, v in p.items()}  # noqa: E731

    # copy k's terms, by the parameters' roles (the GRU's r_k on the n rows: the cell's own maths)
    Gm = tr.z.shape[-1]
    delta = step["delta"][:, :, :] if step is not None else np.zeros((1, 1, Gm))
    at_k = one_sequence(tr, b, slice(k, k + 1))
    terms = cell.param_grads(at_k, theta, X[b : b + 1, k : k + 1], delta, gradients.matmul_existing)
    if e is not None:
        terms |= gradients.output_grads(tr.h[b : b + 1, t : t + 1], e[b : b + 1, t : t + 1])

    # the bound: ‖J_τ‖ for τ = k+1 … t and ‖L_k‖, of the steps k … t of this sequence alone
    with np.errstate(all="ignore"):
        jn, gain = diagnostics.jacobian_norms(cell, one_sequence(tr, b, slice(k, t + 1)), theta)
        js = jn[0, 1:]
        prod = 1.0
        for x in js:  # left to right, as the cumprod of diagnostics.delta_bound
            prod *= x
        geo = float(np.exp(np.mean(np.log(js)))) if len(js) else None
        eps_norm = float(norms.of_vectors(eps_tt[b, t]))
        bound = float(gain[0, 0] * prod * eps_norm)
    vectors = {
        "e_t": None if e is None else e[b, t],
        "eps_tt": eps_tt[b, t],
        "h_t": tr.h[b, t],
        "h_prev": tr.h_prev[b, k],
        "x_k": X[b, k],
    }
    return Parts(
        t=t, k=k, b=b, in_loss=bool(mask[t]), kept=kept, step=flat(step), step_from=flat(step_from),
        vectors=vectors, terms=terms, jacobian_norms=js, jacobian_product=float(prod),
        jacobian_geomean=geo, gain=float(gain[0, 0]), eps_tt_norm=eps_norm, bound=bound,
    )
