"""Engine ``Result`` → the response document of ``POST /api/v1/bptt``.

Arrays are 0-based (index i is step t = i + 1). Per-sequence fields carry a leading batch
axis only when the request did. Numbers that overflowed are listed in ``nonfinite`` (paths of
fields) and written as null; entries that do not exist (δ_{t,k} with k > t) are null too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from ..engine import diagnostics, norms
from ..engine.cells import CELLS
from ..engine.methods import ORDERS
from ..engine.notation import from_canonical, names_map
from ..engine.problem import Result
from .parse import Parsed

API_VERSION = "1"


def _nonfinite(doc: Any, path: str, found: list[str]) -> None:
    """Append the path of every array or number in doc (nested dicts) that is not finite."""
    if isinstance(doc, np.ndarray):
        if doc.dtype.kind == "f" and not np.isfinite(doc).all():
            found.append(path)
    elif isinstance(doc, float):
        if not np.isfinite(doc):
            found.append(path)
    elif isinstance(doc, dict):
        for k, v in doc.items():
            _nonfinite(v, f"{path}.{k}" if path else k, found)


def _upper_null(a: np.ndarray) -> np.ndarray:
    """T×T matrices with NaN (written as null) above the diagonal, where k > t."""
    T = a.shape[-1]
    return np.where(np.tri(T, dtype=bool), a, np.nan)


def _upper_zero(a: np.ndarray) -> np.ndarray:
    """T×T matrices with 0 above the diagonal, where k > t (as in the dense δ)."""
    T = a.shape[-1]
    return np.where(np.tri(T, dtype=bool), a, 0.0)


def build(r: Result, parsed: Parsed, dense: bool = False) -> dict[str, Any]:
    """The response: the fields that describe the request always, then the fields asked for
    (all of them unless the request named some in ``fields``), in the contract's order.

    dense (the npz archive, ``npz``): delta, delta_h and delta_c stay dense arrays (…×T×T×·,
    zeros where k > t) instead of ragged rows, and the T×T matrices hold 0 where k > t instead
    of null; every other value is the same object."""
    p = r.problem
    B, T, n = p.X.shape
    m = p.h0.shape[1]
    sq = (lambda a: a[0]) if not parsed.batched else (lambda a: a)  # drop the batch axis
    sq_or_none = lambda a: None if a is None else sq(a)  # noqa: E731
    fw, out, tab, diag = r.forward, r.out, r.table, r.diagnostics
    hidden = CELLS[p.cell].hidden
    named = lambda d: None if d is None else from_canonical(p.notation, d, hidden)  # noqa: E731
    eps = None if tab is None else tab.eps  # ε^s_{t,k} tables (asked for: delta_h, delta_c)
    eps_h, eps_c = (None, None) if eps is None else (eps.get("h"), eps.get("c"))
    eps_norm = {} if tab is None or tab.eps_norm is None else tab.eps_norm  # (norms only: delta_h_norm, delta_c_norm)
    eps_h_norm = eps_norm.get("h") if eps_h is None else norms.of_vectors(eps_h)
    eps_c_norm = eps_norm.get("c") if eps_c is None else norms.of_vectors(eps_c)

    def check() -> dict[str, Any] | None:
        if r.check is None:
            return None
        per = {}
        for canon, stats in r.check.per_array.items():
            for shown in from_canonical(p.notation, {canon: 0}, hidden) or {canon: 0}:
                per[shown] = stats
        return {
            "step": r.check.step, "tolerance": r.check.tolerance, "ok": r.check.ok,
            "max_rel_error": r.check.max_rel_error, "compared": "exact BPTT gradient (untruncated, unclipped)",
            "arrays": per,
        }

    # each field as a function, so that only the fields asked for are built
    fields: dict[str, Any] = {
        "params": lambda: dict(p.params),
        "forward": lambda: {
            "z": sq(fw.z), "h": sq(fw.h), "fprime": sq_or_none(getattr(fw, "fprime", None)),
            "c": sq_or_none(fw.states.get("c")),
            "gates": {g: sq(a) for g, a in fw.gates.items()} or None,
            "o": None if out.o is None else sq(out.o),
            "y_hat": None if out.y_hat is None else sq(out.y_hat),
            "loss_t": sq(out.loss_t), "loss": float(out.loss),
        },
        "e": lambda: None if out.e is None else sq(out.e),
        "eps_tt": lambda: sq(out.eps_tt),
        "delta": lambda: None if tab is None else tab.delta,  # the dense table while looking for non-finite numbers
        "delta_norm": lambda: None if tab is None else sq_or_none(tab.delta_norm),
        "dz": lambda: None if tab is None else sq(tab.dz),
        "dh": lambda: None if tab is None else sq(tab.dh),
        "dc": lambda: None if tab is None else sq_or_none(tab.d.get("c")),
        "delta_h": lambda: eps_h,  # dense while looking for non-finite numbers, ragged below
        "delta_h_norm": lambda: sq_or_none(eps_h_norm),
        # row select.t of delta_h for sequence select.b (k ≤ t): the same numbers, O(T·m)
        "delta_h_row": lambda: None if tab is None or tab.eps_row is None else tab.eps_row["h"],
        "delta_row": lambda: None if tab is None else tab.delta_row,  # row select.t of delta, likewise
        "delta_c": lambda: eps_c,
        "delta_c_norm": lambda: sq_or_none(eps_c_norm),
        "methods": lambda: _methods(r, p.notation, hidden),
        "dh_next_pass": lambda: None if r.dh_next is None else {
            **{f"d{s}": sq(v) for s, v in r.dh_next.d.items()},
            **{f"d{s}_next": sq(v) for s, v in r.dh_next.d_next.items()},
            "dz": sq(r.dh_next.dz), "dz_gap": sq(r.dz_gap),
        },
        "grads": lambda: named(r.grads) | {f"{s}0": sq(v) for s, v in r.ds0.items()}
        | {"inputs": sq_or_none(r.dX)},
        "grads_unclipped": lambda: named(r.grads_unclipped),
        "grads_per_step": lambda: named(r.per_step),
        "clip": lambda: None if r.clip is None else {
            "method": r.clip.method, "threshold": r.clip.threshold, "norm_before": r.clip.norm_before,
            "norm_after": r.clip.norm_after, "clipped": r.clip.clipped, "scale": r.clip.scale,
        },
        "diagnostics": lambda: None if diag is None else {
            "jacobian_norm": sq(diag.jacobian_norm),
            # the median of the finite ‖J_k‖₂ per sequence (the vanishing panel's typical step)
            "jacobian_norm_median": sq(diagnostics.finite_median(diag.jacobian_norm)),
            "delta_bound": None if diag.delta_bound is None else sq(diag.delta_bound),
            "spectral_radius": diag.spectral_radius, "sigma_max": diag.sigma_max, "gamma": diag.gamma,
            # the bound on every ‖J_k‖₂ of the vanilla cell, γ·σ_max(W_hh)
            "gamma_sigma_max": None if diag.gamma is None else diag.gamma * diag.sigma_max,
        },
        "vanish": lambda: None if tab is None or tab.delta_norm is None else sq(_vanish(r)),
        "gradient_check": check,
        "grads_per_copy": lambda: named(r.per_copy),
        "backward_parts": lambda: None if r.parts is None else _parts(r.parts, named, r.grads, r.grads_unclipped),
    }
    doc: dict[str, Any] = {
        "version": API_VERSION,
        "notation": p.notation,
        "names": names_map(p.notation, hidden),
        "cell": p.cell,
        "method": p.method,
        "activation": p.activation,
        "loss": p.loss,
        "reduction": p.reduction,
        "loss_steps": p.mask,
        "truncation": p.truncation,
        "detail": p.detail,
        "warnings": list(parsed.warnings) + list(r.warnings),
        "shapes": {"T": T, "n": n, "m": m, "p": None if out.o is None else out.o.shape[-1],
                   "batch": B if parsed.batched else None},
    } | {k: make() for k, make in fields.items() if parsed.wants(k)}
    found: list[str] = []
    _nonfinite(doc, "", found)
    for name in ("delta", "delta_h", "delta_c"):  # ragged: delta[t][k] for k ≤ t
        if doc.get(name) is not None:
            table = doc[name]
            if dense:
                doc[name] = sq(table)
                continue
            rows = [[table[b, t, : t + 1] for t in range(T)] for b in range(B)]
            doc[name] = rows if parsed.batched else rows[0]
    doc["nonfinite"] = found
    if found:
        doc["warnings"].append(
            "overflow: some numbers are not finite (listed in nonfinite) and are written as null"
        )
    elif parsed.fields is not None and not all(
        np.isfinite(a).all() for a in (out.loss, *r.grads.values(), *(() if tab is None else (tab.dz, tab.dh)))
    ):
        doc["warnings"].append("overflow: some numbers of fields not asked for are not finite")
    upper = _upper_zero if dense else _upper_null
    for name in ("delta_norm", "delta_h_norm", "delta_c_norm"):
        if doc.get(name) is not None:
            doc[name] = upper(doc[name])
    if doc.get("diagnostics") and doc["diagnostics"]["delta_bound"] is not None:
        # (null with detail "norms": the client can form it from jacobian_norm, forward.fprime and eps_tt)
        doc["diagnostics"]["delta_bound"] = upper(doc["diagnostics"]["delta_bound"])
    return doc


def _vanish(r: Result) -> list[dict[str, Any]]:
    """Per sequence: the reading of ‖δ_{t,k}‖ along the last loss row (``diagnostics.vanish_reading``)."""
    p, fw = r.problem, r.forward
    out = []
    for b in range(p.X.shape[0]):
        with np.errstate(all="ignore"):
            forward_overflowed = not (np.isfinite(fw.z[b]).all() and all(np.isfinite(s[b]).all() for s in fw.states.values()))
        v = diagnostics.vanish_reading(r.table.delta_norm[b], p.mask, p.truncation, forward_overflowed)
        out.append({"t": v.t, "factor_per_step": v.factor_per_step, "span": v.span,
                    "factor_over_span": v.factor_over_span, "verdict": v.verdict, "reason": v.reason,
                    "overflowed": v.overflowed, "zero": v.zero, "truncation": v.truncation, "long": v.long})
    return out


def _norm(a: np.ndarray) -> float:
    """‖a‖₂ of a vector, ‖a‖_F of a matrix, without overflow of the squares."""
    return float(norms.of_vectors(np.reshape(a, (1, -1)))[0])


def _parts(sel, named, grads, grads_unclipped) -> dict[str, Any]:
    """backward_parts: every number the formula panel shows for the selected δ_{t,k}, each
    vector with its norm (``app/engine/parts.py``)."""
    with np.errstate(all="ignore"):
        vec = lambda d: None if d is None else {q: v for q, v in d.items()}  # noqa: E731
        norms_of = lambda d: None if d is None else {q: _norm(v) for q, v in d.items() if v is not None}  # noqa: E731
        terms = named(sel.terms)
        return {
            "t": sel.t, "k": sel.k, "b": sel.b, "in_loss": sel.in_loss, "kept": sel.kept,
            "step": vec(sel.step), "step_norms": norms_of(sel.step),
            "step_from": vec(sel.step_from), "step_from_norms": norms_of(sel.step_from),
            "vectors": dict(sel.vectors), "vector_norms": norms_of(sel.vectors),
            "terms": terms, "term_norms": norms_of(terms),
            "grad_norms": norms_of(named(grads)), "grad_unclipped_norms": norms_of(named(grads_unclipped)),
            "delta_norm": None if sel.step is None else _norm(sel.step["delta"]),
            "jacobian_norms": sel.jacobian_norms, "jacobian_product": sel.jacobian_product,
            "jacobian_geomean": sel.jacobian_geomean, "gain": sel.gain, "eps_tt_norm": sel.eps_tt_norm,
            "bound": sel.bound,
        }


def _methods(r: Result, notation: str, hidden: tuple[str, ...]) -> dict[str, Any] | None:
    """BPTT beside RTRL: the largest relative difference of their gradients (per array under the
    notation's names), and what each route holds and does; their times go in Server-Timing
    (``timing``), so that the same request gives the same document."""
    mr = r.methods
    if mr is None:
        return None
    per = {}
    for canon in hidden:
        for shown in from_canonical(notation, {canon: 0}, hidden):
            per[shown] = mr.per_array[canon]
    per |= {k: v for k, v in mr.per_array.items() if k not in hidden}  # h0, c0
    route = lambda name, x: {"work": x.work, "floats": x.floats, **ORDERS[name]}  # noqa: E731
    return {
        "max_rel_diff": mr.max_rel_diff, "arrays": per, "state_size": mr.state_size, "n_params": mr.n_params,
        "bptt": route("bptt", mr.bptt), "rtrl": route("rtrl", mr.rtrl),
        "compared": "exact gradients (untruncated, unclipped) of the hidden layer and the initial states",
    }


def timing(r: Result) -> str:
    """Server-Timing entries of the two routes when ``methods`` was asked for, else ""."""
    mr = r.methods
    if mr is None:
        return ""
    return f", bptt;dur={mr.bptt.seconds * 1e3:.3f}, rtrl;dur={mr.rtrl.seconds * 1e3:.3f}"


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):  # orjson hands over arrays that are not C-contiguous
        return np.ascontiguousarray(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def dumps(doc: dict[str, Any]) -> bytes:
    """RFC 8259 JSON: orjson writes NaN and ±Infinity as null."""
    return orjson.dumps(doc, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
