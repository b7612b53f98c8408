"""Heavy requests computed and serialised in processes of the worker's own, so that the worker's
event loop keeps the GIL for the classroom's light requests.

The engine makes many small numpy calls and orjson writes whole arrays, each holding the GIL:
run in a thread of the worker, a maximal request kept the event loop waiting for the GIL at
every step of every light request (p99 356 ms beside two of them, the target 250 ms). In a
process of its own it shares nothing with the loop but a pipe. Each slot of the worker's gate
(``stream.Gate``, BPTT_MAX_CONCURRENT) is lent one ``Worker``: a process (spawned on first use,
again after it died, at a lower OS priority) that parses, computes and serialises, and hands
back bytes: a whole answer up to ``STREAM_RESPONSE_BYTES``, else one chunk at a time as the
response is sent (so the worker holds about a chunk, the process the arrays). A training run
lives in the process as its generator, advanced a slice per call. So a worker has at most
BPTT_MAX_CONCURRENT such processes; they die with it (PR_SET_PDEATHSIG).

Protocol: the worker sends ``(command, *args)``, the process answers every command with
``(kind, value, holding)``: kind "ok" (value the result), "error" (an ApiError's parts) or
"crash" (a defect's text); holding says whether it still keeps a request's state, which the
slot then drops before it is lent again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .errors import ApiError

log = logging.getLogger("bptt.heavy")

#: the OS priority (nice) of the processes, BPTT_HEAVY_NICE's default: below the event loop's,
#: so that on a busy machine the loop is scheduled first and classroom requests do not queue for
#: a core behind the large ones' numpy work (measured with threads at nice 10, two maximal
#: requests beside, load 11–12: classroom p50 56 and 64 ms at nice 0, 21 and 17 ms at nice 10)
HEAVY_NICE = 10


# --- in the process ------------------------------------------------------------------------

def _child_init(nice: int) -> None:
    """Die with the worker (Linux), leave SIGINT to it (a terminal's ^C reaches the whole
    group), run below its priority, one BLAS thread (as bptt-explorer sets), glibc tuned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    try:
        os.nice(nice)
    except OSError:
        pass
    # A session of its own, so a scheduling group of its own where the kernel groups by session
    # (Linux's autogroup, on by default): in the worker's group, every CPU second of this
    # process counted against the group the event loop is in, and the loop waited behind
    # other sessions' work however low this process's nice. The group's nice is lowered too.
    try:
        os.setsid()
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass
    from ..runtime import tune_malloc

    tune_malloc()


