"""Start the real app under uvicorn on a free port, for tests that need a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(env: dict[str, str] | None = None, args: tuple[str, ...] = (), log: list[str] | None = None,
                   cli: bool = False, procs: list | None = None):
    """Yields the server's base URL; when the server has stopped, its output is appended to log.
    Plain ``uvicorn app.main:app`` by default; with cli, ``bptt-explorer`` (app.cli). The
    server's Popen is appended to procs (for its pid)."""
    port = free_port()
    server = ["app.cli"] if cli else ["uvicorn", "app.main:app"]
    cmd = [sys.executable, "-m", *server, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    if procs is not None:
        procs.append(proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log is not None:
            log.append(proc.stdout.read().decode(errors="replace"))
