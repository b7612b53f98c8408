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

import contextlib
import functools
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
from . import respond
from .errors import ApiError, error_body
from .parse import _int, _positive, decode, describe, number_array, parse
from .routes import _ERRORS, INLINE_WORK, gate, read_body

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


def _task(v: Any, s: Settings) -> TK.Task:
    if not isinstance(v, dict) or not isinstance(v.get("name"), str):
        raise ApiError("task", '{"name": one of ' + ", ".join(TK.TASKS) + ', "seed": …, and its options}', describe(v), code="wrong_type")
    opts = {k: x for k, x in v.items() if k != "name"}
    for k, (attr, setting) in TASK_LIMITS.items():  # sizes before any array is made
        if isinstance(opts.get(k), int) and not isinstance(opts[k], bool) and opts[k] > getattr(s, attr):
            raise ApiError(f"task.{k}", f"at most {getattr(s, attr)} (limit {setting})", str(opts[k]), code="over_limit")
    try:
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
    parsed = parse(sub, s.model_copy(update={"max_work": math.inf}))
    p = parsed.problem
    cell = CELLS[p.cell]
    theta = to_canonical(p.notation, p.params, True, cell.hidden)
    theta = {k: np.array(v, dtype=np.float64) for k, v in theta.items()}
    data = TL.Data(p.X, p.Y, p.mask, p.loss, p.reduction)
    if tr.kind == "window" and tr.K >= p.X.shape[1]:
        tr = TL.Truncation()
    return parsed, theta, data, tr


def _optimizer(v: Any) -> tuple[str, dict]:
    if v is None:
        v = {"name": "adam"}
    if not isinstance(v, dict) or v.get("name") not in OPT.OPTIMIZERS:
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
        raise ApiError("updates", f"at most {s.train_max_updates} updates (limit BPTT_TRAIN_MAX_UPDATES)", str(updates), code="over_limit")
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
                       f"{work:.3g} ({made} updates × {work / made:.3g})", code="over_limit")
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
        spec, notation, work = await run_in_threadpool(build, decode(body), settings)
        charge(request, work)
        if work > INLINE_WORK:  # a run of more than classroom size: one of the worker's heavy
            heavy = gate(request.app)  # slots, and the run in its process (app/api/heavy.py)
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
                if not done and await request.is_disconnected():
                    return
        finally:
            if gen is not None:
                gen.close()  # (in the process: dropped when the slot is given back)

    return _RunResponse(stream(), place, media_type="application/x-ndjson",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                        heavy=None if worker is None else functools.partial(heavy.leave, worker))


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
    ends (done, the client gone, cancelled before its first line)."""

    def __init__(self, content, place: _Place, heavy=None, **kw) -> None:
        super().__init__(content, **kw)
        self.place = place
        self.heavy = heavy

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
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
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    plan, work = await run_in_threadpool(_compare_plan, decode(body), settings)
    charge(request, work)
    if work <= INLINE_WORK:
        return Response(await run_in_threadpool(_compare, plan), media_type="application/json")
    heavy = gate(request.app)
    worker = await heavy.enter()
    try:
        out = await worker.call("compare", plan)
    finally:
        heavy.leave(worker)
    return Response(out, media_type="application/json")


@router.get("/tasks", summary="The training tasks: their options with the defaults, the loss they use")
async def tasks() -> dict:
    out = {}
    for name, defaults in TK.DEFAULTS.items():
        t = TK.make(name, N=1)
        out[name] = {"options": defaults, "loss": t.loss, "summary": " ".join((TK.TASKS[name].__doc__ or "").split())}
    return out


def _task_arrays(body: Any, s: Settings) -> bytes:
    if not isinstance(body, dict):
        raise ApiError("body", 'a JSON object {"task": {...}, "sequences": k}', describe(body), code="wrong_type")
    _refuse_unknown(body, ("task", "sequences"))
    task = _task(body.get("task"), s)
    N = task.inputs.shape[0]
    k = _int(body.get("sequences", N), "sequences", 1, N, f"how many of the task's {N} sequences to send, from the first")
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
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    return Response(await run_in_threadpool(_task_arrays, decode(body), settings), media_type="application/json")
