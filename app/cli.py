"""``bptt-explorer``: start the server (settings from BPTT_* environment variables)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import sys
import time

import uvicorn

from . import framing
from .settings import get_settings


def _uvicorn_kwargs(args, s) -> dict:
    return dict(
        log_level=args.log_level, root_path=s.root_path,
        # X-Forwarded-For only from the proxies listed (none by default: a local user could
        # otherwise claim any address and pass the per-client limits)
        proxy_headers=bool(s.forwarded_allow_ips.strip()), forwarded_allow_ips=s.forwarded_allow_ips,
        # head timeout and size (uvicorn has neither for httptools), malformed HTTP in the error shape
        http=framing.AUTO,
        timeout_keep_alive=s.keep_alive_timeout,
        h11_max_incomplete_event_size=s.max_header_bytes,  # what app.framing.H11Protocol uses too
        ws="none",  # no WebSocket route: an upgrade request is an ordinary (404) request
        timeout_graceful_shutdown=s.shutdown_timeout,
    )


def _serve_one(host: str, port: int, kwargs: dict) -> None:
    """One worker with its own SO_REUSEPORT socket: the kernel spreads new connections evenly
    over the workers (with one shared socket, one worker's accept loop can take a whole burst
    of connections and leave the other idle — measured: 1,100 against 2,050 req/s)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    server = uvicorn.Server(uvicorn.Config("app.main:app", host=host, port=port, **kwargs))
    server.run(sockets=[sock])


def _supervise(n: int, host: str, port: int, kwargs: dict) -> None:
    """Start n workers, restart one that dies, stop them all on SIGINT/SIGTERM: each gets
    SIGTERM and BPTT_SHUTDOWN_TIMEOUT seconds to finish (uvicorn's own graceful shutdown
    bound), then SIGKILL, so the supervisor ends within that bound and a second."""
    ctx = multiprocessing.get_context("spawn")
    procs: list = [None] * n
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for i, p in enumerate(procs):
            if p is None or not p.is_alive():
                procs[i] = ctx.Process(target=_serve_one, args=(host, port, kwargs), daemon=False)
                procs[i].start()
        time.sleep(0.5)
    for p in procs:
        if p is not None and p.is_alive():
            p.terminate()
    deadline = time.monotonic() + kwargs["timeout_graceful_shutdown"] + 0.5
    for p in procs:
        if p is not None:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p is not None and p.is_alive():
            p.kill()
            p.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    s = get_settings()
    ap = argparse.ArgumentParser(prog="bptt-explorer", description="Serve BPTT Explorer.")
    ap.add_argument("--host", default=s.host, help=f"address to listen on (default {s.host}, BPTT_HOST)")
    ap.add_argument("--port", type=int, default=s.port, help=f"port (default {s.port}, BPTT_PORT)")
    ap.add_argument("--workers", type=int, default=s.workers, help=f"worker processes (default {s.workers}, BPTT_WORKERS)")
    ap.add_argument("--log-level", default=s.log_level, help=f"log level (default {s.log_level}, BPTT_LOG_LEVEL)")
    args = ap.parse_args(argv)
    # One BLAS thread per worker: the matrices are small, and with one worker per core more
    # threads only compete (measured: a 2-MFLOP product went from 30 µs to 1.5–3 ms under load).
    # Set before any worker imports numpy; an explicit OPENBLAS_NUM_THREADS wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    kwargs = _uvicorn_kwargs(args, s)
    if args.workers > 1 and hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux"):
        _supervise(args.workers, args.host, args.port, kwargs)
    else:
        uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, **kwargs)


if __name__ == "__main__":
    main()
