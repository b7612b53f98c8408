"""Routes of the REST API: read the body (capped), parse, run the engine, wrap."""

from __future__ import annotations

import asyncio
import functools
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from ..engine import run
from ..engine.cells import describe as describe_cells
from ..engine.notation import GATED_NAMES, NOTATIONS
from ..settings import Settings
from . import npz, respond, stream
from .errors import ApiError
from .parse import Parsed, decode, parse
from .schemas import BPTTRequest, BPTTResponse, ErrorResponse, PresetSummary

router = APIRouter(prefix="/api/v1")

#: requests estimated below this many operations (about a millisecond of work) run on the
#: event loop: the thread hop would cost a good part of the work (measured 0.1–0.2 ms on the
#: T=64, m=32 δ table at 4e6), and a worker serves one core anyway; larger ones go to a process
#: of the worker's own (app/api/heavy.py), so the loop keeps answering.
INLINE_WORK = 1e7
#: bodies above this are parsed in a heavy request's process (app/api/heavy.py): parsing runs at
#: up to 80 ns a byte (class indices and nested rows: 12.5 ms for a 164 KB body, measured on
#: 2026-12-03, quiet), and orjson.loads holds the GIL for the whole body (8 MB of numbers:
#: 54–144 ms), which no thread can split. 96 KB is at most ~8 ms on the loop, and takes a
#: program's T=64, n=16, m=32 request (68 KB) inline: through the process its round trip
#: took 5.8 ms against 4.2 inline (the pipe and thread hops)
INLINE_BODY_BYTES = 96 * 1024
#: the same for the response: orjson writes about 1 MB in 2 ms, all that time holding the GIL,
#: so at most ~4 ms on the loop (the fields δ + grads of T=64, m=32: 1.55 MB)
INLINE_RESPONSE_BYTES = 2 * 1024 * 1024
#: responses estimated above this are written in pieces and streamed (``stream``); below it in
#: one orjson call in the heavy request's process (a few ms) and sent with their length
STREAM_RESPONSE_BYTES = 2 * 1024 * 1024
#: the archive (Accept: application/x-npz) is written about this many times faster a byte than
#: JSON (copies and a CRC, no digits; measured 3.3×, 2.6–4.5× over 7 alternating rounds, on the
#: 1.08 MB archive of T=64, m=32, fields delta and grads, 1.3 ms against 6.3 ms for its 1.55 MB
#: of JSON at a load of 12 on 2 cores), so it stays inline up to as many times the bytes
NPZ_SPEEDUP = 3

_ERRORS = {
    400: {"model": ErrorResponse, "description": "Not JSON"},
    408: {"model": ErrorResponse, "description": "Body not all sent within BPTT_BODY_TIMEOUT seconds"},
    413: {"model": ErrorResponse, "description": "Body larger than BPTT_MAX_BODY_BYTES"},
    415: {"model": ErrorResponse, "description": "Content-Type not application/json, or a content coding (gzip, …)"},
    422: {"model": ErrorResponse, "description": "A field is invalid or over a limit; the error names it"},
    503: {"model": ErrorResponse, "description": "BPTT_MAX_CONCURRENT large requests already running (Retry-After)"},
}
NPZ_DESCRIPTION = (
    "**As NumPy arrays.** With `Accept: application/x-npz` the same fields come as an uncompressed "
    "`.npz` archive: each array and number is a member named by its JSON path (`delta`, `grads/W_hh`, "
    "`forward/h`, `gradient_check/arrays/W_hh/max_rel_error`) with the JSON field's shape, float64, "
    "NaN or ±inf where the JSON has null (overflow). `delta` (and `delta_h`, `delta_c`) is dense, "
    "T×T×m (B×T×T×m with a batch; G·m wide for gated cells) with zeros where k > t, and every T×T "
    "array holds 0 where k > t. The strings, booleans and nulls (`names`, `shapes`, `warnings`, "
    "`nonfinite`, `loss_steps`, `clip.method`, …) are the JSON in the 0-d unicode member `__meta__`. "
    "No pickles: `np.load(…, allow_pickle=False)` reads it. Errors stay JSON.\n\n"
    "```python\n"
    "r = httpx.post(url, json=body, headers={\"Accept\": \"application/x-npz\"})\n"
    "z = np.load(io.BytesIO(r.content), allow_pickle=False)\n"
    "delta, dW = z[\"delta\"], z[\"grads/W_hh\"]; meta = json.loads(z[\"__meta__\"].item())\n"
    "```\n"
    "An Accept that allows neither application/json nor application/x-npz is answered 406 "
    "(code not_acceptable); none, `*/*` or `application/json` get JSON."
)
_NOT_ACCEPTABLE = {406: {"model": ErrorResponse, "description": "Accept names neither application/json nor application/x-npz"}}


