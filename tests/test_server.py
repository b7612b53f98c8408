"""The real server: uvicorn in a subprocess, called over HTTP with httpx."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
from server import running_server


def test_real_server_round_trip():
    with running_server() as base, httpx.Client(base_url=base, timeout=30) as http:
        presets = http.get("/api/v1/presets").json()
        body = http.get(f"/api/v1/presets/{presets[0]['id']}").json()
        r = http.post("/api/v1/bptt", content=orjson.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 200
        d = orjson.loads(r.content)
        assert d["shapes"]["T"] == len(body["inputs"])
        assert "compute;dur=" in r.headers["server-timing"]
        bad = http.post("/api/v1/bptt", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
        over = http.post("/api/v1/bptt", json={**body, "inputs": [[1.0]] * 5000})
        assert over.status_code == 422 and "BPTT_MAX_T" in over.json()["error"]["message"]
        assert http.get("/").status_code == 200


def test_two_workers_serve_and_stop_cleanly():
    """bptt-explorer --workers 2: two processes, each with its own SO_REUSEPORT socket."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from server import ROOT, free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--workers", "2", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.2)
        body = httpx.get(f"http://127.0.0.1:{port}/api/v1/presets/note-003").json()
        for _ in range(20):  # new connections each time: the kernel spreads them over the workers
            assert httpx.post(f"http://127.0.0.1:{port}/api/v1/bptt", json=body).status_code == 200
        children = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True, text=True).stdout.split()
        assert len(children) == 2  # the workers (multiprocessing's resource tracker is a third child)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_a_stalled_body_is_answered_408_not_held():
    """A client that declares 1,000 bytes and sends one gets 408 after BPTT_BODY_TIMEOUT, in
    the error shape, and the connection is closed; the server keeps serving meanwhile."""
    import socket
    import time
    from urllib.parse import urlsplit

    with running_server(env={"BPTT_BODY_TIMEOUT": "1"}) as base:
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                      b"content-length: 1000\r\n\r\n{")
            t0 = time.monotonic()
            assert httpx.get(base + "/healthz").status_code == 200  # not blocked by the stalled one
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
            waited = time.monotonic() - t0
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), head
        err = orjson.loads(body)["error"]
        assert err["field"] == "body" and "BPTT_BODY_TIMEOUT" in err["expected"] and err["got"] == "1 byte of the 1000 declared"
        assert 0.8 < waited < 5


def test_a_client_that_leaves_mid_body_is_no_defect():
    """A client that closes its connection halfway through the body leaves no traceback (it was
    logged as an unhandled ClientDisconnect: a 500 "this is a bug"), and the server goes on."""
    import socket
    from urllib.parse import urlsplit

    log: list[str] = []
    with running_server(env={"BPTT_LOG_LEVEL": "info"}, log=log) as base:
        url = urlsplit(base)
        for _ in range(3):
            with socket.create_connection((url.hostname, url.port), timeout=10) as s:
                s.sendall(b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: 1000\r\n\r\n{\"inputs\": [")
        assert httpx.get(base + "/healthz").status_code == 200
    assert "Traceback" not in log[0] and "ClientDisconnect" not in log[0], log[0][-3000:]


def _raw_exchange(base: str, raw: bytes) -> tuple[str, dict, bytes]:
    """Send raw bytes, read until the server closes: status line, headers, body."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}, body


@pytest.mark.parametrize("protocol", ["HttpToolsProtocol", "H11Protocol"])
def test_malformed_http_gets_the_one_error_shape(protocol):
    """Bytes that are not HTTP never reach the app; the server's protocol answers them itself,
    in the API's error shape (uvicorn's own answer is plain text), and closes the connection.
    A well-formed request on the same server is served as usual."""
    with running_server(args=("--http", f"app.framing:{protocol}")) as base:
        for raw in (b"GARBAGE\x00\x01 / HTTP/1.1\r\n\r\n",
                    b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"):
            status, headers, body = _raw_exchange(base, raw)
            assert status.startswith("HTTP/1.1 400"), (raw, status, body)
            assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
            err = orjson.loads(body)["error"]
            assert err["status"] == 400 and err["field"] == "request", err
            assert "well-formed HTTP/1.1" in err["expected"], err
            # the parser's own complaint, not uvicorn's catch-all "Invalid HTTP request received."
            assert "refused (" in err["got"] and "Invalid HTTP request received" not in err["got"], err
            assert "chunk" in err["got"].lower() or b"chunked" not in raw, err
            assert "date" in headers, headers  # uvicorn's own headers, as on every response
        assert httpx.get(base + "/api/v1/presets", timeout=10).status_code == 200


@pytest.mark.parametrize("protocol", ["HttpToolsProtocol", "H11Protocol", "uvicorn-h11"])
def test_a_slow_body_after_a_first_answer_on_the_same_connection_is_timed_out(protocol):
    """A keep-alive connection: one request answered, then a second whose body stalls. It gets
    408 after BPTT_BODY_TIMEOUT and the connection is closed, whichever HTTP protocol serves it
    (under --http h11 the second body was waited for without end)."""
    import contextlib
    import socket
    import time
    from urllib.parse import urlsplit

    http = "h11" if protocol == "uvicorn-h11" else f"app.framing:{protocol}"
    body = orjson.dumps({"inputs": [[1.0], [0.5]], "targets": [[0.0], [1.0]], "init": {"seed": 1, "hidden": 2}})
    head = (b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n")
    with running_server(env={"BPTT_BODY_TIMEOUT": "1"}, args=("--http", http)) as base:
        url = urlsplit(base)
        with socket.create_connection((url.hostname, url.port), timeout=15) as s:
            s.sendall(head % len(body) + body)
            first = b""
            while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
                first += s.recv(65536)
            assert first.startswith(b"HTTP/1.1 200"), first[:200]
            time.sleep(0.3)
            s.sendall(head % 1000 + b"{")  # the second request's body comes a byte at a time
            t0 = time.monotonic()
            reply = b""
            s.settimeout(0.2)
            while time.monotonic() - t0 < 10:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    # a byte every 0.2 s until 0.8 s, before the server's 1 s can end: a byte
                    # that reaches the closed socket is answered by a reset, which discards the
                    # 408 still unread here (the clean-clone CI's ConnectionResetError)
                    if time.monotonic() - t0 < 0.8:
                        with contextlib.suppress(OSError):
                            s.sendall(b" ")
                    continue
                if not chunk:
                    break
                reply += chunk
            waited = time.monotonic() - t0
    status, _, rest = reply.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408"), reply[:300]
    err = orjson.loads(rest)["error"]
    assert err["code"] == "body_timeout" and err["params"]["setting"] == "BPTT_BODY_TIMEOUT"
    assert 0.8 < waited < 8, waited
