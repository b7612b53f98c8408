"""Connection-level abuse against a real server (loopback only, bounded in time): how far a
500 MB header stream gets before it is cut off, the worker's memory meanwhile, and how long
idle and half-sent connections are held. Prints the figures.

    .venv/bin/python bench/bench_headers.py [--http app.framing:HttpToolsProtocol] [--idle 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default="app.framing:HttpToolsProtocol", help="uvicorn --http (e.g. httptools for uvicorn's own)")
    ap.add_argument("--idle", type=int, default=200, help="idle connections to open")
    ap.add_argument("--header-timeout", default="2")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BPTT_HEADER_TIMEOUT": args.header_timeout}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "error",
                             "--http", args.http], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rss0 = rss_kb(proc.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent, chunk, t0, peak = 0, b"a" * 65536, time.monotonic(), rss0
            try:
                while sent < 500 * 2**20 and time.monotonic() - t0 < 30:
                    s.sendall(chunk)
                    sent += len(chunk)
                    if sent % (16 * 2**20) == 0:
                        peak = max(peak, rss_kb(proc.pid))
                outcome = "all sent (not cut off)"
            except OSError as e:
                outcome = f"cut off ({type(e).__name__})"
            peak = max(peak, rss_kb(proc.pid))
        print(f"{args.http}: 500 MB header stream: {outcome} after {sent / 2**20:.2f} MB in {time.monotonic() - t0:.2f} s; "
              f"worker RSS {rss0 / 1024:.0f} → peak {peak / 1024:.0f} MB")
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(args.idle)]
        t0 = time.monotonic()
        for s in socks:
            s.settimeout(max(0.1, 30 - (time.monotonic() - t0)))
        closed = []
        for s in socks:
            try:
                s.recv(1)
                closed.append(time.monotonic() - t0)
            except OSError:
                pass
            s.close()
        held = f"closed after {min(closed):.2f}–{max(closed):.2f} s" if closed else "none closed within 30 s"
        print(f"{args.http}: {args.idle} idle connections (BPTT_HEADER_TIMEOUT={args.header_timeout}): {len(closed)} {held}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
