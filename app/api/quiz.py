"""POST /api/v1/check-answer: is a student's number the one the API computes?

The page's quiz mode hides every number that would give the answer and asks this route, so the
answer is never on the page before the student has given one (or asked for it):

    {"request": {…a POST /api/v1/bptt body…}, "ask": "delta[2][1][0]", "answer": -0.3149}
    → {"ask": "delta[2][1][0]", "correct": true, "tolerance": {"abs": 0.0001, "rel": 0.001},
       "value": -0.31492…}

``ask`` is a path into /bptt's response for the same request (0-based indices, as there):
``delta[t][k][i]``, ``grads.W_hh[i][j]`` (the notation's names), ``dz[k][i]``, ``forward.h[t][i]``…
``value`` is sent when the answer is right or with ``"reveal": true``; ``correct`` is null when no
answer was given. The tolerance is app/engine/answer.py's. The request goes through /bptt's
parser (its limits and errors, the field names prefixed by ``request.``) and computes only the
field asked for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..engine import answer as A
from ..engine import run
from . import respond
from .errors import ApiError
from .parse import RESPONSE_FIELDS, describe, parse
from .routes import _ERRORS, INLINE_RESPONSE_BYTES, planned_response
from .schemas import ErrorResponse

router = APIRouter(prefix="/api/v1")

FIELDS = ("request", "ask", "answer", "reveal")
_PATH = re.compile(r"^([a-z_]+)(?:\.([A-Za-z_][A-Za-z0-9_.]*))?((?:\[\d{1,9}\])*)$")


def _ask(v: Any) -> tuple[str, str | None, list[int]]:
    """'grads.W_hh[0][1]' → ('grads', 'W_hh', [0, 1])."""
    m = _PATH.match(v) if isinstance(v, str) and len(v) <= 200 else None
    if not m or m.group(1) not in RESPONSE_FIELDS:
        raise ApiError("ask", "a path to one number of the response, such as delta[2][1][0] or grads.W_hh[0][1] "
                       "(fields: " + ", ".join(RESPONSE_FIELDS) + ")", describe(v), code="invalid_value",
                       params={"fields": list(RESPONSE_FIELDS)})
    return m.group(1), m.group(2), [int(i) for i in re.findall(r"\d+", m.group(3))]


def _lookup(doc: dict, path: str, top: str, key: str | None, index: list[int]) -> float:
    """The number at the path, or an ApiError naming the part that does not exist."""
    v: Any = doc.get(top)
    where = top
    if key is not None:
        if not isinstance(v, dict) or key not in v:
            names = sorted(v) if isinstance(v, dict) else []
            raise ApiError("ask", f"one of {top}." + f", {top}.".join(names) if names else f"a field {top} with names",
                           path, code="unknown_field", params={"name": key, "fields": names})
        v, where = v[key], f"{top}.{key}"
    seq = lambda x: isinstance(x, list) or (isinstance(x, np.ndarray) and x.ndim > 0)  # noqa: E731
    for i in index:
        if not seq(v):
            break
        if i >= len(v):
            raise ApiError("ask", f"an index of {where} below {len(v)}", path, code="out_of_range",
                           params={"min": 0, "max": len(v) - 1, "got": i})
        v, where = v[i], f"{where}[{i}]"
    if not isinstance(v, (int, float, np.number, np.ndarray)) or isinstance(v, bool) or seq(v):
        what = (f"{len(v)} entr{'y' if len(v) == 1 else 'ies'}" if seq(v) else "an object" if isinstance(v, dict)
                else f"the boolean {str(v).lower()}" if isinstance(v, (bool, np.bool_)) else "null" if v is None
                else describe(v))  # (gradient_check.ok is true, not null)
        raise ApiError("ask", "a path to one number (an index for every axis)", f"{where}: {what}", code="wrong_shape")
    return float(v)


@router.post(
    "/check-answer",
    summary="Check a student's number against the API's (the page's quiz)",
    description=(
        "`request`: a POST /api/v1/bptt body; `ask`: a path to one number of its response (0-based, "
        "e.g. `delta[2][1][0]` = δ₃,₂ entry 1, `grads.W_hh[0][1]`); `answer`: the student's number; "
        "`reveal`: true to get the value without (or after) answering. Right when |answer − value| ≤ 1e-4 "
        "or ≤ 1e-3·|value|. `value` is sent when the answer is right or on reveal."
    ),
    responses={422: {"model": ErrorResponse, "description": "A field is invalid; the error names it"},
               **{k: v for k, v in _ERRORS.items() if k != 422}},
)
async def check_answer(request: Request) -> Response:
    return await planned_response(request, "check_answer",
                                  inline=lambda plan: plan.parsed.response_bytes <= INLINE_RESPONSE_BYTES)


@dataclass(frozen=True)
class Check:
    """A question checked (every limit of its request too), before any work."""
    parsed: Any
    ask: str
    top: str
    key: str | None
    index: list[int]
    answer: float | None
    reveal: bool


def check_plan(body: Any, settings) -> tuple[Check, float]:
    """The question and its request parsed (``routes.PLANNED``): the plan and its work."""
    if not isinstance(body, dict):
        raise ApiError("body", "a JSON object", describe(body), code="wrong_type")
    for k in body:
        if k not in FIELDS:
            raise ApiError(k, None, None, message=f"{k}: unknown field; the fields are " + ", ".join(FIELDS),
                           code="unknown_field", params={"name": k, "fields": list(FIELDS)})
    if "request" not in body:
        raise ApiError("request", "a POST /api/v1/bptt body", "nothing (the field is required)", code="missing")
    top, key, index = _ask(body.get("ask"))
    ans = body.get("answer")
    if ans is not None and (type(ans) not in (int, float) or not math.isfinite(ans)):
        raise ApiError("answer", "a finite number (or null)", describe(ans), code="wrong_type")
    reveal = body.get("reveal", False)
    if type(reveal) is not bool:
        raise ApiError("reveal", "true or false", describe(reveal), code="wrong_type")
    req = body["request"]
    if not isinstance(req, dict):
        raise ApiError("request", "a POST /api/v1/bptt body (a JSON object)", describe(req), code="wrong_type")
    try:
        parsed = parse({k: v for k, v in req.items() if k != "fields"} | {"fields": [top]}, settings)
    except ApiError as e:  # the same error, its field inside this body
        field = f"request.{e.field}" if e.field and e.field != "body" else "request"
        expected, got, code = e.expected, e.got, e.code
        raise ApiError(field, expected, got, status=e.status, code=code, params=e.params, headers=e.headers) from None
    return Check(parsed, body["ask"], top, key, index, None if ans is None else float(ans), reveal), parsed.work


def check_answer_bytes(plan: Check) -> bytes:
    """The field asked for computed, the number looked up and compared: the answer's JSON."""
    doc = respond.build(run(plan.parsed.problem), plan.parsed)
    value = _lookup(doc, plan.ask, plan.top, plan.key, plan.index)
    correct = None if plan.answer is None else A.is_close(plan.answer, value)
    out: dict[str, Any] = {"ask": plan.ask, "correct": correct, "tolerance": {"abs": A.ABS_TOL, "rel": A.REL_TOL}}
    if correct or plan.reveal:
        out["value"] = value if math.isfinite(value) else None
    return respond.dumps(out)