JSON_TYPE = "application/json"
#: what POST /api/v1/bptt answers with: media type → the format's name (the first is the default)
MEDIA = {JSON_TYPE: "json", npz.MEDIA_TYPE: "npz"}


def negotiate(accept: str | None) -> str:
    """The response's format from the Accept header (RFC 9110: the highest q; on a tie the more
    specific range, then JSON): "json" without one (or with one naming no media range), and
    for */*, application/*, application/json; "npz" for application/x-npz; 406 when Accept
    names media types and neither of these is acceptable."""
    if accept is None or not accept.strip():
        return "json"
    ranges = parse_accept_header(accept, MIMEAccept)
    if not any("/" in value for value, _ in ranges):  # nothing parsable (e.g. "foo", ",,,;;;"): disregarded (RFC 9110 §12.5.1)
        return "json"
    best = ranges.best_match(list(MEDIA))
    if best is None:
        raise ApiError("accept", " or ".join(MEDIA) + " (or */*)", repr(accept)[:80], status=406,
                       code="not_acceptable", params={"options": list(MEDIA)})
    return MEDIA[best]


def check_content_type(value: str | None) -> None:
    """POST bodies are application/json (parameters such as charset allowed): a form, text/plain
    or multipart body is refused, so a cross-site page cannot post one without a CORS
    preflight (browsers send those three without asking)."""
    if value is None:
        raise ApiError("content-type", JSON_TYPE, "nothing (no Content-Type header)", status=415, code="wrong_content_type")
    if value.partition(";")[0].strip().lower() != JSON_TYPE:
        raise ApiError("content-type", JSON_TYPE, repr(value), status=415, code="wrong_content_type")


