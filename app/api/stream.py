"""Heavy requests without stalls or unbounded memory: a per-worker gate on the heavy work in
flight (BPTT_MAX_CONCURRENT, BPTT_QUEUE_TIMEOUT), JSON written in pieces so that no single
orjson call holds the GIL for long, and every send of a response bounded in time
(BPTT_SEND_TIMEOUT), after which the connection is dropped and its memory freed.

The pieces join to exactly ``respond.dumps(doc)``: a dict is written key by key, an array too
large for one piece row block by row block (orjson writes a block ``a[i:j]`` as its rows
between brackets), so every number is written by the same orjson call on the same value.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Iterator
from typing import Any

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from starlette.responses import Response

from . import heavy
from .errors import ApiError
from .respond import dumps

log = logging.getLogger("bptt.stream")

#: numbers per orjson call: about 1–2 ms of the GIL (orjson writes ~35 ns a float64)
PIECE_NUMBERS = 1 << 15
#: bytes per send (and per thread hop): the transport buffers at most one of these beyond its
#: high-water mark for a client that does not read
CHUNK_BYTES = 1 << 20


def _count(v: Any) -> int:
    """Numbers (and other scalars) orjson writes for v."""
    if isinstance(v, np.ndarray):
        return v.size
    if isinstance(v, (list, tuple)):
        return sum(map(_count, v)) if v and isinstance(v[0], (list, tuple, dict, np.ndarray)) else len(v)
    if isinstance(v, dict):
        return sum(map(_count, v.values()))
    return 1


def pieces(v: Any, piece: int = PIECE_NUMBERS) -> Iterator[bytes]:
    """The JSON of v in parts, each from one orjson call on at most ``piece`` numbers (or on
    one row, when a row alone holds more and cannot be split: a 1-D array's numbers are)."""
    if isinstance(v, dict):
        yield b"{"
        for i, (k, x) in enumerate(v.items()):
            yield (b"," if i else b"") + dumps(k) + b":"
            yield from pieces(x, piece)
        yield b"}"
        return
    if isinstance(v, np.ndarray) and v.ndim >= 1 and v.size > piece:
        per_row = v.size // v.shape[0]
        if per_row > piece and v.ndim > 1:
            yield b"["
            for i in range(v.shape[0]):
                if i:
                    yield b","
                yield from pieces(v[i], piece)
            yield b"]"
            return
        rows = max(1, piece // max(per_row, 1))
        for i in range(0, v.shape[0], rows):
            block = dumps(v[i : i + rows])
            yield (b"," if i else b"[") + block[1:-1]
        yield b"]"
        return
    if isinstance(v, list) and len(v) > 1 and _count(v) > piece:
        yield b"["
        group: list[Any] = []
        group_size = 0
        first = True

        def flush():
            text = dumps(group)[1:-1]
            return text if first else b"," + text

        for x in v:
            c = _count(x)
            if c > piece:
                if group:
                    yield flush()
                    first, group, group_size = False, [], 0
                if not first:
                    yield b","
                yield from pieces(x, piece)
                first = False
                continue
            if group and group_size + c > piece:
                yield flush()
                first, group, group_size = False, [], 0
            group.append(x)
            group_size += c
        if group:
            yield flush()
        yield b"]"
        return
    yield dumps(v)


def chunks(doc: Any, chunk: int = CHUNK_BYTES, piece: int = PIECE_NUMBERS) -> Iterator[bytes]:
    """The JSON of doc in chunks of about ``chunk`` bytes (the pieces, joined)."""
    buf: list[bytes] = []
    size = 0
    for part in pieces(doc, piece):
        buf.append(part)
        size += len(part)
        if size >= chunk:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


#: the OS priority (nice) of the threads that run large requests: below the event loop's, so that
#: on a busy machine the loop is scheduled first and classroom requests do not queue for a core
#: behind the large ones' numpy work
#: (measured, work-maximal requests, two beside, alternating runs at load average 11–12: classroom
#: p50 56 and 64 ms at nice 0, 21 and 17 ms at nice 10; p99 426 and 839 ms against 437 and 311 ms)
HEAVY_NICE = 10
_heavy: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)  # Linux: per thread
    except (OSError, AttributeError):
        pass


def heavy_pool(threads: int) -> ThreadPoolExecutor:
    """This process's threads for large requests (one per slot of the gate, at a lower priority)."""
    global _heavy
    if _heavy is None:
        _heavy = ThreadPoolExecutor(threads, thread_name_prefix="bptt-heavy", initializer=_lower_priority)
    return _heavy


async def in_heavy_thread(threads: int, f, *args):
    return await asyncio.get_running_loop().run_in_executor(heavy_pool(threads), f, *args)


class Gate:
    """At most ``limit`` heavy requests of this worker in flight (parse of a large body,
    compute, serialisation, sending); the next waits up to ``timeout`` seconds, then is
    answered 503 with Retry-After. One per worker process (asyncio, one event loop)."""

    def __init__(self, limit: int, timeout: float, nice: int = heavy.HEAVY_NICE) -> None:
        self.limit, self.timeout, self.nice = limit, timeout, nice
        self.active = 0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # (a test client may run the app on several loops in turn)
            self._sem, self._loop = asyncio.Semaphore(self.limit), loop
        return self._sem  # type: ignore[return-value]

    async def enter(self) -> heavy.Worker:
        """A slot, and the process (``heavy.Worker``) lent with it."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._semaphore().acquire()
        except TimeoutError:
            retry = max(1, round(self.timeout))
            raise ApiError(
                None, f"at most {self.limit} large requests at once per worker (limit BPTT_MAX_CONCURRENT)",
                f"{self.limit} running and none done within {self.timeout:g} s (BPTT_QUEUE_TIMEOUT)",
                status=503, headers={"retry-after": str(retry)},
                message=f"the server is busy with {self.limit} large requests: try again in {retry} s",
                code="busy", params={"setting": "BPTT_MAX_CONCURRENT", "limit": self.limit, "retry_after": retry},
            ) from None
        self.active += 1
        return heavy.take(self.nice)

    def leave(self, worker: heavy.Worker | None = None) -> None:
        """The slot back; with its worker once that is idle and holds nothing (``settle``)."""
        self.active -= 1
        sem = self._semaphore()
        if worker is None:
            sem.release()
            return

        def free() -> None:
            heavy.give(worker)
            sem.release()

        worker.settle(free)


def _drop(transport) -> None:
    """Drop the connection now: SO_LINGER 0 makes the close a reset, so the kernel frees its
    send buffer too (a plain close keeps it until the peer reads or the connection times out),
    and abort() frees the transport's own buffer."""
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    transport.abort()


class KeepTransport:
    """Outermost ASGI middleware: notes the server's transport in the scope, so that a response
    whose client stopped reading can drop the connection (``transport.abort()`` frees what the
    transport still buffers; ``close()`` would keep it until the client reads). Under uvicorn
    the send callable is the connection cycle's bound method, which holds the transport; under
    any other server nothing is noted and a stalled send ends the response instead."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None and hasattr(transport, "abort"):
                scope["bptt.transport"] = transport
        await self.app(scope, receive, send)


class StreamedJSON(Response):
    """An ASGI response sending JSON already written (``body``, with its length) or written
    while it is sent: ``first`` and then the chunks a heavy ``worker`` hands over one by one,
    or the chunks of ``doc`` serialised in a worker thread; in chunks of CHUNK_BYTES, each
    send bounded by ``send_timeout``. ``done`` runs once it has ended, however it ended.
    Another format: its ``media_type`` and ``parts``, the iterator of its chunks in place of
    doc's JSON (the npz archive)."""

    def __init__(self, doc: Any, headers: dict[str, str], send_timeout: float, done,
                 body: bytes | None = None, threads: int = 2, worker: heavy.Worker | None = None,
                 first: bytes | None = None, media_type: str = "application/json",
                 parts: Iterator[bytes] | None = None) -> None:
        self.doc, self.extra_headers, self.send_timeout, self.done = doc, headers, send_timeout, done
        self.media_type, self.parts = media_type, parts
        self.raw_headers: list = []
        self.body = body
        self.threads = threads
        self.worker, self.first = worker, first
        self.status_code = 200
        self.background = None  # (Starlette's Response protocol; headers are built in __call__)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self._send_all(scope, send)
        finally:
            self.doc = self.first = None
            self.done()

    async def _send_all(self, scope, send) -> None:
        headers = [(b"content-type", self.media_type.encode("latin-1"))]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.extra_headers.items()]
        if self.body is not None:
            body, self.body = memoryview(self.body), None
            headers.append((b"content-length", str(len(body)).encode()))
            if not await self._send(scope, send, {"type": "http.response.start", "status": 200, "headers": headers}):
                return
            for i in range(0, len(body), CHUNK_BYTES):
                last = i + CHUNK_BYTES >= len(body)
                part = bytes(body[i : i + CHUNK_BYTES])
                if not await self._send(scope, send, {"type": "http.response.body", "body": part, "more_body": not last}):
                    return
            return
        if self.worker is not None:
            worker = self.worker

            async def following():
                return await worker.call("next")
        else:
            it = chunks(self.doc) if self.parts is None else self.parts
            self.doc = self.parts = None  # the iterator holds it

            async def following():
                return await in_heavy_thread(self.threads, next, it, None)
        if not await self._send(scope, send, {"type": "http.response.start", "status": 200, "headers": headers}):
            return
        part, self.first = self.first, None
        if part is None:
            part = await following()
        while part is not None:
            if not await self._send(scope, send, {"type": "http.response.body", "body": part, "more_body": True}):
                return
            part = await following()
        await self._send(scope, send, {"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, scope, send, message) -> bool:
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
            return True
        except TimeoutError:
            transport = scope.get("bptt.transport")
            client = (scope.get("client") or ("?", 0))[0]
            log.warning("client %s read nothing for %g s (BPTT_SEND_TIMEOUT): connection dropped",
                        client, self.send_timeout)
            if transport is not None:
                _drop(transport)
                await asyncio.sleep(0)  # connection_lost runs: the server sees a disconnect, not a defect
            return False
