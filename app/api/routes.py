"""Routes of the REST API: read the body (capped), parse, run the engine, wrap."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..engine import run
from ..engine.cells import describe as describe_cells
from ..engine.notation import NOTATIONS
from ..settings import Settings
from . import respond
from .errors import ApiError
from .parse import Parsed, decode, parse
from .schemas import BPTTRequest, BPTTResponse, ErrorResponse, PresetSummary

router = APIRouter(prefix="/api/v1")

#: requests estimated below this many operations (about a millisecond of work) run on the
#: event loop: the thread hop would cost a good part of the work (measured 0.1–0.2 ms on the
#: T=64, m=32 δ table at 4e6), and a worker serves one core anyway; larger ones go to the
#: thread pool (numpy drops the GIL), so the loop keeps answering.
INLINE_WORK = 1e7
INLINE_BODY_BYTES = 256 * 1024

_ERRORS = {
    400: {"model": ErrorResponse, "description": "Not JSON"},
    408: {"model": ErrorResponse, "description": "Body not all sent within BPTT_BODY_TIMEOUT seconds"},
    413: {"model": ErrorResponse, "description": "Body larger than BPTT_MAX_BODY_BYTES"},
    415: {"model": ErrorResponse, "description": "Body sent with a content coding (gzip, …): send it as it is"},
    422: {"model": ErrorResponse, "description": "A field is invalid or over a limit; the error names it"},
}


async def read_body(request: Request, cap: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed cap (declared or read), with
    408 when it has not all come within timeout seconds, and with 415 when it comes compressed
    (it would be read as JSON and refused as such, the coding unnamed)."""
    def too_large(got: str) -> ApiError:
        return ApiError("body", f"at most {cap} bytes (limit BPTT_MAX_BODY_BYTES)", got, status=413)

    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding != "identity":
        raise ApiError("content-encoding", "none (identity): the JSON body as it is", repr(coding)[:60], status=415)

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
        raise ApiError("body", "the whole body", f"{size} bytes, then the client went away") from None
    except TimeoutError:
        of = f" of the {declared} declared" if declared else ""
        raise ApiError(
            "body", f"the whole body within {timeout:g} s (limit BPTT_BODY_TIMEOUT)",
            f"{size} byte{'' if size == 1 else 's'}{of}",
            status=408, headers={"connection": "close"},
        ) from None
    return b"".join(chunks)


def _parse(body: bytes, settings: Settings) -> tuple[Parsed, float]:
    t0 = time.perf_counter()
    parsed = parse(decode(body), settings)
    return parsed, time.perf_counter() - t0


def _run(parsed: Parsed) -> tuple[bytes, float, float]:
    t0 = time.perf_counter()
    result = run(parsed.problem)
    t1 = time.perf_counter()
    out = respond.dumps(respond.build(result, parsed))
    return out, t1 - t0, time.perf_counter() - t1


@router.post(
    "/bptt",
    summary="Run BPTT on a small RNN",
    description=(
        "Forward pass, every error term δₜ,ₖ = ∂Lₜ/∂zₖ (k ≤ t), and the gradients of the shared "
        "weights as sums over the unrolled copies. Arrays are 0-based: index i is step t = i + 1. "
        "Overflow is not an error: overflowed numbers are null and listed in `nonfinite`. "
        "With reduction mean, δ, dz, dh and the gradients are derivatives of the weighted w_t·L_t (w_t = 1/(|S|·B)) while forward.loss_t is the unweighted L_t; a shared h0 (length m) with a batch gets per-sequence gradients grads.h0 (B×m)."
    ),
    response_model=None,
    responses={200: {"model": BPTTResponse, "description": "The computation"}, **_ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/BPTTRequest"}}}}},
)
async def bptt(request: Request) -> Response:
    settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    if len(body) <= INLINE_BODY_BYTES:
        parsed, tp = _parse(body, settings)
    else:
        parsed, tp = await run_in_threadpool(_parse, body, settings)
    if parsed.work <= INLINE_WORK:
        out, tc, ts = _run(parsed)
    else:
        out, tc, ts = await run_in_threadpool(_run, parsed)
    timing = f"parse;dur={tp * 1e3:.2f}, compute;dur={tc * 1e3:.2f}, serialize;dur={ts * 1e3:.2f}"
    return Response(out, media_type="application/json", headers={"Server-Timing": timing})


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
        raise ApiError("preset_id", f"one of {known}", repr(preset_id)[:60], status=404)
    return Response(respond.dumps(found.request), media_type="application/json")


@router.get("/cells", summary="The cells: states, gates, activations, parameters (shapes, roles, names per notation)")
async def cells() -> dict:
    """From the engine's registry (app/engine/cells), the one list of cells."""
    return describe_cells()


@router.get("/notations", summary="The names of the parameters in every notation")
async def notations() -> dict:
    """notation → canonical name → shown name (PyTorch's b_h is two arrays)."""
    return {k: {c: list(v) if isinstance(v, tuple) else v for c, v in table.items()} for k, table in NOTATIONS.items()}
