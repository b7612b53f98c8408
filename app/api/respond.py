"""Engine ``Result`` → the response document of ``POST /api/v1/bptt``.

Arrays are 0-based (index i is step t = i + 1). Per-sequence fields carry a leading batch
axis only when the request did. Numbers that overflowed are listed in ``nonfinite`` (paths of
fields) and written as null; entries that do not exist (δ_{t,k} with k > t) are null too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

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


def build(r: Result, parsed: Parsed) -> dict[str, Any]:
    p = r.problem
    B, T, n = p.X.shape
    m = p.h0.shape[1]
    sq = (lambda a: a[0]) if not parsed.batched else (lambda a: a)  # drop the batch axis
    fw, out, tab, diag = r.forward, r.out, r.table, r.diagnostics
    named = lambda d: None if d is None else from_canonical(p.notation, d)  # noqa: E731

    delta = None
    if tab.delta is not None:
        rows = [[tab.delta[b, t, : t + 1] for t in range(T)] for b in range(B)]
        delta = rows if parsed.batched else rows[0]
    grads = named(r.grads) | {"h0": sq(tab.dh0), "inputs": sq(r.dX)}
    check = None
    if r.check is not None:
        per = {}
        for canon, stats in r.check.per_array.items():
            for shown in from_canonical(p.notation, {canon: 0}) or {canon: 0}:
                per[shown] = stats
        check = {
            "step": r.check.step, "tolerance": r.check.tolerance, "ok": r.check.ok,
            "max_rel_error": r.check.max_rel_error, "compared": "exact BPTT gradient (untruncated, unclipped)",
            "arrays": per,
        }
    doc: dict[str, Any] = {
        "version": API_VERSION,
        "notation": p.notation,
        "names": names_map(p.notation),
        "cell": p.cell,
        "activation": p.activation,
        "loss": p.loss,
        "reduction": p.reduction,
        "loss_steps": p.mask,
        "truncation": p.truncation,
        "detail": p.detail,
        "warnings": list(parsed.warnings) + list(r.warnings),
        "shapes": {"T": T, "n": n, "m": m, "p": None if out.o is None else out.o.shape[-1],
                   "batch": B if parsed.batched else None},
        "params": dict(p.params),
        "forward": {
            "z": sq(fw.z), "h": sq(fw.h), "fprime": sq(fw.fprime),
            "o": None if out.o is None else sq(out.o),
            "y_hat": None if out.y_hat is None else sq(out.y_hat),
            "loss_t": sq(out.loss_t), "loss": float(out.loss),
        },
        "e": None if out.e is None else sq(out.e),
        "eps_tt": sq(out.eps_tt),
        "delta": tab.delta,  # the dense table while looking for non-finite numbers (one pass)
        "delta_norm": sq(tab.delta_norm),
        "dz": sq(tab.dz),
        "dh": sq(tab.dh),
        "grads": grads,
        "grads_unclipped": named(r.grads_unclipped),
        "grads_per_step": named(r.per_step),
        "clip": None if r.clip is None else {
            "method": r.clip.method, "threshold": r.clip.threshold, "norm_before": r.clip.norm_before,
            "norm_after": r.clip.norm_after, "clipped": r.clip.clipped,
        },
        "diagnostics": {
            "jacobian_norm": sq(diag.jacobian_norm),
            "delta_bound": None if diag.delta_bound is None else sq(diag.delta_bound),
            "spectral_radius": diag.spectral_radius, "sigma_max": diag.sigma_max, "gamma": diag.gamma,
        },
        "gradient_check": check,
    }
    found: list[str] = []
    _nonfinite(doc, "", found)
    doc["delta"] = delta  # ragged: delta[t][k] for k ≤ t
    doc["nonfinite"] = found
    if found:
        doc["warnings"].append(
            "overflow: some numbers are not finite (listed in nonfinite) and are written as null"
        )
    doc["delta_norm"] = _upper_null(doc["delta_norm"])
    if doc["diagnostics"]["delta_bound"] is not None:  # null with detail "norms": the client can
        # form it from jacobian_norm, forward.fprime and eps_tt
        doc["diagnostics"]["delta_bound"] = _upper_null(doc["diagnostics"]["delta_bound"])
    return doc


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):  # orjson hands over arrays that are not C-contiguous
        return np.ascontiguousarray(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def dumps(doc: dict[str, Any]) -> bytes:
    """RFC 8259 JSON: orjson writes NaN and ±Infinity as null."""
    return orjson.dumps(doc, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