class _Job:
    """The request a process holds between commands: parsed, a response being written, a run."""

    def __init__(self) -> None:
        self.drop()

    def holding(self) -> bool:
        return self.parsed is not None or self.chunks is not None or self.run is not None

    def drop(self) -> None:
        run = getattr(self, "run", None)
        if run is not None:
            run[0].close()
        self.parsed = self.chunks = self.run = None

    def ping(self) -> int:
        return os.getpid()

    def parse(self, body: bytes, settings, media: str = "json") -> tuple[float, int, float]:
        from .parse import decode, parse

        self.drop()
        t0 = time.perf_counter()
        self.parsed = parse(decode(body), settings, media)
        return self.parsed.work, self.parsed.response_bytes, time.perf_counter() - t0

    def respond(self, parsed, whole_below: int, piece: int, chunk: int, media: str = "json") -> tuple:
        """("body", bytes, compute s, serialise s, route timing), or ("stream", compute s, the
        first chunk, its serialisation s, route timing) and the rest by ``next``; JSON, or the npz archive (media "npz")."""
        from ..engine import run
        from . import npz, respond, stream

        if parsed is not None:
            self.drop()
            self.parsed = parsed
        parsed, self.parsed = self.parsed, None
        t0 = time.perf_counter()
        result = run(parsed.problem)
        t1 = time.perf_counter()
        dense = media == "npz"
        if parsed.response_bytes <= whole_below:
            doc = respond.build(result, parsed, dense=dense)
            out = npz.dumps(doc) if dense else respond.dumps(doc)
            return "body", out, t1 - t0, time.perf_counter() - t1, respond.timing(result)
        doc = respond.build(result, parsed, dense=dense)
        route_timing = respond.timing(result)
        del result
        t2 = time.perf_counter()
        self.chunks = npz.chunks(doc) if dense else stream.chunks(doc, chunk, piece)
        del doc  # the iterator holds it
        first = self.next()
        return "stream", t2 - t0, first, time.perf_counter() - t1, route_timing

    def next(self) -> bytes | None:
        part = None if self.chunks is None else next(self.chunks, None)
        if part is None:
            self.chunks = None
        return part

    def train(self, spec, notation: str, cell: str) -> None:
        from ..engine.train import loop as TL

        self.drop()
        self.run = (TL.train(spec, ticks=True), notation, cell)

    def train_body(self, body: bytes, settings) -> float:
        """A training request's large body decoded and built here, the run kept: its work."""
        from ..engine.train import loop as TL
        from .parse import decode
        from .train import build

        self.drop()
        spec, notation, work = build(decode(body), settings)
        self.run = (TL.train(spec, ticks=True), notation, spec.cell)
        return work

    def slice(self) -> tuple[bytes, bool]:
        from .train import _slice

        gen, notation, cell = self.run
        out, done = _slice(gen, notation, cell)
        if done:
            self.drop()
        return out, done

    def compare(self, plan: dict) -> bytes:
        from .train import _compare

        self.drop()
        return _compare(plan)

    def plan(self, route: str, body: bytes, settings) -> float:
        """A JSON route's body (``routes.PLANNED``) decoded and planned here (a large body: orjson
        holds the GIL for all of it), the plan kept for ``answer``: its estimated work."""
        from .parse import decode
        from .routes import planned

        self.drop()
        plan, work = planned(route)[0](decode(body), settings)
        self.parsed = plan
        return work

    def answer(self, route: str, plan=None) -> bytes:
        """The route's answer (its bytes) to the plan given, or to the one ``plan`` kept."""
        from .routes import planned

        if plan is not None:
            self.drop()
        else:
            plan, self.parsed = self.parsed, None
        return planned(route)[1](plan)


def _serve(conn, nice: int) -> None:
    """The process's loop: a command, its answer, until the worker closes the pipe."""
    _child_init(nice)
    job = _Job()
    while True:
        try:
            cmd, *args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", getattr(job, cmd)(*args))
        except ApiError as e:
            reply = ("error", (e.field, e.expected, e.got, e.status, e.message, e.headers, e.code, e.params))
        except Exception as e:  # a defect: said to the worker, which answers 500 in the one shape
            log.exception("heavy request failed")
            job.drop()
            reply = ("crash", f"{type(e).__name__}: {e}"[:300])
        try:
            conn.send(reply + (job.holding(),))
        except (OSError, ValueError):
            return
        reply = None


# --- in the worker -------------------------------------------------------------------------

_threads: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """Threads that wait on the pipes (the GIL is free while they wait): one per call in flight,
    and a slot has at most one."""
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(64, thread_name_prefix="bptt-heavy")
    return _threads


