"""Request body → engine ``Problem``, or an ``ApiError`` that names the field, says what was
expected and what came. Nothing large is allocated before the limits are checked: JSON
parsing is bounded by the body cap, and sizes are read off the parsed lists first."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from ..engine.activations import ACTIVATIONS
from ..engine.cells import CELLS
from ..engine.init import has_forget_gate, init_params
from ..engine.losses import LOSSES
from ..engine.notation import CANONICAL, NOTATIONS, param_names
from ..engine import gradcheck, methods, rtrl
from ..engine.problem import Problem
from ..settings import Settings, get_settings
from . import size
from .errors import ApiError

FIELDS = (
    "notation", "cell", "activation", "loss", "inputs", "targets", "upstream", "h0", "params",
    "init", "loss_steps", "reduction", "truncation", "clip", "gradient_check", "detail", "fields",
    "c0", "method", "select",
)
#: response fields a request may choose with "fields" (the others are always there)
RESPONSE_FIELDS = (
    "params", "forward", "e", "eps_tt", "delta", "delta_norm", "dz", "dh", "grads",
    "grads_unclipped", "grads_per_step", "clip", "diagnostics", "vanish", "gradient_check",
    "delta_h", "delta_h_norm", "delta_c", "dc", "delta_c_norm", "methods", "grads_per_copy",
    "backward_parts", "dh_next_pass", "delta_h_row", "delta_row",
)
#: response fields sent only when named in "fields" (they would double the default response;
#: backward_parts also comes whenever the request has "select"; delta_row and delta_h_row, row
#: select.t of delta and delta_h, need select)
OPT_IN_FIELDS = frozenset(("delta_h", "delta_h_norm", "delta_c", "delta_c_norm", "methods", "grads_per_copy",
                           "backward_parts", "dh_next_pass", "delta_h_row", "delta_row"))
#: the keys of "select": the loss step t, the copy k and the sequence b of one δ_{t,k}, 0-based
SELECT_FIELDS = ("t", "k", "b")
METHODS = ("bptt", "rtrl")
INIT_FIELDS = ("seed", "hidden", "outputs", "scale", "forget_bias")
REDUCTIONS = ("sum", "mean")
DETAILS = ("full", "norms")
#: what each canonical parameter's shape is called in errors
SHAPE_WORDS = {
    "W_xh": "hidden×inputs", "W_hh": "hidden×hidden", "b_h": "hidden", "W_hy": "outputs×hidden",
    "b_y": "outputs", "W_ih": "gates·hidden×inputs", "b_ih": "gates·hidden", "b_hh": "gates·hidden",
}


class NonFinite:
    """A number JSON cannot carry (NaN, Infinity, 1e400), kept as written for the error."""

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def max_containers() -> int:
    """The most arrays and objects a body may hold: what the largest request the limits allow
    needs (inputs, targets, a mask or upstream: B·T rows each, and the parameters' rows) with
    room to spare. 8 MB of ``[[[[[[[[[[0]]]]]]]]]],`` is 4.2 million lists, 3–4 s for orjson
    to build and free (47–55 s of a heavy slot under load) before any field is looked at."""
    s = get_settings()
    return 4 * s.max_batch * s.max_t + 65536


def decode(body: bytes) -> Any:
    """Strict JSON (orjson). Bodies orjson refuses get a second, lenient read only to find
    NaN / Infinity / 1e400 and name the field that holds them. A body of more arrays and objects
    than any request needs is refused first, by counting its brackets (a few ms for 8 MB)."""
    if not body.strip():
        raise ApiError("body", "a JSON object", "an empty body", status=400, code="empty_body")
    limit = max_containers()
    if len(body) > limit:  # (each container takes at least two bytes)
        count = body.count(b"[") + body.count(b"{")  # (brackets inside strings counted too: over, never under)
        if count > limit:
            raise ApiError("body", f"at most {limit} arrays and objects (4 · BPTT_MAX_BATCH · BPTT_MAX_T + 65536)",
                           f"{count}", code="over_limit",
                           params={"setting": "BPTT_MAX_BATCH, BPTT_MAX_T", "limit": limit, "got": count})
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as strict_error:
        try:
            return json.loads(body, parse_float=_parse_float, parse_constant=NonFinite)
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise ApiError("body", "valid JSON", f"invalid JSON ({strict_error})", status=400, code="invalid_json") from None


def describe(v: Any) -> str:
    """What came, in words."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, NonFinite):
        return f"{v.text} (not a finite number)"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f"the string {json.dumps(s, ensure_ascii=False)}"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return f"an array of {len(v)}"
    text = repr(v)
    return text if len(text) <= 40 else text[:20] + "…" + f" ({len(text)} digits)"


def given(v: Any) -> dict[str, Any]:
    """What came, for a translation: its JSON type and (for a string, number or NaN/Infinity
    written in the body) its text, so a client can say it in its own words (params.got_type,
    params.got_value)."""
    if v is None:
        return {"got_type": "null"}
    if isinstance(v, bool):
        return {"got_type": "boolean", "got_value": v}
    if isinstance(v, NonFinite):
        return {"got_type": "nonfinite", "got_value": v.text}
    if isinstance(v, str):
        return {"got_type": "string", "got_value": v}
    if isinstance(v, dict):
        return {"got_type": "object"}
    if isinstance(v, list):
        return {"got_type": "array", "got_length": len(v)}
    return {"got_type": "number", "got_value": v if isinstance(v, float) or abs(v) < 2**63 else str(v)}


def dims(shape: tuple[int, ...]) -> str:
    if not shape:
        return "a number"
    if len(shape) == 1:
        return f"length {shape[0]}"
    return "×".join(str(s) for s in shape)


def _path(field: str, index: tuple[int, ...]) -> str:
    return field + "".join(f"[{i}]" for i in index)


_FLOAT, _LIST, _NUMBER = {float}, {list}, {float, int}


def _walk(v: Any, field: str, index: tuple[int, ...], depth_left: int) -> tuple[int, ...]:
    """Shape of a rectangular nested list of finite numbers, or an ApiError at the first
    entry that is not one (strings, booleans, null, NaN, ragged rows, too deep)."""
    if isinstance(v, list):
        if depth_left == 0:
            raise ApiError(_path(field, index), "a number", describe(v), code="wrong_shape", params={"expected": "number"} | given(v))
        if not v:
            return (0,)
        if depth_left == 1 or not isinstance(v[0], list):
            for i, x in enumerate(v):  # innermost level (rows of floats were read by _float_shape)
                tx = type(x)
                if tx is float or (tx is int and abs(x) < 1e308):
                    continue
                if isinstance(x, list):
                    if depth_left == 1:  # nested deeper than the field allows
                        raise ApiError(_path(field, index + (i,)), "a number", describe(x), code="wrong_shape",
                                       params={"expected": "number"} | given(x))
                    raise ApiError(_path(field, index), "rows of equal shape", f"a ragged array (row 0 is a number, row {i} an array)", code="wrong_shape")
                exp = "a finite number" if tx in (int, NonFinite) else "a number"
                raise ApiError(_path(field, index + (i,)), exp, describe(x), code="not_finite" if tx in (int, NonFinite) else "wrong_type",
                               params={"expected": "number"} | given(x))
            return (len(v),)
        first = _walk(v[0], field, index + (0,), depth_left - 1)
        for i in range(1, len(v)):
            s = _walk(v[i], field, index + (i,), depth_left - 1) if isinstance(v[i], list) else ()
            if s != first:
                raise ApiError(
                    _path(field, index), "rows of equal shape",
                    f"a ragged array (row 0 is {dims(first)}, row {i} is {dims(s)})", code="wrong_shape",
                )
        return (len(v),) + first
    return ()


def _float_shape(v: list, depth: int) -> tuple[int, ...] | None:
    """The shape of v when it is a rectangular nested list (at most depth levels) of floats (or
    integers below 1e308), found level by level at C speed (map over the entries); None for
    anything else, which ``_walk`` then looks at entry by entry to name what is wrong. The
    entries are looked at BLOCK_NUMBERS at a time, so that no single C call holds the GIL for
    long on a large body (one over 4 million entries took 0.3 s)."""
    shape, rows = [len(v)], [v]  # rows: the lists at this level, each of length shape[-1]
    for _ in range(depth - 1):
        if not v or type(v[0]) is not list:
            break
        if _entries(rows, shape[-1], type) != _LIST:
            return None
        lengths = _entries(rows, shape[-1], len)
        if len(lengths) != 1:
            return None
        shape.append(lengths.pop())
        rows = list(chain.from_iterable(rows))
        v = rows[0]
    types = _entries(rows, shape[-1], type)
    if types <= _FLOAT:
        return tuple(shape)
    # integers (class indices, 0 and 1 written without a point), as _walk takes them
    if types <= _NUMBER and _entries(rows, shape[-1], abs, max) < 1e308:
        return tuple(shape)
    return None


def _entries(rows: list[list], width: int, f, gather=set) -> Any:
    """gather(f(x)) over the entries x of rows, in C calls over BLOCK_NUMBERS entries each."""
    step = max(1, BLOCK_NUMBERS // max(width, 1))
    if len(rows) <= step:
        return gather(map(f, chain.from_iterable(rows)))
    out = [gather(map(f, chain.from_iterable(rows[i : i + step]))) for i in range(0, len(rows), step)]
    return set().union(*out) if gather is set else gather(out)


#: arrays above this many numbers are converted a block of rows at a time: np.array on a nested
#: list holds the GIL throughout (measured 15 ms for 400,000 numbers), a block a fraction of it
BLOCK_NUMBERS = 1 << 15


def number_array(v: Any, field: str, ndims: tuple[int, ...], expected: str, check=None) -> np.ndarray:
    """The float64 array of v; check(shape), if given, refuses a shape before it is allocated."""
    if not isinstance(v, list):
        raise ApiError(field, expected, describe(v), code="wrong_type", params={"expected": "array"} | given(v))
    shape = _float_shape(v, max(ndims)) or _walk(v, field, (), max(ndims))
    if len(shape) not in ndims:
        raise ApiError(field, expected, dims(shape) if shape != (0,) else "an empty array", code="wrong_shape",
                       params={"got_shape": list(shape)})
    if 0 in shape:
        raise ApiError(field, expected, "an empty array" + ("" if shape == (0,) else f" ({dims(shape)})"), code="wrong_shape",
                       params={"got_shape": list(shape)})
    if check is not None:
        check(shape)
    size = math.prod(shape)
    if size <= BLOCK_NUMBERS or shape[0] == 1:
        return np.array(v, dtype=np.float64)
    out = np.empty(shape)
    rows = max(1, BLOCK_NUMBERS * shape[0] // size)
    for i in range(0, shape[0], rows):
        out[i : i + rows] = v[i : i + rows]  # the same conversion as np.array, a block at a time
    return out


@dataclass(frozen=True)
class Parsed:
    problem: Problem
    #: the request had a batch axis (B×T×n inputs)
    batched: bool
    warnings: list[str]
    work: float
    #: the response fields asked for (RESPONSE_FIELDS); None: all of them
    fields: frozenset[str] | None = None
    #: upper bound of the response's bytes (``size``), known before any work
    response_bytes: int = 0

    def wants(self, field: str) -> bool:
        return _wanted(self.fields, field)


def _wanted(fields: frozenset[str] | None, field: str) -> bool:
    return field in fields if fields is not None else field not in OPT_IN_FIELDS


def _enum(body: dict, field: str, options: tuple[str, ...], default: str) -> str:
    v = body.get(field, default)
    if v not in options or not isinstance(v, str):
        raise ApiError(field, "one of " + ", ".join(options), describe(v), code="not_one_of", params={"options": list(options)} | given(v))
    return v


def _int(v: Any, field: str, lo: int, hi: int | None, what: str) -> int:
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is not int or v < lo or (hi is not None and v > hi):
        expected = f"{what}: an integer ≥ {lo}" + (f" and ≤ {hi}" if hi is not None else "")
        raise ApiError(field, expected, describe(v), code="out_of_range" if type(v) is int else "wrong_type", params={"expected": "integer", "min": lo, "max": hi} | given(v))
    return v


def _positive(v: Any, field: str, what: str, hi: float = math.inf) -> float:
    try:
        x = float(v) if type(v) in (int, float) else math.nan
    except OverflowError:  # an integer literal beyond float64
        x = math.inf
    if not (0 < x < math.inf) or x > hi:
        limit = "" if hi == math.inf else f" and ≤ {hi:g}"
        raise ApiError(field, f"{what}: a finite number > 0{limit}", describe(v), code="not_finite" if isinstance(v, NonFinite) or x == math.inf else "out_of_range" if type(v) in (int, float) else "wrong_type", params={"expected": "positive", "max": None if hi == math.inf else hi} | given(v))
    return x


def _limit(value: int, limit: int, field: str, what: str, setting: str) -> None:
    if value > limit:
        raise ApiError(field, f"at most {limit} {what} (limit {setting})", f"{value}", status=422, code="over_limit", params={"setting": setting, "limit": limit, "got": value})


def parse(body: Any, s: Settings, media: str = "json") -> Parsed:
    """media: "json" or "npz", the response's format (its size is estimated for it)."""
    if not isinstance(body, dict):
        raise ApiError("body", "a JSON object", describe(body), code="wrong_type")
    for key in body:
        if key not in FIELDS:
            raise ApiError(key, "one of the fields " + ", ".join(FIELDS), "an unknown field",
                           message=f"{key}: unknown field; the fields are " + ", ".join(FIELDS), code="unknown_field", params={"name": key, "fields": list(FIELDS)})
    notation = _enum(body, "notation", tuple(NOTATIONS), "canonical")
    cell = _enum(body, "cell", tuple(CELLS), "vanilla")
    activation = _enum(body, "activation", tuple(ACTIVATIONS), "tanh")
    the_cell = CELLS[cell]
    if activation not in the_cell.activations:
        raise ApiError("activation", f"{' or '.join(the_cell.activations)} with cell {cell} (its gates fix their own "
                       "activations)", describe(activation), code="conflict")
    method = _enum(body, "method", METHODS, "bptt")
    loss = _enum(body, "loss", LOSSES, "mse")
    reduction = _enum(body, "reduction", REDUCTIONS, "sum")
    has_output = loss != "upstream"
    warnings: list[str] = []

    # inputs: T×n or B×T×n
    if "inputs" not in body:
        raise ApiError("inputs", "T×n (steps×inputs) or B×T×n", "nothing (the field is required)", code="missing")
    def input_limits(shape: tuple[int, ...]) -> None:
        B, T, n = shape if len(shape) == 3 else (1, *shape)
        _limit(T, s.max_t, "inputs", "steps T", "BPTT_MAX_T")
        _limit(n, s.max_n, "inputs", "inputs per step n", "BPTT_MAX_N")
        _limit(B, s.max_batch, "inputs", "sequences B", "BPTT_MAX_BATCH")
        # ‖δ_{t,k}‖ is B×T×T numbers in every detail (null above the diagonal)
        if B * T * T > s.max_norm_floats:
            raise ApiError(
                "inputs", f"at most {s.max_norm_floats} numbers B·T² in delta_norm (limit BPTT_MAX_NORM_FLOATS)",
                f"B·T² = {B}·{T}² = {B * T * T}", code="over_limit", params={"setting": "BPTT_MAX_NORM_FLOATS", "limit": s.max_norm_floats, "got": B * T * T},
            )

    X = number_array(body["inputs"], "inputs", (2, 3), "T×n (steps×inputs) or B×T×n (batch×steps×inputs)",
                     check=input_limits)
    batched = X.ndim == 3
    if not batched:
        X = X[None]
    B, T, n = X.shape

    mask = _loss_steps(body.get("loss_steps", "all"), T)
    n_loss = int(mask.sum())

    # parameters: given, or initialised from a seed (null, as everywhere, is not given)
    if body.get("params") is not None and body.get("init") is not None:
        raise ApiError("init", "params or init, not both", "both", code="conflict")
    if body.get("params") is not None:
        named, m, p = _params(body["params"], notation, has_output, n, s, the_cell)
    elif body.get("init") is not None:
        named, m, p = _init(body["init"], notation, has_output, n, body, batched, s, the_cell)
    else:
        raise ApiError("params", "the parameters (or init: {\"seed\": 0, \"hidden\": m})", "nothing", code="missing")

    h0 = np.zeros((B, m))
    if body.get("h0") is not None:
        h0 = number_array(body["h0"], "h0", (1, 2), f"length {m} (hidden)" + (f" or {B}×{m}" if batched else ""))
        if h0.ndim == 1 and h0.shape == (m,):
            h0 = np.broadcast_to(h0, (B, m)).copy()
        elif not (batched and h0.shape == (B, m)):
            raise ApiError("h0", f"length {m} (hidden)" + (f" or {B}×{m} (batch×hidden)" if batched else ""), dims(h0.shape), code="wrong_shape")

    c0 = None
    if "c" in the_cell.states:
        if body.get("c0") is not None:
            c0 = number_array(body["c0"], "c0", (1, 2), f"length {m} (hidden)" + (f" or {B}×{m}" if batched else ""))
            if c0.ndim == 1 and c0.shape == (m,):
                c0 = np.broadcast_to(c0, (B, m)).copy()
            elif not (batched and c0.shape == (B, m)):
                raise ApiError("c0", f"length {m} (hidden)" + (f" or {B}×{m} (batch×hidden)" if batched else ""), dims(c0.shape), code="wrong_shape")
    elif body.get("c0") is not None:
        raise ApiError("c0", f"nothing with cell {cell} (c0 is the LSTM's initial cell state)", describe(body["c0"]), code="conflict")

    Y = G = None
    if has_output:
        if body.get("upstream") is not None:
            raise ApiError("upstream", f"nothing with loss {loss} (upstream gradients go with loss upstream)",
                           describe(body["upstream"]), code="conflict")
        Y = _targets(body.get("targets"), loss, batched, B, T, p, mask, n_loss)
    else:
        if body.get("targets") is not None:
            raise ApiError("targets", "nothing with loss upstream (give upstream: ∂L/∂h_t for every step)",
                           describe(body["targets"]), code="conflict")
        G = _rows(body.get("upstream"), "upstream", batched, B, T, m, mask, n_loss, "hidden")

    truncation = body.get("truncation")
    if truncation is not None:
        truncation = _int(truncation, "truncation", 1, s.max_t, "the window K")
    if method == "rtrl" and truncation is not None:
        raise ApiError("truncation", "nothing with method rtrl (RTRL carries the exact gradient forward; "
                       "truncation is a BPTT approximation)", describe(truncation), code="conflict")
    clip = _clip(body.get("clip"))
    gradient_check = body.get("gradient_check", False)
    if type(gradient_check) is not bool:
        raise ApiError("gradient_check", "true or false", describe(gradient_check), code="wrong_type")

    fields = _fields(body.get("fields"), gradient_check)
    select = _select(body.get("select"), T, B, batched)
    if select is not None:  # select asks for backward_parts, with the default fields too
        fields = (frozenset(RESPONSE_FIELDS) - OPT_IN_FIELDS if fields is None else fields) | {"backward_parts"}
    elif any(_wanted(fields, f) for f in ("backward_parts", "delta_h_row", "delta_row")):
        raise ApiError("select", ('the δ_{t,k} whose parts backward_parts gives' if _wanted(fields, "backward_parts")
                       else "the row t of delta and delta_h that delta_row and delta_h_row give")
                       + ': {"t": …, "k": …} (0-based, k ≤ t; "b": the sequence, with a batch)', "nothing", code="missing")
    detail, work, response_bytes = _budget(body.get("detail"), named, B, T, n, m, p, truncation,
                                           gradient_check, s, warnings, fields, clip is not None,
                                           the_cell, method, select, media)
    if detail == "norms" and fields is not None and "delta" in fields and "delta_norm" not in fields:
        fields |= {"delta_norm"}  # δ is null with norms: a response that asked for it gets its norms
        warnings.append("fields: delta is null with detail norms; delta_norm is sent in its place")
    if method == "rtrl":
        warnings.append("method: rtrl carries ∂s_t/∂θ forward and has no δ table, so delta, delta_norm, "
                        "dz, dh, dc, delta_h, delta_c, delta_row, delta_h_row, dh_next_pass, grads_per_step, grads_per_copy, backward_parts, vanish and "
                        "grads.inputs are null")
    if n_loss == 0:
        warnings.append("loss_steps: no step carries a loss, so L = 0 and every gradient is 0")
    elif loss == "softmax_ce" and p == 1:
        warnings.append("loss softmax_ce with p = 1 output: ŷ = softmax(o) = 1 whatever o is, so L = 0 "
                        "and every gradient is 0 (use p ≥ 2 classes, or loss mse)")
    problem = Problem(
        cell=cell, activation=activation, loss=loss, notation=notation, params=named, X=X, h0=h0,
        mask=mask, Y=Y, G=G, reduction=reduction, truncation=truncation, clip=clip, detail=detail,
        gradient_check=gradient_check, gradient_check_max_entries=s.gradient_check_max_entries,
        delta=_wanted(fields, "delta"), delta_norm=_wanted(fields, "delta_norm") or _wanted(fields, "vanish"),
        per_step=_wanted(fields, "grads_per_step"), diagnostics=_wanted(fields, "diagnostics"),
        c0=c0, method=method,
        eps_tables=any(_wanted(fields, f) for f in ("delta_h", "delta_c")),
        eps_norms=any(_wanted(fields, f) for f in ("delta_h_norm", "delta_c_norm")),
        eps_row=(_wanted(fields, "delta_h_row") or _wanted(fields, "delta_row")) and method != "rtrl",
        methods=_wanted(fields, "methods"),
        per_copy=_wanted(fields, "grads_per_copy"), select=select,
        dh_next_steps=_wanted(fields, "dh_next_pass") and method != "rtrl",
    )
    return Parsed(problem, batched, warnings, float(work), fields, response_bytes)


def _select(v: Any, T: int, B: int, batched: bool) -> tuple[int, int, int] | None:
    """select {"t", "k", "b"} → (t, k, b), 0-based like the response's arrays: the loss step t,
    the copy k ≤ t and (with a batch) the sequence b."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ApiError("select", 'an object {"t": …, "k": …} (0-based steps, k ≤ t)', describe(v), code="wrong_type")
    for key in v:
        if key not in SELECT_FIELDS:
            raise ApiError(f"select.{key}", "one of " + ", ".join(SELECT_FIELDS), "an unknown field",
                           message=f"select.{key}: unknown field; select takes " + ", ".join(SELECT_FIELDS),
                           code="unknown_field", params={"name": key, "fields": list(SELECT_FIELDS)})
    for key in ("t", "k"):
        if key not in v:
            raise ApiError(f"select.{key}", "an integer (0-based step)", "nothing (the field is required)", code="missing")
    t = _int(v["t"], "select.t", 0, T - 1, "the loss step t, 0-based (index t is step t + 1)")
    k = _int(v["k"], "select.k", 0, t, "the copy k, 0-based and at most select.t")
    b = _int(v.get("b", 0), "select.b", 0, B - 1, "the sequence b, 0-based") if batched or "b" in v else 0
    return t, k, b


def _fields(v: Any, gradient_check: bool) -> frozenset[str] | None:
    """The response fields asked for; the gradient check's report comes whenever it is asked for."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise ApiError("fields", "an array of response field names: " + ", ".join(RESPONSE_FIELDS), describe(v), code="wrong_type")
    for i, f in enumerate(v):
        if not isinstance(f, str) or f not in RESPONSE_FIELDS:
            raise ApiError(f"fields[{i}]", "one of " + ", ".join(RESPONSE_FIELDS), describe(f), code="not_one_of", params={"options": list(RESPONSE_FIELDS)})
    return frozenset(v) | ({"gradient_check"} if gradient_check else set())


def check_passes(named: dict, B: int, T: int, n: int, m: int, p: int | None, G: int, states: int,
                 max_entries: int) -> int:
    """Forward passes the gradient check makes (app/engine/gradcheck.py): the unperturbed one,
    then per array the chunks of its 2 × (checked entries) perturbed copies (copies of the whole
    batch for a parameter, of one sequence for h0, c0 and the inputs)."""
    per_copy = B * T * (4 * G * m + states * m + 4 * (p or 0))  # as engine.run passes floats_per_copy

    def chunks(entries: int, floats: int) -> int:
        chunk = max(1, gradcheck._CHUNK_FLOATS // max(1, 2 * floats))
        return -(-entries // chunk)

    shared = sum(chunks(min(a.size, max_entries), per_copy) for a in named.values())
    own = states * chunks(min(B * m, max_entries), per_copy // B) + chunks(min(B * T * n, max_entries), per_copy // B)
    return 1 + shared + own


#: units of work of one step of one pass of the gradient check beyond its numbers (the step's
#: numpy calls on the stacked copies): at B = 1, T = 1024, m = 1 the check ran 3.4–4.6 ns a unit
#: without it (vanilla, LSTM, GRU), 0.5–0.75 ns at m = 32 (measured in process, load about 15);
#: with it 0.3–0.5 ns, 0.24 at m = 32 in the same run (load 10)
CHECK_STEP = 75_000

#: multiply-adds an elementwise pass over one number costs in time, for the work estimate
#: (measured: numpy's passes over small arrays run at a few ns a number, BLAS products far faster)
ELEMENTWISE = 100
#: what one step of the forward and backward loops costs whatever the sizes (their numpy calls,
#: vectorised over the batch), in the estimate's units (10⁷ ≈ a millisecond of the loop), for a
#: vanilla step; a gated cell's step makes about (1 + G)/2 times as many calls. Without it an
#: LSTM of m=1 over T=450 (5 KB of body) was priced at 9e6, light, and held the event loop for
#: 24 ms (35–200 ms under load; measured 2026-12-03)
STEP_WORK = 5e4


def _budget(detail: Any, named: dict, B: int, T: int, n: int, m: int, p: int | None,
            truncation: int | None, gradient_check: bool, s: Settings, warnings: list[str],
            fields: frozenset[str] | None, clip: bool = False, cell: Any = None,
            method: str = "bptt", select: tuple[int, int, int] | None = None,
            media: str = "json") -> tuple[str, float, int]:
    """The detail to answer with (full while the δ table and per-step gradients asked for fit
    BPTT_MAX_FULL_FLOATS, else norms, said in warnings), the estimated work in multiply-adds,
    refused above BPTT_MAX_WORK, and the response's size in bytes (an upper bound), refused
    above BPTT_MAX_RESPONSE_MB."""
    if detail is not None and detail not in DETAILS:
        raise ApiError("detail", "full or norms", describe(detail), code="not_one_of", params={"options": list(DETAILS)})
    n_params = sum(a.size for a in named.values())
    G = 1 if cell is None else cell.G  # a gated cell's δ has G·m entries and its step costs G times
    rtrl_method = method == "rtrl"  # no δ table, no per-step gradients
    per_step = _wanted(fields, "grads_per_step") and not rtrl_method
    table = (_wanted(fields, "delta") or per_step) and not rtrl_method
    eps_tables = (_wanted(fields, "delta_h") + _wanted(fields, "delta_c")) \
        * (not rtrl_method)
    full_floats = (table * G + eps_tables) * B * T * (T + 1) // 2 * m + per_step * T * n_params
    if detail in (None, "full") and full_floats > s.max_full_floats:
        # said whether full was asked for or the default: never a silent change of detail
        what = " and ".join(w for w, asked in (("the full δ table", table), ("the per-step gradients", per_step)) if asked)
        warnings.append(
            f"detail: {what} would hold {full_floats} numbers, "
            f"over the budget of {s.max_full_floats} (BPTT_MAX_FULL_FLOATS); answered with norms"
        )
        detail = "norms"
    detail = detail or "full"
    K = T if truncation is None else min(truncation, T)
    # Multiply-adds, and the elementwise passes (activation, f', ⊙, sums, norms) counted as
    # ELEMENTWISE multiply-adds per number: for small m they, not the products, are the time.
    # One sequence's forward pass and loss (softmax: exp and log per output):
    forward = T * (G * m * (n + m) + m * (p or 0) + ELEMENTWISE * (G * m + (p or 0)))
    if rtrl_method:
        held = rtrl.memory_floats(cell, B, n, m)
        if held > s.max_norm_floats:
            raise ApiError("method", f"rtrl with at most {s.max_norm_floats} numbers in its sensitivities "
                           "B·S·(|θ| + S) (limit BPTT_MAX_NORM_FLOATS)", f"{held} for B={B}, n={n}, m={m}", code="over_limit",
                           params={"setting": "BPTT_MAX_NORM_FLOATS", "limit": s.max_norm_floats, "got": held})
        work = B * forward + rtrl.work(cell, B, T, n, m)
    else:
        work = B * forward + B * T * K * G * m * (m + ELEMENTWISE // 10)  # + the δ recursion
    if _wanted(fields, "methods"):  # BPTT beside RTRL: the dh_next pass and the sensitivities
        compare_rtrl = rtrl.memory_floats(cell, B, n, m)
        if compare_rtrl > s.max_norm_floats:
            raise ApiError("fields", f"methods with at most {s.max_norm_floats} numbers in RTRL's sensitivities "
                           "B·S·(|θ| + S) (limit BPTT_MAX_NORM_FLOATS)", f"{compare_rtrl} for B={B}, n={n}, m={m}",
                           code="over_limit", params={"setting": "BPTT_MAX_NORM_FLOATS", "limit": s.max_norm_floats,
                                                      "got": compare_rtrl})
        work += B * forward + methods.bptt_work(cell, B, T, n, m) + rtrl.work(cell, B, T, n, m)
    work += T * STEP_WORK * (1 + G) / 2  # the loops' numpy calls, whatever the sizes
    if _wanted(fields, "dh_next_pass") and not rtrl_method:
        work += B * T * G * m * (m + ELEMENTWISE // 10)  # one more pass, one row per step
    if _wanted(fields, "diagnostics"):
        S = m * (1 if cell is None else len(cell.states))  # the whole state's Jacobian: S × S
        work += 20 * B * T * S**3
    if detail == "full" and per_step:
        work += B * T * T * G * m * (n + m)
    S = m * (1 if cell is None else len(cell.states))
    if _wanted(fields, "grads_per_copy") and not rtrl_method:
        work += B * T * G * m * (n + m + ELEMENTWISE)
    if select is not None and not rtrl_method:
        steps = select[0] - select[1] + 1  # the row's recursion t … k, and the steps' Jacobians
        work += steps * (G * m * (m + ELEMENTWISE) + 20 * S**3) + T * G * m * (n + m)
    if gradient_check:
        # two perturbed copies per entry checked: of the whole batch for a parameter, of one
        # sequence for h0 and the inputs (only that sequence's loss moves)
        shared = sum(min(a.size, s.gradient_check_max_entries) for a in named.values())
        states = 1 if cell is None else len(cell.states)
        own = states * min(B * m, s.gradient_check_max_entries) + min(B * T * n, s.gradient_check_max_entries)
        work += 2 * (shared * B + own) * forward
        # and each vectorised pass over a chunk of copies costs its T steps' numpy calls, whatever
        # the sizes: at small m that is the time (B=1, T=1024, m=1: ~10× the numbers' work)
        # (a gated cell's step makes about (1 + G)/2 times as many calls: LSTM 2.5, GRU 2)
        work += check_passes(named, B, T, n, m, p, G, states, s.gradient_check_max_entries) * T * CHECK_STEP \
            * (1 + G) / 2
    if work > s.max_work:
        raise ApiError(
            "body", f"at most {s.max_work:.3g} estimated operations per request (limit BPTT_MAX_WORK)",
            f"{work:.3g} for B={B}, T={T}, n={n}, m={m}, p={p or 0}"
            + (", gradient_check" if gradient_check else "") + f", detail {detail}", code="over_limit", params={"setting": "BPTT_MAX_WORK", "limit": s.max_work, "got": work},
        )
    npz = media == "npz"  # the archive: 8 bytes a number, δ dense
    sizes = (size.npz_fields if npz else size.fields)(
        B, T, n, m, p, [a.shape for a in named.values()], detail=detail, clip=clip,
        G=G, states=1 if cell is None else len(cell.states), gates=0 if cell is None else len(cell.gates),
        parts=0 if cell is None else len(cell.parts))
    sent = fields
    if detail == "norms" and fields is not None and "delta" in fields:
        sent = fields | {"delta_norm"}  # (parse adds it: δ is null with norms)
    response_bytes = (size.npz_total if npz else size.total)(sizes, lambda f: _wanted(sent, f), T)
    if response_bytes > s.max_response_mb * 1e6:
        largest = sorted(((v, k) for k, v in sizes.items() if _wanted(sent, k) and v > 1e5), reverse=True)
        parts = ", ".join(f"{k} {v / 1e6:.3g} MB" for v, k in largest[:4])
        raise ApiError(
            "fields", f"a response of at most {s.max_response_mb:g} MB (limit BPTT_MAX_RESPONSE_MB)",
            f"an estimated {response_bytes / 1e6:.4g} MB{' of npz' if npz else ''} for B={B}, T={T}, n={n}, m={m}, p={p or 0}, "
            f"detail {detail} ({parts})",
            message=f"the response would be up to {response_bytes / 1e6:.4g} MB, over the limit of "
            f"{s.max_response_mb:g} MB (BPTT_MAX_RESPONSE_MB); largest fields: {parts}. Ask for less: "
            '"fields" with only what you read (e.g. ["delta_norm", "grads"]), "detail": "norms" '
            "(no δ vectors, no per-step gradients), or smaller B or T",
            code="over_limit", params={"setting": "BPTT_MAX_RESPONSE_MB", "limit": s.max_response_mb,
                                       "got": round(response_bytes / 1e6, 3)},
        )
    return detail, work, response_bytes


def _loss_steps(v: Any, T: int) -> np.ndarray:
    if v == "all":
        return np.ones(T, bool)
    if v == "last":
        mask = np.zeros(T, bool)
        mask[-1] = True
        return mask
    if not isinstance(v, list) or len(v) != T or any(type(x) is not bool for x in v):
        got = describe(v)
        if isinstance(v, list):
            bad = next((i for i, x in enumerate(v) if type(x) is not bool), None)
            got = f"{len(v)} entries" if len(v) != T else f"{describe(v[bad])} at [{bad}]"
        raise ApiError("loss_steps", f'"all", "last" or T = {T} booleans', got, code="wrong_shape")
    return np.array(v, bool)


def _params(v: Any, notation: str, has_output: bool, n: int, s: Settings, cell: Any = None):
    if not isinstance(v, dict):
        raise ApiError("params", "an object of named arrays", describe(v), code="wrong_type")
    hidden = cell.hidden if cell is not None else CANONICAL[:3]
    G = 1 if cell is None else cell.G
    expected = param_names(notation, has_output, hidden)
    shown = [name for name, _ in expected]
    canon_of = dict(expected)
    for key in v:
        if key not in canon_of:
            hint = _name_hint(key, notation, has_output)
            raise ApiError(
                f"params.{key}", f"one of {', '.join(shown)} (notation {notation})", f"an unknown parameter{hint}",
                message=f"params.{key}: unknown parameter{hint}; notation {notation} expects " + ", ".join(shown), code="unknown_field", params={"name": key, "fields": shown},
            )
    for name in shown:
        if name not in v:
            raise ApiError(f"params.{name}", f"{SHAPE_WORDS[canon_of[name]]} array", "nothing (missing)", code="missing")
    by_canon = {c: name for name, c in expected}
    W_hh_name = by_canon["W_hh"]
    rows = "m" if G == 1 else f"{G}m"
    W_hh = number_array(v[W_hh_name], f"params.{W_hh_name}", (2,), f"{rows}×m (" + ("hidden×hidden)" if G == 1 else f"{G} gates·hidden×hidden)"))
    m = W_hh.shape[1]
    if W_hh.shape[0] != G * m:
        raise ApiError(f"params.{W_hh_name}", "a square m×m array (hidden×hidden)" if G == 1 else
                       f"a {G}m×m array ({G} gates·hidden×hidden, gates {', '.join(cell.gates)})", dims(W_hh.shape), code="wrong_shape",
                       params={"expected": "square" if G == 1 else f"{G}m×m", "got_shape": list(W_hh.shape)})
    _limit(m, s.max_m, f"params.{W_hh_name}", "hidden units m", "BPTT_MAX_M")
    p = None
    if has_output:
        W_hy_name = by_canon["W_hy"]
        W_hy = number_array(v[W_hy_name], f"params.{W_hy_name}", (2,), f"p×{m} (outputs×hidden)")
        p = W_hy.shape[0]
        _limit(p, s.max_p, f"params.{W_hy_name}", "outputs p", "BPTT_MAX_P")
    sizes = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,)}
    if cell is not None:
        sizes |= {sp.name: sp.shape(n, m) for sp in cell.specs(n, m)}
    named = {}
    for name, c in expected:
        shape = sizes[c]
        words = SHAPE_WORDS[c]
        exp = f"{dims(shape)} ({words})" if len(shape) == 2 else f"length {shape[0]} ({words})"
        a = number_array(v[name], f"params.{name}", (1, 2), exp)
        if len(shape) == 1 and a.shape == (shape[0], 1):
            a = a[:, 0]  # column vectors, as the course notebook stores biases
        if a.shape != shape:
            raise ApiError(f"params.{name}", exp, dims(a.shape), code="wrong_shape",
                           params={"shape": list(shape), "got_shape": list(a.shape)})
        named[name] = a
    return named, m, p


def _name_hint(key: str, notation: str, has_output: bool) -> str:
    """Where a parameter name comes from, e.g. ' (W is W_hh in notation goodfellow and W_xh in
    notation nndl; set "notation" to match the names you use)'."""
    meanings: dict[str, list[str]] = {}
    for other, table in NOTATIONS.items():
        for c in CANONICAL:
            names = table[c] if isinstance(table[c], tuple) else (table[c],)
            if key in names:
                meanings.setdefault(c, []).append(other)
    if not meanings:
        return ""
    if not has_output and set(meanings) <= {"W_hy", "b_y"}:
        return " (loss upstream has no output layer)"
    parts = [f"{c} in notation {' and '.join(where)}" for c, where in meanings.items()]
    hint = f" ({key} is " + "; ".join(parts)
    if len(meanings) == 1:
        c = next(iter(meanings))
        mine = NOTATIONS[notation][c]
        hint += f"; in notation {notation} it is {' and '.join(mine) if isinstance(mine, tuple) else mine}"
    return hint + '; set "notation" to match the names you use)'


def _init(v: Any, notation: str, has_output: bool, n: int, body: dict, batched: bool, s: Settings,
          cell: Any = None):
    if not isinstance(v, dict):
        raise ApiError("init", 'an object {"seed", "hidden", "outputs", "scale", "forget_bias"}', describe(v), code="wrong_type")
    for key in v:
        if key not in INIT_FIELDS:
            raise ApiError(f"init.{key}", "one of " + ", ".join(INIT_FIELDS), "an unknown field",
                           message=f"init.{key}: unknown field; init takes " + ", ".join(INIT_FIELDS), code="unknown_field", params={"name": key, "fields": list(INIT_FIELDS)})
    seed = _int(v.get("seed", 0), "init.seed", 0, 2**63 - 1, "the seed")
    if "hidden" not in v:
        raise ApiError("init.hidden", "the number of hidden units m", "nothing (missing)", code="missing")
    m = _int(v["hidden"], "init.hidden", 1, None, "hidden units m")
    _limit(m, s.max_m, "init.hidden", "hidden units m", "BPTT_MAX_M")
    scale = None if v.get("scale") is None else _positive(v["scale"], "init.scale", "the scale s of U(−s, s)", hi=1e300)
    p = None
    if has_output:
        if v.get("outputs") is not None:
            p = _int(v["outputs"], "init.outputs", 1, None, "outputs p")
        else:
            p = _target_width(body.get("targets"), batched)
        _limit(p, s.max_p, "init.outputs", "outputs p", "BPTT_MAX_P")
    elif v.get("outputs") is not None:
        raise ApiError("init.outputs", "nothing with loss upstream (no output layer)", describe(v["outputs"]), code="conflict")
    forget_bias = None
    if v.get("forget_bias") is not None:
        if not has_forget_gate(cell):
            raise ApiError("init.forget_bias", "nothing with cell " + (getattr(cell, "name", None) or "vanilla")
                           + " (only the LSTM has a forget gate)", describe(v["forget_bias"]), code="conflict")
        fb = v["forget_bias"]
        if isinstance(fb, bool) or not isinstance(fb, (int, float)) or not math.isfinite(fb) or abs(fb) > 1e3:
            raise ApiError("init.forget_bias", "the forget gate's bias b: a finite number, |b| ≤ 1000 (1 to 2 is usual)",
                           describe(fb), code="not_finite" if isinstance(fb, NonFinite)
                           else "out_of_range" if type(fb) in (int, float) else "wrong_type", params={"min": -1000, "max": 1000})
        forget_bias = float(fb)
    return init_params(notation, seed, n, m, p, scale, cell, forget_bias), m, p


def _target_width(t: Any, batched: bool) -> int:
    """p read off target rows (T×p, or B×T×p for a batch) when init does not say it; class
    indices (T, or B×T) do not tell it."""
    depth, row = 0, t
    while isinstance(row, list) and row:
        depth, last, row = depth + 1, row, row[0]
    if depth == (3 if batched else 2):
        return len(last)
    raise ApiError(
        "init.outputs", "the number of outputs p (it cannot be read off class-index targets)", "nothing", code="missing",
    )


def _rows(v: Any, field: str, batched: bool, B: int, T: int, width: int, mask: np.ndarray,
          n_loss: int, words: str) -> np.ndarray:
    """Per-step rows for every step (T) or only for the loss steps (|S|) → (B, T, width)."""
    lead = f"{B}×" if batched else ""
    counts = f"{T}" if n_loss == T else f"{T} or {n_loss}"
    exp = f"{lead}({counts})×{width} ({'batch×' if batched else ''}steps×{words})"
    if v is None:
        raise ApiError(field, exp, "nothing (the field is required)", code="missing")
    a = number_array(v, field, (3,) if batched else (2,), exp)
    if not batched:
        a = a[None]
    if a.shape[0] != B or a.shape[2] != width or a.shape[1] not in (T, n_loss):
        raise ApiError(field, exp, dims(a.shape if batched else a.shape[1:]), code="wrong_shape")
    if a.shape[1] == T:
        return a
    full = np.zeros((B, T, width))
    full[:, mask] = a
    return full


def _targets(v: Any, loss: str, batched: bool, B: int, T: int, p: int, mask: np.ndarray, n_loss: int) -> np.ndarray:
    """Targets → rows Y (B, T, p): class indices become one-hot rows; probability rows are checked."""
    if v is None:
        raise ApiError("targets", f"targets for loss {loss}", "nothing (the field is required)", code="missing")
    if loss == "softmax_ce" and isinstance(v, list):
        probe = v[0] if (batched and v and isinstance(v[0], list)) else v
        if isinstance(probe, list) and probe and not isinstance(probe[0], list):
            return _class_indices(v, batched, B, T, p, mask, n_loss)
    Y = _rows(v, "targets", batched, B, T, p, mask, n_loss, "outputs")
    if loss == "softmax_ce":
        rows = Y[:, mask]
        sums = rows.sum(axis=-1)
        bad = np.argwhere((rows < 0).any(axis=-1) | (np.abs(sums - 1) > 1e-6))
        if bad.size:
            b, j = bad[0]
            t = int(np.flatnonzero(mask)[j])
            where = f"[{b}][{t}]" if batched else f"[{t}]"
            raise ApiError(
                f"targets{where}", "a probability row (entries ≥ 0 that sum to 1), a one-hot row or a class index",
                f"a row summing to {sums[b, j]:.6g}" + (" with negative entries" if (rows[b, j] < 0).any() else ""), code="out_of_range",
            )
    return Y


def _class_indices(v: list, batched: bool, B: int, T: int, p: int, mask: np.ndarray, n_loss: int) -> np.ndarray:
    counts = f"{T}" if n_loss == T else f"{T} or {n_loss}"
    exp = f"{B}×{counts} class indices" if batched else f"{counts} class indices"
    a = number_array(v, "targets", (2,) if batched else (1,), exp)
    if not batched:
        a = a[None]
    if a.shape[0] != B or a.shape[1] not in (T, n_loss):
        raise ApiError("targets", exp, dims(a.shape if batched else a.shape[1:]), code="wrong_shape")
    bad = np.argwhere((a != np.floor(a)) | (a < 0) | (a >= p))
    if bad.size:
        b, j = bad[0]
        where = f"[{b}][{j}]" if batched else f"[{j}]"
        raise ApiError(f"targets{where}", f"a class index in 0…{p - 1} (p = {p} outputs)", describe(v[b][j] if batched else v[j]), code="out_of_range", params={"min": 0, "max": p - 1})
    idx = a.astype(np.int64)
    Y = np.zeros((B, T, p))
    steps = np.arange(T) if a.shape[1] == T else np.flatnonzero(mask)
    Y[np.arange(B)[:, None], steps[None, :], idx] = 1.0
    return Y


def _clip(v: Any) -> tuple[str, float] | None:
    if v is None:
        return None
    exp = '{"max_norm": c} or {"max_value": c} with c > 0, or null'
    if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in ("max_norm", "max_value"):
        raise ApiError("clip", exp, describe(v) if not isinstance(v, dict) else "keys " + ", ".join(v) if v else "an empty object", code="wrong_type")
    key, c = next(iter(v.items()))
    return ("norm" if key == "max_norm" else "value", _positive(c, f"clip.{key}", "the threshold c"))
