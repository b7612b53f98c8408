"""A real nginx (Debian's package) in front of a test server, for the proxy tests: started
from a config in a temporary folder (its logs and temp files there too), on free ports.

Without nginx the tests that use it skip with the reason, except under CI=true, where a
missing nginx is a failure (.ci/run installs it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from server import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def require_nginx() -> str:
    if NGINX is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"proxy tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return NGINX


@contextlib.contextmanager
def running_nginx(tmp: Path, servers: str):
    """nginx with the given server blocks (``{upstream}``-free: write proxy_pass yourself)."""
    nginx = require_nginx()
    for d in ("logs", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
error_log {tmp}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/logs/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{servers}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(conf), "-g", f"daemon off; pid {tmp}/nginx.pid;"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start")
        time.sleep(0.05)


__all__ = ["free_port", "require_nginx", "running_nginx", "wait_listening"]