class Worker:
    """One process and the pipe to it, lent to one heavy request at a time (``stream.Gate``)."""

    def __init__(self, nice: int = HEAVY_NICE) -> None:
        _every.append(self)
        self.nice = nice
        self.proc = None
        self.conn = None
        #: the call in flight (a concurrent future), if any
        self.pending: Future | None = None
        #: the process keeps a request's state, to be dropped before the next request
        self.holding = False
        #: one call on the pipe at a time (``warm``'s ping may meet a request's first call)
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def _start(self, unless_stopping: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        with _spawning:  # (stop waits for a start in progress; warm begins none after it)
            if unless_stopping and _stopping.is_set():
                return
            mine, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_serve, args=(theirs, self.nice), daemon=True, name="bptt-heavy")
            proc.start()
            theirs.close()
            self.proc, self.conn = proc, mine

    def _lost(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None
        self.holding = False

    def _call(self, msg: tuple) -> tuple:
        """One command and its answer (blocking: in a thread of ``_pool``)."""
        with self.lock:
            return self._call_locked(msg)

    def _call_locked(self, msg: tuple) -> tuple:
        if msg[0] == "drop" and not self.alive():
            self.holding = False
            return ("ok", None, False)
        if not self.alive():
            self._lost()
            self._start()
        try:
            self.conn.send(msg)
            reply = self.conn.recv()
        except (EOFError, OSError):  # the process died (killed, out of memory)
            self._lost()
            return ("lost", None, False)
        self.holding = reply[2]
        return reply

    async def call(self, *msg: Any) -> Any:
        """The command's result; its ApiError raised here; a defect or a lost process as 500."""
        fut = _pool().submit(self._call, msg)
        self.pending = fut
        kind, value, _ = await asyncio.wrap_future(fut)
        if kind == "ok":
            return value
        if kind == "error":
            field, expected, got, status, message, headers, code, params = value
            raise ApiError(field, expected, got, status=status, message=message, headers=headers, code=code,
                           params=params)
        what = ("the process computing this request ended (killed, or out of memory): try again"
                if kind == "lost" else f"internal error while computing ({value}): this is a bug, please report it")
        raise ApiError(None, status=500, message=what, code="internal_error")

    def settle(self, then) -> None:
        """Call ``then`` on the event loop once this worker is idle and holds nothing: after
        the call in flight (a request cancelled mid-call leaves one), and a drop if needed."""
        loop = asyncio.get_running_loop()

        def soon(_=None) -> None:
            loop.call_soon_threadsafe(clean)

        def clean() -> None:
            if self.holding:
                self.pending = _pool().submit(self._call, ("drop",))
                self.pending.add_done_callback(lambda _: loop.call_soon_threadsafe(then))
            else:
                then()

        if self.pending is not None and not self.pending.done():
            self.pending.add_done_callback(soon)
        else:
            clean()


#: idle workers of this process, lent by the gates (a process's gates share them: one app in a
#: server; the tests make many apps, one after the other)
_idle: list[Worker] = []
#: every worker made in this process (``stop``)
_every: list[Worker] = []
#: held while a process is spawned: a worker that exits mid-spawn leaves its child reading a
#: closed pipe (a traceback on the server's stderr), so stop takes it first
_spawning = threading.Lock()
_stopping = threading.Event()


def stop() -> None:
    """Kill the processes: the worker is shutting down (its own exit would leave them to
    PR_SET_PDEATHSIG, or to nothing off Linux)."""
    with _spawning:
        _stopping.set()
    for w in _every:
        if w.proc is not None and w.proc.is_alive():
            w.proc.kill()
    for w in _every:
        if w.proc is not None:
            w.proc.join(2)


def take(nice: int = HEAVY_NICE) -> Worker:
    for i, w in enumerate(_idle):
        if w.nice == nice:
            return _idle.pop(i)
    return Worker(nice)


def give(worker: Worker) -> None:
    _idle.append(worker)


def begin() -> None:
    """The worker (or an app in tests, several per process) starts: warm may spawn again
    after an earlier stop."""
    _stopping.clear()


def warm(n: int, nice: int = HEAVY_NICE) -> None:
    """Start n processes (those not started yet) and wait until each answers: called (in a
    thread, not awaited) when a worker starts, so that its first heavy request does not wait a
    second or more for one (spawning imports numpy and the engine). A request that comes
    sooner takes a process still starting, and waits for it on its first call."""
    ready = [w for w in _idle if w.nice == nice]
    for _ in range(n - len(ready)):
        w = Worker(nice)
        _idle.append(w)
        ready.append(w)
    for w in ready[:n]:
        with w.lock:
            if not w.alive():
                w._start(unless_stopping=True)
    for w in ready[:n]:
        if _stopping.is_set():
            return
        w._call(("ping",))


def processes() -> list:
    """The live processes (for tests and benchmarks)."""
    return [w.proc for w in _idle if w.alive()]