async def read_body(request: Request, cap: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed cap (declared or read), with
    408 when it has not all come within timeout seconds, and with 415 when it comes compressed
    (it would be read as JSON and refused as such, the coding unnamed)."""
    def too_large(got: str) -> ApiError:
        return ApiError("body", f"at most {cap} bytes (limit BPTT_MAX_BODY_BYTES)", got, status=413,
                        code="body_too_large", params={"setting": "BPTT_MAX_BODY_BYTES", "limit": cap})

    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding != "identity":
        raise ApiError("content-encoding", "none (identity): the JSON body as it is", repr(coding)[:60], status=415,
                       code="content_encoding")
    check_content_type(request.headers.get("content-type"))

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise too_large(f"{declared} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise too_large(f"more than {cap} bytes")
                chunks.append(chunk)
    except ClientDisconnect:  # nobody is left to answer; a 4xx, not a defect in the log
        raise ApiError("body", "the whole body", f"{size} bytes, then the client went away", code="body_incomplete") from None
    except TimeoutError:
        of = f" of the {declared} declared" if declared else ""
        raise ApiError(
            "body", f"the whole body within {timeout:g} s (limit BPTT_BODY_TIMEOUT)",
            f"{size} byte{'' if size == 1 else 's'}{of}",
            status=408, headers={"connection": "close"},
            code="body_timeout", params={"setting": "BPTT_BODY_TIMEOUT", "limit": timeout},
        ) from None
    return b"".join(chunks)


def _parse(body: bytes, settings: Settings, media: str = "json") -> tuple[Parsed, float]:
    t0 = time.perf_counter()
    parsed = parse(decode(body), settings, media)
    return parsed, time.perf_counter() - t0


def _run(parsed: Parsed, media: str = "json") -> tuple[bytes, float, float, str]:
    t0 = time.perf_counter()
    result = run(parsed.problem)
    t1 = time.perf_counter()
    if media == "npz":
        out = npz.dumps(respond.build(result, parsed, dense=True))
    else:
        out = respond.dumps(respond.build(result, parsed))
    return out, t1 - t0, time.perf_counter() - t1, respond.timing(result)


def gate(app) -> stream.Gate:
    """This worker's gate on heavy requests (BPTT_MAX_CONCURRENT)."""
    g = getattr(app.state, "heavy_gate", None)
    if g is None:
        s = app.state.settings
        g = app.state.heavy_gate = stream.Gate(s.max_concurrent, s.queue_timeout, s.heavy_nice)
    return g


#: the JSON routes computed as a plan and its answer (route → module, plan, answer): ``plan(body,
#: settings)`` checks every limit and estimates the work from the sizes, before any of it, and
#: gives (a picklable plan, its work); ``answer(plan)`` computes and writes the answer's bytes.
#: ``planned_response`` runs them, inline or in a heavy slot's process (app/api/heavy.py).
PLANNED = {
    "compare_cells": ("app.api.labs", "compare_cells_plan", "compare_cells_answer"),
    "radius_sweep": ("app.api.labs", "radius_sweep_plan", "radius_sweep_answer"),
    "check_answer": ("app.api.quiz", "check_plan", "check_answer_bytes"),
    "compare_gradients": ("app.api.train", "_compare_plan", "_compare"),
    "task": ("app.api.train", "task_plan", "task_answer"),
}


def planned(route: str):
    """The route's (plan, answer) functions (imported here: those modules import this one)."""
    import importlib

    module, plan, answer = PLANNED[route]
    m = importlib.import_module(module)
    return getattr(m, plan), getattr(m, answer)


async def planned_response(request: Request, route: str, inline=None) -> Response:
    """A ``PLANNED`` route: the body read and planned (a body over INLINE_BODY_BYTES in a heavy
    slot's process, where orjson.loads does not hold this worker's GIL), the estimated work
    charged to the client's budget (BPTT_RATE_LIMIT_WORK_PER_MINUTE) before any of it, then the
    answer: in a thread up to INLINE_WORK (and while ``inline(plan)`` allows), above it in one
    of the worker's heavy slots (BPTT_MAX_CONCURRENT, 503 with Retry-After when none comes
    free) and computed and written in the slot's process, as /bptt's large requests are."""
    from starlette.concurrency import run_in_threadpool

    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    plan_of, answer_of = planned(route)
    heavy = gate(request.app)
    worker = None  # lent with a slot of the gate, given back once the answer is in
    try:
        from .train import INLINE_TASK_NUMBERS, task_numbers

        doc = decode(body) if len(body) <= INLINE_BODY_BYTES else None
        default_n = 1 if route in ("compare_cells", "radius_sweep") else None  # (the labs: one sequence)
        has_task = route != "task" and isinstance(doc, dict) and isinstance(doc.get("task"), dict)
        if doc is not None and (not has_task or await run_in_threadpool(task_numbers, doc, default_n) <= INLINE_TASK_NUMBERS):
            plan, work = await run_in_threadpool(plan_of, doc, settings)
        else:  # a large body, or a task that makes many numbers (made, listed, parsed by the plan)
            worker = await heavy.enter()
            plan, work = None, await worker.call("plan", route, body, settings)
        del body, doc
        if request.app.state.work_budget is not None:  # before the work: a refusal costs nothing
            request.app.state.work_budget.charge(request.scope, work)
        if worker is None and work <= INLINE_WORK and (inline is None or inline(plan)):
            out = await run_in_threadpool(answer_of, plan)
        else:
            if worker is None:
                worker = await heavy.enter()
            out = await worker.call("answer", route, plan)
    finally:
        if worker is not None:
            heavy.leave(worker)
    if len(out) <= stream.CHUNK_BYTES:
        return Response(out, media_type=JSON_TYPE)
    # sent with its length a chunk at a time, each send bounded by BPTT_SEND_TIMEOUT: a client
    # that does not read is dropped and the answer freed (compare-cells at T = 700: 28 MB; a
    # task up to BPTT_MAX_RESPONSE_MB), as /bptt's large answers are
    return stream.StreamedJSON(None, {}, settings.send_timeout, lambda: None, body=out)  # type: ignore[return-value]


@router.post(
    "/bptt",
    summary="Run BPTT on a small RNN",
    description=(
        "Forward pass, every error term δₜ,ₖ = ∂Lₜ/∂zₖ (k ≤ t), and the gradients of the shared "
        "weights as sums over the unrolled copies. Arrays are 0-based: index i is step t = i + 1. "
        "Overflow is not an error: overflowed numbers are null and listed in `nonfinite`. "
        "With reduction mean, δ, dz, dh and the gradients are derivatives of the weighted w_t·L_t (w_t = 1/(|S|·B)) while forward.loss_t is the unweighted L_t; a shared h0 (length m) with a batch gets per-sequence gradients grads.h0 (B×m).\n\n"
        + NPZ_DESCRIPTION
    ),
    response_model=None,
    responses={200: {"model": BPTTResponse, "description": "The computation: JSON, or with `Accept: application/x-npz` "
                     "a NumPy .npz archive of the same fields",
                     "content": {npz.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
               **_ERRORS, **_NOT_ACCEPTABLE},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/BPTTRequest"}}}}},
)
async def bptt(request: Request) -> Response:
    settings = request.app.state.settings
    media = negotiate(request.headers.get("accept"))  # before anything: a 406 costs nothing
    media_type = npz.MEDIA_TYPE if media == "npz" else JSON_TYPE
    vary = {"Vary": "Accept"}
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    heavy = gate(request.app)
    worker = None  # lent with a slot of the gate; given back when the response has gone (or failed)
    try:
        if len(body) <= INLINE_BODY_BYTES:
            parsed, tp = _parse(body, settings, media)
            work, size = parsed.work, parsed.response_bytes
        else:  # parsing a large body holds memory and the GIL: a heavy request from the start,
            # parsed in the slot's process (orjson.loads holds the GIL for the whole body)
            worker = await heavy.enter()
            parsed = None
            work, size, tp = await worker.call("parse", body, settings, media)
        del body
        if request.app.state.work_budget is not None:  # before the work: a refusal costs nothing
            request.app.state.work_budget.charge(request.scope, work)
        inline_bytes = INLINE_RESPONSE_BYTES * (NPZ_SPEEDUP if media == "npz" else 1)
        if parsed is not None and work <= INLINE_WORK and size <= inline_bytes:
            out, tc, ts, route_timing = _run(parsed, media)
            timing = f"parse;dur={tp * 1e3:.2f}, compute;dur={tc * 1e3:.2f}, serialize;dur={ts * 1e3:.2f}{route_timing}"
            return Response(out, media_type=media_type, headers={"Server-Timing": timing} | vary)
        if worker is None:
            worker = await heavy.enter()
        # computed and serialised in the slot's process: the GIL here stays with the event loop
        kind, *got = await worker.call("respond", parsed, STREAM_RESPONSE_BYTES, stream.PIECE_NUMBERS,
                                       stream.CHUNK_BYTES, media)
        del parsed
        done = functools.partial(heavy.leave, worker)
        if kind == "body":
            out, tc, ts, route_timing = got
            timing = f"parse;dur={tp * 1e3:.2f}, compute;dur={tc * 1e3:.2f}, serialize;dur={ts * 1e3:.2f}{route_timing}"
            response = stream.StreamedJSON(None, {"Server-Timing": timing} | vary, settings.send_timeout, done, body=out,
                                           media_type=media_type)
        else:
            # written while sent, in pieces: the whole serialisation is not known when the headers
            # go; what is: building the document and writing its first chunk
            tc, first, ts, route_timing = got
            timing = (f"parse;dur={tp * 1e3:.2f}, compute;dur={tc * 1e3:.2f}, "
                      f'serialize;dur={ts * 1e3:.2f};desc="first chunk (streamed)"{route_timing}')
            response = stream.StreamedJSON(None, {"Server-Timing": timing} | vary, settings.send_timeout, done,
                                           worker=worker, first=first, media_type=media_type)
        worker = None  # the response gives it back
        return response  # type: ignore[return-value]
    finally:
        if worker is not None:
            heavy.leave(worker)


@router.get("/presets", summary="List the presets", response_model=list[PresetSummary])
async def presets(request: Request) -> Response:
    return Response(request.app.state.presets_index, media_type="application/json")


@router.get(
    "/presets/{preset_id}", summary="One preset: a complete request body",
    responses={200: {"model": BPTTRequest}, 404: {"model": ErrorResponse}},
)
async def preset(preset_id: str, request: Request) -> Response:
    found = request.app.state.presets.get(preset_id)
    if found is None:
        known = ", ".join(request.app.state.presets)
        raise ApiError("preset_id", f"one of {known}", repr(preset_id)[:60], status=404, code="not_found",
                       params={"options": list(request.app.state.presets)})
    return Response(respond.dumps(found.request), media_type="application/json")


@router.get("/cells", summary="The cells: states, gates, activations, parameters (shapes, roles, names per notation)")
async def cells() -> dict:
    """From the engine's registry (app/engine/cells), the one list of cells."""
    return describe_cells()


@router.get("/notations", summary="The names of the parameters in every notation (every cell's)")
async def notations() -> dict:
    """notation → canonical name → shown name (PyTorch's vanilla b_h is two arrays), for the
    parameters of every cell: the vanilla and residual cells' W_xh, W_hh, b_h and the gated
    cells' W_ih, W_hh, b_ih, b_hh (W_hh has the same name in both), the output layer and h."""
    return {k: {c: list(v) if isinstance(v, tuple) else v for c, v in table.items()} | GATED_NAMES[k]
            for k, table in NOTATIONS.items()}
