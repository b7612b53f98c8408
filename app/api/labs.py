"""The labs' own questions (the page at /labs; issue 13's labs and issue 11 §6's compare view):

- ``POST /api/v1/compare-cells``: one sequence through several cells (vanilla, residual, LSTM,
  GRU) from the same seed: ‖∂L_t/∂h_k‖ of each, ‖∂L_T/∂h_{T−d}‖ by lag d and the share of the
  gradient kept d steps back, the keep gate (LSTM f, GRU u) over time, one colour range.
  The LSTM's forget-gate bias is ``init.forget_bias``, as in /bptt and /train (it applies to
  the LSTM only; the other cells draw from the same init without it). ``keep_bias`` is the old
  name: its LSTM part is a deprecated alias of ``init.forget_bias`` (the same numbers; the
  answer's ``deprecated`` says so), its GRU part the GRU's update-gate bias (no init field yet).
- ``POST /api/v1/radius-sweep``: one model with W_hh rescaled to several spectral radii:
  ‖δ_{t,1}‖ against t for each, the fitted per-step factor and a verdict (vanishing,
  exploding, steady).

Each computation is a /api/v1/bptt request (its parser, its names, limits and errors); the
requests together are checked against BPTT_MAX_WORK before any of them runs, charged to the
client's work budget, and computed in a heavy slot's process above classroom size
(``routes.planned_response``: BPTT_MAX_CONCURRENT, 503 with Retry-After). The engine's part is
app/engine/labs.py.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..engine import labs as L
from ..engine.cells import CELLS
from ..engine.run import run
from ..settings import Settings
from . import respond, size
from .errors import ApiError
from .parse import _positive, describe, parse
from .routes import _ERRORS, planned_response
from .train import _refuse_unknown, _task

router = APIRouter(prefix="/api/v1")

#: the data and model fields both endpoints pass on to /bptt's parser
DATA_FIELDS = ("inputs", "targets", "loss", "loss_steps", "task", "init", "reduction")
COMPARE_CELLS_FIELDS = DATA_FIELDS + ("cells", "keep_bias")
SWEEP_FIELDS = DATA_FIELDS + ("cell", "activation", "radii")
#: the cells compare-cells runs by default, in the order it answers
DEFAULT_CELLS = ("vanilla", "residual", "lstm", "gru")
DEFAULT_RADII = (0.5, 0.8, 1.0, 1.2, 1.5)
MAX_RADII = 12
#: estimated work of the eigenvalues of an m×m matrix, per m³ (as parse counts the diagnostics'
#: Jacobians: measured 1.3–2.6 ns per m³ for m = 64 … 256, one BLAS thread)
SPECTRAL_RADIUS_WORK = 20


def _data(body: dict, s: Settings) -> dict:
    """The /bptt fields of the data: inputs/targets as given, or made by the task (one
    sequence unless the task says N)."""
    sub = {k: body[k] for k in ("inputs", "targets", "loss", "loss_steps", "init", "reduction") if k in body}
    if body.get("task") is not None:
        for k in ("inputs", "targets", "loss_steps", "loss"):
            if body.get(k) is not None:
                raise ApiError(k, "nothing with task (the task makes inputs, targets, loss and loss steps)",
                               describe(body[k]), code="conflict")
        task = body["task"]
        if isinstance(task, dict) and "N" not in task:
            task = {**task, "N": 1}
        if isinstance(task, dict) and task["N"] not in (1, 1.0):  # before N sequences are made
            raise ApiError("inputs", "one sequence (T×n; a task with N 1)", f"a task of N = {describe(task['N'])}", code="wrong_shape")
        t = _task(task, s)
        sub |= {"inputs": t.inputs[0].tolist() if t.inputs.shape[0] == 1 else t.inputs.tolist(),
                "targets": t.targets[0].tolist() if t.targets.shape[0] == 1 else t.targets.tolist(),
                "loss": t.loss, "loss_steps": t.loss_steps}
    if sub.get("init") is None:
        raise ApiError("init", '{"seed": …, "hidden": m} (each cell draws its own weights from it)', "nothing", code="missing")
    return sub


def _one_sequence(parsed) -> None:
    if parsed.problem.X.shape[0] != 1:
        raise ApiError("inputs", "one sequence (T×n; a task with N 1)", f"a batch of {parsed.problem.X.shape[0]}", code="wrong_shape")


def _total_work(works: list[float], s: Settings, field: str) -> float:
    total = sum(works)
    if total > s.max_work:
        raise ApiError(field, f"at most {s.max_work:g} estimated work for all the computations together (limit BPTT_MAX_WORK)",
                       f"{total:.3g} ({len(works)} computations)", code="over_limit",
                       params={"setting": "BPTT_MAX_WORK", "limit": s.max_work, "got": total})
    return total


def _list(v: Any, field: str, what: str) -> list:
    if not isinstance(v, list) or not v:
        raise ApiError(field, what, describe(v), code="wrong_type")
    return v


def _bias(v: Any, field: str) -> float | None:
    if v is None:
        return None
    if type(v) not in (int, float) or not math.isfinite(v) or abs(v) > 50:
        raise ApiError(field, "a number in [−50, 50], or null", describe(v), code="out_of_range", params={"min": -50, "max": 50})
    return float(v)


def _keep_biases(v: Any) -> dict[str, float | None]:
    """keep_bias: one number for both gated cells, or {"lstm": b, "gru": b} (null: as drawn)."""
    if isinstance(v, dict):
        for k in v:
            if k not in L.KEEP_GATE:
                raise ApiError(f"keep_bias.{k}", "lstm or gru (the cells with a keep gate)", "an unknown cell", code="unknown_field",
                               params={"name": k, "fields": list(L.KEEP_GATE)})
        return {c: _bias(v.get(c), f"keep_bias.{c}") for c in L.KEEP_GATE}
    b = _bias(v, "keep_bias")
    return {c: b for c in L.KEEP_GATE}


def compare_cells_plan(body: Any, s: Settings) -> tuple[dict, float]:
    """The cells' /bptt requests parsed (every limit checked) and their work together, before any
    of it (``routes.PLANNED``)."""
    if not isinstance(body, dict):
        raise ApiError("body", "a JSON object", describe(body), code="wrong_type")
    _refuse_unknown(body, COMPARE_CELLS_FIELDS)
    cells = _list(body.get("cells", list(DEFAULT_CELLS)), "cells", "a non-empty array of cell names: " + ", ".join(CELLS))
    for i, c in enumerate(cells):
        if not isinstance(c, str) or c not in CELLS:  # (a list or an object is not hashable)
            raise ApiError(f"cells[{i}]", "one of " + ", ".join(CELLS), describe(c), code="not_one_of", params={"options": list(CELLS)})
    if len(set(cells)) != len(cells):
        raise ApiError("cells", "each cell at most once", describe(cells), code="invalid_value")
    keep_bias = body.get("keep_bias")
    biases = _keep_biases(keep_bias)
    sub = _data(body, s)
    init = sub["init"]
    forget_bias = init.get("forget_bias") if isinstance(init, dict) else None
    deprecated = []
    if biases.pop("lstm", None) is not None and "lstm" in cells:
        # the old name of init.forget_bias: drawn the same way (init_params sets the same block)
        if forget_bias is not None:
            raise ApiError("keep_bias", "nothing for the LSTM with init.forget_bias (keep_bias's LSTM part is its "
                           "deprecated alias)", describe(keep_bias), code="conflict")
        forget_bias = _keep_biases(keep_bias)["lstm"]
        deprecated.append("keep_bias for the LSTM: use init.forget_bias (the same numbers)")
    if forget_bias is not None and "lstm" not in cells:
        raise ApiError("init.forget_bias", "nothing without lstm among cells (only the LSTM has a forget gate)",
                       describe(forget_bias), code="conflict")
    plain = {k: v for k, v in init.items() if k != "forget_bias"} if isinstance(init, dict) else init
    parsed = {}
    for c in cells:
        own = (plain | {"forget_bias": forget_bias}) if c == "lstm" and forget_bias is not None else plain
        parsed[c] = parse(sub | {"init": own, "cell": c, "fields": ["delta_h_norm", "forward"]}, s)
        _one_sequence(parsed[c])
    work = _total_work([p.work for p in parsed.values()], s, "cells")
    _total_size(parsed, s)
    return {"parsed": parsed, "biases": biases, "keep_bias": keep_bias, "forget_bias": forget_bias, "cells": cells,
            "deprecated": deprecated}, work


def _total_size(parsed: dict, s: Settings) -> int:
    """The compare-cells answer's bytes (an upper bound, from the sizes), refused above
    BPTT_MAX_RESPONSE_MB: each cell's request passed it alone, but the cells answer together
    (four at T = 1024: up to ~90 MB, their ‖∂L_t/∂h_k‖ tables and the gates)."""
    T = next(iter(parsed.values())).problem.X.shape[1]
    total = size.FIXED + 2 * size.array((T,))  # lag, t
    for c, pr in parsed.items():
        params = pr.problem.params
        m = params["W_hh"].shape[-1]
        total += size.lower_triangle(1, T) + 2 * size.array((T,)) + sum(size.array(a.shape) for a in params.values())
        if c in L.KEEP_GATE:
            total += size.array((T, m)) + size.array((T,))
    if total > s.max_response_mb * 1e6:
        raise ApiError(
            "cells", f"a response of at most {s.max_response_mb:g} MB for all the cells together (limit BPTT_MAX_RESPONSE_MB)",
            f"an estimated {total / 1e6:.4g} MB for {len(parsed)} cells at T={T}",
            message=f"the cells' answers would be up to {total / 1e6:.4g} MB together, over the limit of "
            f"{s.max_response_mb:g} MB (BPTT_MAX_RESPONSE_MB). Ask for less: fewer cells, or a shorter sequence",
            code="over_limit", params={"setting": "BPTT_MAX_RESPONSE_MB", "limit": s.max_response_mb,
                                       "got": round(total / 1e6, 3)})
    return total


def compare_cells_answer(plan: dict) -> bytes:
    parsed, biases, keep_bias = plan["parsed"], plan["biases"], plan["keep_bias"]
    forget_bias, cells, deprecated = plan["forget_bias"], plan["cells"], plan["deprecated"]
    out: dict[str, Any] = {}
    lo, hi = math.inf, -math.inf
    T = None
    for c, pr in parsed.items():
        prob = pr.problem
        if biases.get(c) is not None:
            prob = dataclasses.replace(prob, params=L.set_keep_bias(c, prob.params, biases[c]))
        result = run(prob)
        doc = respond.build(result, dataclasses.replace(pr, problem=prob))
        eps = np.asarray(doc["delta_h_norm"], dtype=np.float64)
        T = eps.shape[0]
        r = L.reach(eps)
        good = eps[np.isfinite(eps) & (eps > 0)]
        if good.size:
            lo, hi = min(lo, float(good.min())), max(hi, float(good.max()))
        gate = None
        if c in L.KEEP_GATE:
            name = L.KEEP_GATE[c][0]
            values = doc["forward"]["gates"][name]  # (T, m)
            gate = {"name": name, "values": values, "mean": values.mean(axis=1), "mean_all": float(values.mean())}
        out[c] = {
            "delta_h_norm": doc["delta_h_norm"],
            "reach": r.norm, "kept": r.kept,
            "gate": gate,
            "loss": doc["forward"]["loss"],
            "params": dict(prob.params),
            "nonfinite": doc["nonfinite"],
        }
    doc = {
        "T": T, "lag": np.arange(T), "t": np.arange(1, T + 1), "cells": out,
        "keep_bias": keep_bias, "forget_bias": None if forget_bias is None or "lstm" not in cells else float(forget_bias),
        "scale": {"min": None if lo == math.inf else lo, "max": None if hi == -math.inf else hi},
        "note": "reach[d] = ‖∂L_T/∂h_{T−d}‖ (d = T − k, the lag), kept[d] = reach[d] / reach[0]; "
                "delta_h_norm[t][k] = ‖∂L_t/∂h_k‖ (0-based, null above the diagonal); scale: the smallest "
                "and largest positive finite ‖∂L_t/∂h_k‖ over all cells (one colour scale); gate: the keep "
                "gate (LSTM f, GRU u) per step and unit, its mean over the units per step, and over everything (mean_all); "
                "forget_bias: the LSTM's forget-gate bias used (init.forget_bias, or keep_bias's deprecated LSTM part)",
    }
    if deprecated:
        doc["deprecated"] = deprecated
    return respond.dumps(doc)


def radius_sweep_plan(body: Any, s: Settings) -> tuple[dict, float]:
    """The model parsed (every limit checked) and the work of all the radii, with their
    eigenvalues, before any of it (``routes.PLANNED``)."""
    if not isinstance(body, dict):
        raise ApiError("body", "a JSON object", describe(body), code="wrong_type")
    _refuse_unknown(body, SWEEP_FIELDS)
    cell = body.get("cell", "vanilla")
    if cell not in ("vanilla", "residual"):
        raise ApiError("cell", "vanilla or residual (W_hh is then the m×m recurrent matrix whose radius is swept)",
                       describe(cell), code="not_one_of", params={"options": ["vanilla", "residual"]})
    radii = _list(body.get("radii", list(DEFAULT_RADII)), "radii", f"an array of 1 to {MAX_RADII} spectral radii ρ > 0")
    if len(radii) > MAX_RADII:
        raise ApiError("radii", f"at most {MAX_RADII} radii", str(len(radii)), code="over_limit",
                       params={"limit": MAX_RADII, "got": len(radii)})
    radii = [_positive(r, f"radii[{i}]", "the spectral radius ρ", hi=1e6) for i, r in enumerate(radii)]
    sub = _data(body, s) | {"cell": cell, "fields": ["delta_norm"]}
    if body.get("activation") is not None:
        sub["activation"] = body["activation"]
    pr = parse(sub, s)
    _one_sequence(pr)
    m = pr.problem.params["W_hh"].shape[0]
    # ρ(W_hh) of the drawn weights and of each rescaled one: LAPACK's eigenvalues, m³ work
    # that /bptt's estimate does not hold (m = 256, T = 1: 13 of them ~0.3 s, the runs ~1 ms)
    eig = SPECTRAL_RADIUS_WORK * m**3
    work = _total_work([pr.work + eig] * len(radii) + [eig], s, "radii")
    return {"parsed": pr, "radii": radii}, work


def radius_sweep_answer(plan: dict) -> bytes:
    pr, radii = plan["parsed"], plan["radii"]
    W = pr.problem.params["W_hh"]
    rho0 = L.spectral_radius(W)
    if not rho0 > 0:
        raise ApiError("init", "weights whose W_hh has a spectral radius > 0 (it is rescaled)", "ρ(W_hh) = 0", code="invalid_value")
    runs = []
    for rho in radii:
        # W_hh · ρ / ρ(W_hh), as L.scale_to_radius writes it, without its second eigenvalues
        with np.errstate(over="ignore", invalid="ignore"):
            W_rho = W * (rho / rho0)
        if not np.isfinite(W_rho).all():  # a subnormal ρ(W_hh) (init.scale 1e-323): ρ/ρ(W_hh) overflows
            raise ApiError("init", "weights whose W_hh can be rescaled to every radius (ρ/ρ(W_hh) finite)",
                           f"ρ(W_hh) = {rho0:.3g}, ρ = {rho:g}", code="invalid_value")
        prob = dataclasses.replace(pr.problem, params={**pr.problem.params, "W_hh": W_rho})
        res = run(prob)
        col = res.table.delta_norm[0][:, 0]  # (T,) ‖δ_{t,1}‖, t = 1 … T
        tr = L.trend(col)
        runs.append({"radius": rho, "spectral_radius": L.spectral_radius(prob.params["W_hh"]),
                     "delta_t1": col, "rate": tr.rate, "factor": tr.factor, "verdict": tr.verdict,
                     "loss": float(res.out.loss)})
    T = pr.problem.X.shape[1]
    doc = {
        "T": T, "t": np.arange(1, T + 1), "cell": pr.problem.cell, "activation": pr.problem.activation,
        "spectral_radius_drawn": rho0, "runs": runs,
        "note": "W_hh of the drawn weights times ρ/ρ(W_hh); delta_t1[i] = ‖δ_{t,1}‖ = ‖∂L_t/∂z_1‖ at t = i + 1; "
                f"rate = exp(slope) of a least-squares line through log ‖δ_{{t,1}}‖ (finite, nonzero); factor = "
                f"rate^(span); verdict vanishing below 1/{L.TREND_FACTOR:g}, exploding above {L.TREND_FACTOR:g}, else steady",
    }
    return respond.dumps(doc)


@router.post(
    "/compare-cells",
    summary="One sequence through several cells: how far back each carries the gradient",
    description=(
        "The data (inputs/targets, or a task with one sequence) and init as in /api/v1/bptt, `cells` "
        "(default vanilla, residual, lstm, gru); the LSTM's forget-gate bias is `init.forget_bias` (as in "
        "/api/v1/bptt; the other cells draw without it); `keep_bias` sets the GRU's update-gate bias "
        "({\"gru\": b}; its LSTM part, or one number for both, is a deprecated alias of init.forget_bias). "
        "Per cell: delta_h_norm, reach (‖∂L_T/∂h_{T−d}‖ by lag d), kept "
        "(reach / reach[0]), the keep gate over time; one colour range over all cells."
    ),
    response_model=None,
    responses=_ERRORS,
)
async def compare_cells(request: Request) -> Response:
    return await planned_response(request, "compare_cells")


@router.post(
    "/radius-sweep",
    summary="W_hh rescaled to several spectral radii: ‖δ_{t,1}‖ against t for each",
    description=(
        "The data and init as in /api/v1/bptt (vanilla or residual cell, any activation) and `radii` "
        "(default 0.5, 0.8, 1, 1.2, 1.5). Per radius: ‖δ_{t,1}‖ for t = 1 … T, the fitted per-step "
        "factor, and the verdict vanishing / exploding / steady."
    ),
    response_model=None,
    responses=_ERRORS,
)
async def radius_sweep(request: Request) -> Response:
    return await planned_response(request, "radius_sweep")
