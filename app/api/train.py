"""POST /api/v1/train (streamed NDJSON) and POST /api/v1/compare-gradients (issue 13).

The model fields are those of /api/v1/bptt and go through its parser (``parse.parse``): the same
names, limits and errors. The training set is ``inputs``/``targets`` (/bptt's shapes; T×n is one
sequence) or ``task`` (app/engine/train/tasks.py), made only after its sizes are checked. The run
is the engine's generator (app/engine/train/loop.py), advanced in slices of at most
``SLICE_SECONDS`` in the thread pool; between slices the stream checks that the client is still
there, so a client that leaves stops the work within one slice (Starlette also cancels the
response task on http.disconnect). Runs in flight per worker are capped (503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..engine import rtrl
from ..engine.cells import CELLS
from ..engine.notation import from_canonical, shown_names, to_canonical
from ..engine.train import loop as TL
from ..engine.train import optimizers as OPT
from ..engine.train import tasks as TK
from ..engine.train.errors import OptionError
from ..settings import Settings
from . import respond, size
from . import stream as _stream
from .errors import ApiError, error_body
from .parse import ELEMENTWISE, _int, _positive, decode, describe, number_array, parse
from .routes import _ERRORS, INLINE_BODY_BYTES, INLINE_WORK, gate, planned_response, read_body

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")

#: fields of /api/v1/train besides the model fields of /bptt it passes on
TRAIN_FIELDS = ("task", "optimizer", "updates", "batch_size", "seed", "report_every", "checkpoint_every",
                "start_update", "optimizer_state", "resumable")
#: /bptt fields a training request may carry (h0, c0, upstream, detail, fields, gradient_check
#: concern one backward pass, not a run)
MODEL_FIELDS = ("notation", "cell", "activation", "loss", "params", "init", "reduction", "clip",
                "truncation", "inputs", "targets", "loss_steps", "method")
#: /bptt's initial states: one backward pass's (compare-gradients), not a run's (h_0 = c_0 = 0)
STATE_FIELDS = ("h0", "c0")
COMPARE_FIELDS = ("notation", "cell", "activation", "loss", "params", "init", "reduction", "inputs",
                  "targets", "loss_steps", "task", "truncation", "seed", "draws") + STATE_FIELDS
#: a slice of the run in the thread pool lasts about this long (then the connection is checked)
SLICE_SECONDS = 0.05
#: task option → (limit attribute, setting) checked before the task is made
TASK_LIMITS = {"N": ("max_batch", "BPTT_MAX_BATCH"), "T": ("max_t", "BPTT_MAX_T"),
               "n": ("max_n", "BPTT_MAX_N"), "delay": ("max_t", "BPTT_MAX_T")}


def _refuse_unknown(body: dict, allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise ApiError(key, "one of the fields " + ", ".join(allowed), "an unknown field",
                           message=f"{key}: unknown field; the fields are " + ", ".join(allowed), code="unknown_field")


def _option_error(prefix: str, e: OptionError) -> ApiError:
    return ApiError(f"{prefix}.{e.field}", e.expected, describe(e.got), code="invalid_value")


def _task_limits(opts: dict, s: Settings) -> None:
    for k, (attr, setting) in TASK_LIMITS.items():  # sizes before any array is made
        if isinstance(opts.get(k), int) and not isinstance(opts[k], bool) and opts[k] > getattr(s, attr):
            raise ApiError(f"task.{k}", f"at most {getattr(s, attr)} (limit {setting})", str(opts[k]), code="over_limit",
                           params={"setting": setting, "limit": getattr(s, attr), "got": opts[k]})


#: a task making more numbers than this (N·T·(n + p)) is planned in a heavy slot's process, as a
#: body over INLINE_BODY_BYTES is: made whole, turned into lists for /bptt's parser and parsed,
#: 2M numbers held a worker thread 0.3–0.8 s (load 8) and 200–360 MB (the classroom's default
#: chars task: 0.1M)
INLINE_TASK_NUMBERS = 250_000


def task_numbers(body: Any, default_n: int | None = None) -> int:
    """The numbers N·T·(n + p) the body's task would make (0: no task, or one its plan refuses),
    from its options alone (``tasks.planned``). default_n: N when the task does not say (the
    labs: 1; else the task's default)."""
    v = body.get("task") if isinstance(body, dict) else None
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or v["name"] not in TK.DEFAULTS:
        return 0
    opts = {k: x for k, x in v.items() if k != "name"}
    N = opts.get("N", default_n or TK.DEFAULTS[v["name"]].get("N", 1))
    if type(N) is not int or N < 1 or any(type(opts.get(k)) is int and opts[k] > 1 << 16 for k in TASK_LIMITS):
        return 0
    try:
        _, T, n, p = TK.planned(v["name"], **opts | {"N": 1})
    except (OptionError, TypeError, ValueError):
        return 0
    return N * T * (n + p)


def _task(v: Any, s: Settings, norms: bool = True) -> TK.Task:
    """The task made, its sizes checked first, from its options alone (``tasks.planned``). With
    norms (a task to compute on, not only to send: /train, /compare-gradients, the labs): N·T²
    and N·T·(n + p) against BPTT_MAX_NORM_FLOATS before its N sequences are made: made whole and turned
    into lists for /bptt's parser, echo at N = 64, T = 1024, n = 512 took 7–23 s and 3.2 GB of
    a worker thread before that parser refused it on this limit."""
    if not isinstance(v, dict) or not isinstance(v.get("name"), str):
        raise ApiError("task", '{"name": one of ' + ", ".join(TK.TASKS) + ', "seed": …, and its options}', describe(v), code="wrong_type")
    opts = {k: x for k, x in v.items() if k != "name"}
    _task_limits(opts, s)
    try:
        # the task's sizes from its options alone (recall's T is delay + 1: delay 1024 had
        # answered T = 1025), before any array is made
        N, T, n, p = TK.planned(v["name"], **opts)
        if T > s.max_t:
            raise ApiError("task.delay" if v["name"] == "recall" else "task.T", f"a sequence of at most {s.max_t} steps "
                           "(limit BPTT_MAX_T)", f"T = {T}", code="over_limit",
                           params={"setting": "BPTT_MAX_T", "limit": s.max_t, "got": T})
        if norms:
            if p > s.max_p:  # (echo's p is its n: refused by the parser after 8 s and 939 MB at N = 64, T = 256)
                raise ApiError("task", f"a task with at most {s.max_p} outputs p (limit BPTT_MAX_P)", f"p = {p}",
                               code="over_limit", params={"setting": "BPTT_MAX_P", "limit": s.max_p, "got": p})
            if N * T * T > s.max_norm_floats:
                raise ApiError("task.N", f"at most {s.max_norm_floats} numbers N·T² in the ‖δ‖ tables (limit BPTT_MAX_NORM_FLOATS)",
                               f"N·T² = {N}·{T}² = {N * T * T}", code="over_limit",
                               params={"setting": "BPTT_MAX_NORM_FLOATS", "limit": s.max_norm_floats, "got": N * T * T})
            if N * T * (n + p) > s.max_norm_floats:  # (its inputs and targets, held and parsed)
                raise ApiError("task", f"a task of at most {s.max_norm_floats} numbers N·T·(n + p) (limit BPTT_MAX_NORM_FLOATS)",
                               f"N·T·(n + p) = {N}·{T}·({n} + {p})", code="over_limit",
                               params={"setting": "BPTT_MAX_NORM_FLOATS", "limit": s.max_norm_floats, "got": N * T * (n + p)})
        return TK.make(v["name"], **opts)
    except OptionError as e:
        raise _option_error("task", e) from None


def _truncation(v: Any) -> tuple[TL.Truncation, Any]:
    """(the engine's truncation, what /bptt's parser gets: the window K or None)."""
    expected = ('an integer K (window), or {"kind": "window" | "chunked", "K": K} or '
                '{"kind": "randomized", "p": π in (0, 1]}, or null')
    if v is None:
        return TL.Truncation(), None
    if isinstance(v, dict):
        kind = v.get("kind")
        if kind not in ("window", "chunked", "randomized") or set(v) - {"kind", "K", "p"}:
            raise ApiError("truncation", expected, describe(v), code="wrong_type")
        if kind == "randomized":
            if "K" in v:
                raise ApiError("truncation.K", "nothing with kind randomized (it takes p)", describe(v["K"]), code="conflict")
            return TL.Truncation("randomized", p=_positive(v.get("p"), "truncation.p", "the probability π", hi=1.0)), None
        if "p" in v:
            raise ApiError("truncation.p", f"nothing with kind {kind} (it takes K)", describe(v["p"]), code="conflict")
        K = _int(v.get("K"), "truncation.K", 1, None, "the steps K")
        return TL.Truncation(kind, K=K), (K if kind == "window" else None)
    K = _int(v, "truncation", 1, None, "the window K")
    return TL.Truncation("window", K=K), K


def _model(body: dict, s: Settings, allowed: tuple[str, ...]):
    """(parsed /bptt problem of the whole training set, canonical θ, Data, engine truncation)."""
    if not isinstance(body, dict):
        raise ApiError("body", "a JSON object", describe(body), code="wrong_type")
    _refuse_unknown(body, allowed)
    sub = {k: body[k] for k in MODEL_FIELDS + STATE_FIELDS if k in body and k in allowed}
    if body.get("task") is not None:
        for k in ("inputs", "targets", "loss_steps"):
            if body.get(k) is not None:
                raise ApiError(k, "nothing with task (the task makes inputs, targets and loss steps)", describe(body[k]), code="conflict")
        if body.get("loss") is not None:
            raise ApiError("loss", "nothing with task (each task has its loss)", describe(body["loss"]), code="conflict")
        task = _task(body["task"], s)
        sub |= {"inputs": task.inputs.tolist(), "targets": task.targets.tolist(), "loss": task.loss,
                "loss_steps": task.loss_steps}
    if sub.get("loss", "mse") == "upstream":
        raise ApiError("loss", "mse or softmax_ce (training needs targets)", "upstream", code="not_one_of")
    tr, K = _truncation(body.get("truncation"))
    sub["truncation"] = K
    # /bptt's work budget prices one response with its diagnostics; a run is priced by
    # BPTT_TRAIN_MAX_WORK below, so the parser checks every other limit only
    # (nor is that response what is sent: the stream is sized in build)
    parsed = parse(sub, s.model_copy(update={"max_work": math.inf, "max_response_mb": math.inf}))
    p = parsed.problem
    cell = CELLS[p.cell]
    theta = to_canonical(p.notation, p.params, True, cell.hidden)
    theta = {k: np.array(v, dtype=np.float64) for k, v in theta.items()}
    data = TL.Data(p.X, p.Y, p.mask, p.loss, p.reduction)
    if tr.kind == "window" and tr.K >= p.X.shape[1]:
        tr = TL.Truncation()
    return parsed, theta, data, tr


#: bytes a number takes in a line (as /bptt's size estimate counts them)
NUMBER_BYTES = size.NUMBER


def stream_bytes(made: int, report_every: int, checkpoint_every: int, T: int, n_params: int) -> int:
    """An upper estimate of a run's stream: a report line per report_every updates (loss, ‖g‖,
    the parameters' norms), a checkpoint line per checkpoint_every with the parameters and one
    sequence's T×T δ norms (its lower triangle), and the done line with the parameters and the
    optimizer's state (three times them, Adam's moments)."""
    reports = made // report_every + 1
    checkpoints = made // checkpoint_every + 1 if checkpoint_every else 0
    return (reports * 400 + checkpoints * (n_params + T * (T + 1) // 2) * NUMBER_BYTES
            + 4 * n_params * NUMBER_BYTES + 4096)


def _optimizer(v: Any) -> tuple[str, dict]:
    if v is None:
        v = {"name": "adam"}
    if not isinstance(v, dict) or not isinstance(v.get("name"), str) or v["name"] not in OPT.OPTIMIZERS:
        raise ApiError("optimizer.name" if isinstance(v, dict) else "optimizer", "one of " + ", ".join(OPT.OPTIMIZERS),
                       describe(v.get("name") if isinstance(v, dict) else v), code="not_one_of")
    opts = {k: (tuple(x) if k == "betas" and isinstance(x, list) else x) for k, x in v.items() if k != "name"}
    try:
        OPT.make(v["name"], **opts)
    except OptionError as e:
        raise _option_error("optimizer", e) from None
    return v["name"], opts


def build(body: Any, s: Settings) -> tuple[TL.TrainSpec, str, float]:
    """The request → (the run, its notation, its estimated work), every limit checked first."""
    parsed, theta, data, tr = _model(body, s, MODEL_FIELDS + TRAIN_FIELDS)
    p = parsed.problem
    N = p.X.shape[0]
    updates = _int(body.get("updates", 100), "updates", 1, None, "the number of updates")
    if updates > s.train_max_updates:
        raise ApiError("updates", f"at most {s.train_max_updates} updates (limit BPTT_TRAIN_MAX_UPDATES)", str(updates), code="over_limit",
                       params={"setting": "BPTT_TRAIN_MAX_UPDATES", "limit": s.train_max_updates, "got": updates})
    batch_size = body.get("batch_size")
    if batch_size is not None:
        batch_size = _int(batch_size, "batch_size", 1, N, f"sequences per update (the set has {N})")
    seed = _int(body.get("seed", 0), "seed", 0, 2**63 - 1, "the seed")
    report_every = _int(body.get("report_every", 1), "report_every", 1, None, "updates between reports")
    checkpoint_every = _int(body.get("checkpoint_every", 0), "checkpoint_every", 0, None,
                            "updates between checkpoints (0: none)")
    name, opts = _optimizer(body.get("optimizer"))
    start = _int(body.get("start_update", 1), "start_update", 1, updates,
                 "the number of the first update to make (a run continued; updates is the last one's)")
    resumable = body.get("resumable", False)
    if not isinstance(resumable, bool):
        raise ApiError("resumable", "true or false", describe(resumable), code="wrong_type")
    opt_state = _optimizer_state(body.get("optimizer_state"), theta)
    spec = TL.TrainSpec(p.cell, p.activation, theta, data, name, opts, updates, batch_size, seed, tr,
                        p.method, p.clip, report_every, checkpoint_every, start, opt_state, resumable)
    if spec.method == "rtrl" and tr.kind != "none":
        raise ApiError("truncation", "nothing with method rtrl (RTRL carries the exact gradient forward; "
                       "truncation is a BPTT approximation)", tr.kind, code="conflict")
    made = updates - start + 1
    work = TL.work_per_update(spec) * made
    if checkpoint_every:
        T = p.X.shape[1]
        work += (made // checkpoint_every + 2) * 200.0 * T * T * CELLS[p.cell].G * theta["W_hh"].shape[-1]
    if work > s.train_max_work:
        raise ApiError("updates", f"at most {s.train_max_work:g} estimated work for the run "
                       "(limit BPTT_TRAIN_MAX_WORK; fewer updates, a smaller batch or model)",
                       f"{work:.3g} ({made} updates × {work / made:.3g})", code="over_limit",
                       params={"setting": "BPTT_TRAIN_MAX_WORK", "limit": s.train_max_work, "got": work})
    mb = stream_bytes(made, report_every, checkpoint_every, p.X.shape[1], sum(a.size for a in theta.values())) / 1e6
    if mb > s.max_response_mb:  # (T=1024 with a checkpoint every update: 3 MB a line, 700 MB for 230 updates)
        raise ApiError("checkpoint_every" if checkpoint_every else "updates",
                       f"a stream of at most {s.max_response_mb:g} MB (limit BPTT_MAX_RESPONSE_MB; fewer checkpoints "
                       "or updates)", f"an estimated {mb:.1f} MB", code="over_limit",
                       params={"setting": "BPTT_MAX_RESPONSE_MB", "limit": s.max_response_mb, "got": round(mb, 3)})
    try:
        TL.train(spec).close()  # the optimizer's state checked against the model, before the stream starts
    except OptionError as e:
        raise ApiError(e.field, e.expected, describe(e.got), code="invalid_value") from None
    return spec, p.notation, work


def _optimizer_state(v: Any, theta: dict[str, np.ndarray]) -> dict | None:
    """optimizer_state as a checkpoint line carries it ({"step": k, buffer: {canonical name:
    array}}) → arrays, each of its parameter's shape (checked again by the engine)."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ApiError("optimizer_state", '{"step": k, buffer: {parameter: array}} as a checkpoint line carries it',
                       describe(v), code="wrong_type")
    out: dict[str, Any] = {}
    for k, per in v.items():
        if k == "step":
            out[k] = per
            continue
        if not isinstance(per, dict):
            raise ApiError(f"optimizer_state.{k}", "an object {parameter: array} (canonical names)", describe(per), code="wrong_type")
        out[k] = {}
        for name, a in per.items():
            if name not in theta:
                raise ApiError(f"optimizer_state.{k}.{name}", "one of the parameters " + ", ".join(theta) + " (canonical names)",
                               "an unknown parameter", code="unknown_field")
            shape = theta[name].shape
            where, want = f"optimizer_state.{k}.{name}", "an array of shape " + "×".join(map(str, shape))

            def fits(got, where=where, want=want, shape=shape):
                if tuple(got) != shape:
                    raise ApiError(where, want, "×".join(map(str, got)), code="wrong_shape")

            out[k][name] = number_array(a, where, (len(shape),), want, check=fits)
    return out


def _params(notation: str, cell: str, theta: dict[str, np.ndarray]) -> dict:
    return from_canonical(notation, theta, CELLS[cell].hidden)


def _weights(notation: str, cell: str, theta: dict[str, np.ndarray]) -> dict:
    """Parameters under the notation's names, so that a request carrying them has the same model:
    where one canonical array is several (PyTorch's two vanilla biases, which add up) the first
    gets it and the others zeros."""
    out = {}
    for name, v in from_canonical(notation, theta, CELLS[cell].hidden).items():
        out[name] = v
    for c, v in theta.items():
        names = shown_names(notation, c, CELLS[cell].hidden)
        for extra in names[1:]:
            out[extra] = np.zeros_like(v)
    return out


def _norms(notation: str, cell: str, norms: dict[str, float]) -> dict:
    """‖θ‖ per parameter under the notation's names (as ``_weights`` splits them)."""
    out = {}
    for c, v in norms.items():
        names = shown_names(notation, c, CELLS[cell].hidden)
        out[names[0]] = v
        for extra in names[1:]:
            out[extra] = 0.0
    return out


def _state(st: dict) -> dict:
    return {k: (v if k == "step" else {n: a.tolist() for n, a in v.items()}) for k, v in st.items()}


def _nonfinite(doc: dict) -> list[str]:
    return [k for k in ("loss", "grad_norm") if isinstance(doc.get(k), float) and not math.isfinite(doc[k])]


def line(event, notation: str, cell: str) -> bytes:
    """One NDJSON line of the stream (orjson writes NaN/inf as null; ``nonfinite`` names them)."""
    if isinstance(event, TL.Report):
        doc: dict[str, Any] = {"update": event.update, "loss": event.loss, "grad_norm": event.grad_norm,
                               "clipped": event.clipped}
        if event.param_norms is not None:
            doc["param_norms"] = _norms(notation, cell, event.param_norms)
        if event.checkpoint:
            doc["params"] = _weights(notation, cell, event.params)
            doc["delta_norm"] = [row[: t + 1] for t, row in enumerate(event.delta_norm.tolist())]
            doc["delta_reach"] = event.delta_reach
            if event.optimizer_state is not None:
                doc["optimizer_state"] = _state(event.optimizer_state)
        if event.nonfinite:
            doc["nonfinite"] = _nonfinite(doc) or ["grads"]
    else:
        doc = {"done": True, "updates": event.updates, "params": _weights(notation, cell, event.params),
               "loss": event.loss}
        if event.optimizer_state is not None:
            doc["optimizer_state"] = _state(event.optimizer_state)
        if event.stopped:
            doc["stopped"] = "the gradient or loss of the next update was not finite (see the line before)"
    return respond.dumps(doc) + b"\n"


class BlasLimit:
    """BLAS limited to ``threads`` while any training slice runs (BPTT_TRAIN_BLAS_THREADS).

    OpenBLAS keeps one thread count per process, and threadpoolctl's limit is not safe to
    enter from several threads at once: the first slice in sets it (under a lock), the last
    one out puts back what was there. A /bptt computation overlapping a slice gets the limit
    too. Without threadpoolctl this does nothing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.limiter = None
        self.controller = None

    @contextlib.contextmanager
    def __call__(self, threads: int):
        if threads <= 0 or not self._ready():
            yield
            return
        with self.lock:
            self.inside += 1
            if self.inside == 1:
                self.limiter = self.controller.limit(limits=threads, user_api="blas")
        try:
            yield
        finally:
            with self.lock:
                self.inside -= 1
                if self.inside == 0 and self.limiter is not None:
                    self.limiter.restore_original_limits()
                    self.limiter = None

    def _ready(self) -> bool:
        if self.controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self.controller = False
            else:
                with self.lock:
                    if self.controller is None:
                        self.controller = ThreadpoolController()
        return bool(self.controller)


blas_limit = BlasLimit()


def _slice(gen, notation: str, cell: str, blas_threads: int = 0) -> tuple[bytes, bool]:
    """Advance the run for about SLICE_SECONDS (the generator yields after every update):
    (the lines, whether it is over)."""
    with blas_limit(blas_threads):
        return _advance(gen, notation, cell)


def _advance(gen, notation: str, cell: str) -> tuple[bytes, bool]:
    out, t0 = [], time.perf_counter()
    while True:
        try:
            event = next(gen)
        except StopIteration:
            return b"".join(out), True
        except Exception:  # a defect midway: one line in the one error shape, then the end
            err = ApiError(None, status=500, message="internal error during training: this is a bug, please report it", code="internal_error")
            return b"".join(out) + error_body(err) + b"\n", True
        if event is not None:  # None: an update without a report (a tick)
            out.append(line(event, notation, cell))
        if isinstance(event, TL.Done):
            return b"".join(out), True
        if time.perf_counter() - t0 > SLICE_SECONDS:
            return b"".join(out), False


class _InFlight:
    """Training runs in flight in this worker (the event loop is one thread: a plain counter)."""

    def __init__(self) -> None:
        self.n = 0


_in_flight = _InFlight()


@router.post(
    "/train",
    summary="Train the RNN through time; progress streamed as NDJSON",
    description=(
        "The model as in /api/v1/bptt, the training set as inputs/targets or a task, an optimizer "
        "with torch.optim's rules and keyword names. One JSON line per report (update, loss, "
        "grad_norm, clipped; a checkpoint adds params and delta_norm), then "
        '{"done": true, "updates", "params", "loss"}. See the README.'
    ),
    response_model=None,
    responses={**_ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "The run, line by line"},
               503: {**_ERRORS[503], "description": "BPTT_TRAIN_MAX_RUNS runs in flight in this worker; retry after Retry-After"}},
)
async def train(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    if _in_flight.n >= settings.train_max_runs:
        raise ApiError("updates", f"at most {settings.train_max_runs} training runs at a time in this worker "
                       "(limit BPTT_TRAIN_MAX_RUNS)", f"{_in_flight.n} running", status=503,
                       headers={"Retry-After": "5"}, code="busy",
                       params={"setting": "BPTT_TRAIN_MAX_RUNS", "limit": settings.train_max_runs, "retry_after": 5})
    _in_flight.n += 1  # counted before the first await, so two requests cannot both pass
    heavy = worker = None  # the gate and the process lent with its slot, for a heavy run
    try:
        doc = decode(body) if len(body) <= INLINE_BODY_BYTES else None
        if doc is not None and await run_in_threadpool(task_numbers, doc) <= INLINE_TASK_NUMBERS:
            spec, notation, work = await run_in_threadpool(build, doc, settings)
        else:  # a large body (its own data) or task: decoded and built in the slot's process, as
            heavy = gate(request.app)  # /bptt's (orjson.loads holds the GIL for the whole body)
            worker = await heavy.enter()
            spec = notation = None
            work = await worker.call("train_body", body, settings)
        del body
        charge(request, work)
        if worker is None and work > INLINE_WORK:  # a run of more than classroom size: one of the
            heavy = gate(request.app)  # worker's heavy slots, and the run in its process (app/api/heavy.py)
            worker = await heavy.enter()
            await worker.call("train", spec, notation, spec.cell)
    except BaseException:
        _in_flight.n -= 1
        if worker is not None:
            heavy.leave(worker)
        raise

    async def advance() -> tuple[bytes, bool]:
        if worker is not None:
            return await worker.call("slice")
        return await run_in_threadpool(_slice, gen, notation, spec.cell, settings.train_blas_threads)

    gen = None if worker is not None else TL.train(spec, ticks=True)
    place = _Place()

    async def stream():
        try:
            done = False
            while not done:
                chunk, done = await advance()
                if done:
                    # freed before the last line goes out: a client that starts its next run as
                    # soon as it has read this one's end must find the place free (not a 503)
                    place.free()
                if chunk:
                    yield chunk
                if not done and (response.dropped or await request.is_disconnected()):
                    return
        finally:
            if gen is not None:
                gen.close()  # (in the process: dropped when the slot is given back)

    response = _RunResponse(stream(), place, media_type="application/x-ndjson",
                            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                            heavy=None if worker is None else functools.partial(heavy.leave, worker),
                            send_timeout=settings.send_timeout)
    return response


def charge(request: Request, work: float) -> None:
    """The run's estimated work to the client's budget of the minute (BPTT_RATE_LIMIT_WORK_PER_MINUTE),
    before it starts: 429 naming the setting when it is spent."""
    budget = request.app.state.work_budget
    if budget is not None:
        budget.charge(request.scope, work)


class _Place:
    """One run's place among the runs in flight, freed once."""

    def __init__(self) -> None:
        self.held = True

    def free(self) -> None:
        if self.held:
            self.held = False
            _in_flight.n -= 1


class _RunResponse(StreamingResponse):
    """The stream, releasing its place among the runs in flight (and its heavy slot) however it
    ends (done, the client gone, cancelled before its first line). Each send is bounded by
    BPTT_SEND_TIMEOUT as /bptt's answers are: a client that stops reading is dropped and the run
    stops (it had held its place and its slot for as long as it liked: two such clients kept
    every other run at 503)."""

    def __init__(self, content, place: _Place, heavy=None, send_timeout: float = 20.0, **kw) -> None:
        super().__init__(content, **kw)
        self.place = place
        self.heavy = heavy
        self.send_timeout = send_timeout
        #: the client read nothing for send_timeout: the connection is dropped, the run stops
        self.dropped = False

    async def __call__(self, scope, receive, send) -> None:
        async def bounded(message) -> None:
            if self.dropped:
                return
            try:
                async with asyncio.timeout(self.send_timeout):
                    await send(message)
            except TimeoutError:
                self.dropped = True
                client = (scope.get("client") or ("?", 0))[0]
                log.warning("client %s read nothing of a training stream for %g s (BPTT_SEND_TIMEOUT): "
                            "connection dropped", client, self.send_timeout)
                transport = scope.get("bptt.transport")
                if transport is not None:
                    _stream._drop(transport)
                    await asyncio.sleep(0)  # connection_lost runs: the server sees a disconnect

        try:
            await super().__call__(scope, receive, bounded)
        finally:
            self.place.free()
            if self.heavy is not None:
                self.heavy, leave = None, self.heavy
                leave()


def _compare_plan(body: Any, s: Settings) -> tuple[dict, float]:
    """The comparison asked for (every limit checked) and its estimated work, before any of it."""
    parsed, theta, data, tr = _model(body, s, COMPARE_FIELDS)
    p = parsed.problem
    K = tr.K if tr.kind in ("window", "chunked") else None
    pi = tr.p if tr.kind == "randomized" else 0.5
    seed = _int(body.get("seed", 0), "seed", 0, 2**63 - 1, "the seed")
    draws = _int(body.get("draws", 100), "draws", 0, s.train_max_updates, "randomized draws averaged (limit BPTT_TRAIN_MAX_UPDATES)")
    B, T, n = p.X.shape
    m = theta["W_hh"].shape[-1]
    cell = CELLS[p.cell]
    rtrl_work = rtrl.work(cell, B, T, n, m)
    spec = TL.TrainSpec(p.cell, p.activation, theta, data)
    work = TL.work_per_update(spec) * (3 + max(1, draws)) + rtrl_work
    if K is not None:
        work += TL.work_per_update(TL.TrainSpec(p.cell, p.activation, theta, data, truncation=TL.Truncation("window", K)))
    if work > s.train_max_work:
        raise ApiError("draws", f"at most {s.train_max_work:g} estimated work (limit BPTT_TRAIN_MAX_WORK)", f"{work:.3g}", code="over_limit")
    s0 = {"h": p.h0} | ({"c": p.c0} if p.c0 is not None else {})  # (N, m) each, as /bptt parsed them
    return {"p": p, "theta": theta, "data": data, "K": K, "pi": pi, "seed": seed, "draws": draws, "s0": s0}, work


def _compare(plan: dict) -> bytes:
    p, theta, data, K, pi, seed, draws = (plan[k] for k in ("p", "theta", "data", "K", "pi", "seed", "draws"))
    res = TL.compare_gradients(p.cell, p.activation, theta, data, K=K, p=pi, seed=seed, draws=draws, s0=plan.get("s0"))
    doc = {
        "K": K, "p": pi, "draws": draws,
        "variants": {r.name: {"cosine": r.cosine, "norm_ratio": r.norm_ratio,
                              "grads": _params(p.notation, p.cell, r.grads)} for r in res},
        "note": "randomized is one draw of ξ (default_rng([seed, 1])); randomized_mean the mean of draws draws, "
                "whose expectation is the full gradient; rtrl is exact (cosine 1 to rounding)",
    }
    return respond.dumps(doc)


@router.post(
    "/compare-gradients",
    summary="Full BPTT, window-K, chunked-K, randomized truncation and RTRL on the same batch",
    description="Each variant's gradient with its cosine similarity and norm ratio to the full gradient. "
                "h0 (and c0 for the LSTM) as in /api/v1/bptt: every variant starts from them.",
    response_model=None,
    responses=_ERRORS,
)
async def compare_gradients(request: Request) -> Response:
    return await planned_response(request, "compare_gradients")


@router.get("/tasks", summary="The training tasks: their options with the defaults, the loss they use")
async def tasks() -> dict:
    out = {}
    for name, defaults in TK.DEFAULTS.items():
        t = TK.make(name, N=1)
        out[name] = {"options": defaults, "loss": t.loss, "summary": " ".join((TK.TASKS[name].__doc__ or "").split())}
    return out


def task_plan(body: Any, s: Settings) -> tuple[dict, float]:
    """The task asked for with every option checked, its answer's size (refused above
    BPTT_MAX_RESPONSE_MB) and work (making N sequences and writing k: refused above
    BPTT_MAX_WORK), before any of its arrays: one sequence is made to learn T, n and p, which
    do not depend on N (``routes.PLANNED``)."""
    if not isinstance(body, dict):
        raise ApiError("body", 'a JSON object {"task": {...}, "sequences": k}', describe(body), code="wrong_type")
    _refuse_unknown(body, ("task", "sequences"))
    spec = body.get("task")
    if isinstance(spec, dict) and isinstance(spec.get("name"), str) and spec["name"] in TK.DEFAULTS:
        _task_limits(spec, s)
        one = _task(spec | {"N": 1}, s, norms=False)  # (its other options checked)
        N = _int(spec.get("N", TK.DEFAULTS[spec["name"]].get("N", 1)), "task.N", 1, s.max_batch, "sequences N (limit BPTT_MAX_BATCH)")
    else:
        one = _task(spec, s, norms=False)  # (refused: not a task)
        N = one.inputs.shape[0]
    _, T, n = one.inputs.shape
    p = one.targets.shape[-1]
    k = _int(body.get("sequences", N), "sequences", 1, N, f"how many of the task's {N} sequences to send, from the first")
    steps = int(np.count_nonzero(one.mask))
    out = size.array((k, T, n)) + size.array((k, T, p)) + size.FIXED
    if one.loss == "softmax_ce":
        out += size.array((k, steps))
    if one.vocab is not None:
        out += sum(len(c.encode()) + 8 for c in one.vocab)
    if out > s.max_response_mb * 1e6:
        raise ApiError(
            "sequences", f"a response of at most {s.max_response_mb:g} MB (limit BPTT_MAX_RESPONSE_MB)",
            f"an estimated {out / 1e6:.4g} MB for k={k} sequences of T={T}, n={n}, p={p}",
            message=f"the task's arrays would be up to {out / 1e6:.4g} MB of JSON, over the limit of {s.max_response_mb:g} MB "
            '(BPTT_MAX_RESPONSE_MB). Ask for less: "sequences" (the first k only), or a smaller T or n',
            code="over_limit", params={"setting": "BPTT_MAX_RESPONSE_MB", "limit": s.max_response_mb,
                                       "got": round(out / 1e6, 3)})
    # each number made (N sequences) and written (k), counted as an elementwise pass: writing
    # is ~0.2 µs a number (measured: 1.3 GB of "sum" at N = 64, T = 1024, n = 512 in 11 s)
    work = float(ELEMENTWISE * (N + k) * T * (n + p))
    if work > s.max_work:
        raise ApiError("task", f"at most {s.max_work:.3g} estimated work (limit BPTT_MAX_WORK)",
                       f"{work:.3g} for N={N} sequences made and k={k} written, of T={T}, n={n}, p={p}",
                       code="over_limit", params={"setting": "BPTT_MAX_WORK", "limit": s.max_work, "got": work})
    return {"task": spec | {"N": N}, "k": k, "settings": s}, work


def task_answer(plan: dict) -> bytes:
    task, k = _task(plan["task"], plan["settings"], norms=False), plan["k"]
    doc: dict[str, Any] = {"name": task.name, "options": task.options, "loss": task.loss, "loss_steps": task.loss_steps,
                           "inputs": task.inputs[:k].tolist(), "targets": task.targets[:k].tolist()}
    if task.loss == "softmax_ce":
        # the class of each loss step, as /api/v1/bptt also takes targets (|S| indices per sequence)
        doc["target_classes"] = np.argmax(task.targets[:k, task.mask], axis=-1).tolist()
    if task.vocab is not None:
        doc["vocab"] = list(task.vocab)
    return respond.dumps(doc)


@router.post(
    "/task",
    summary="The arrays of a training task (what /api/v1/train trains on with the same task)",
    description='{"task": the task object of /api/v1/train, "sequences": k (default all N)}. Answers the first k '
                "sequences: inputs (k×T×n), targets (k×T×p rows), loss, loss_steps, options (defaults filled in), "
                "and for softmax_ce target_classes (k×|S| class indices of the loss steps) and, for chars, vocab.",
    response_model=None,
    responses=_ERRORS,
)
async def task(request: Request) -> Response:
    return await planned_response(request, "task")
