"""Connection-level limits against a real server over real sockets: idle and half-sent request
heads time out, heads are bounded, keep-alive ends, and what is not HTTP gets the error shape
with the security headers, for every HTTP protocol uvicorn offers that is installed."""

from __future__ import annotations

import importlib
import socket
import time
from urllib.parse import urlsplit

import orjson
import pytest
from server import running_server

from app import framing

PROTOCOLS = ["HttpToolsProtocol", "H11Protocol"]
LIMITS = {"BPTT_HEADER_TIMEOUT": "1", "BPTT_MAX_HEADER_BYTES": "32768"}


def _connect(base: str) -> socket.socket:
    url = urlsplit(base)
    return socket.create_connection((url.hostname, url.port), timeout=15)


def _read_all(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _parse(reply: bytes) -> tuple[int, dict, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return int(status.split()[1]), {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}, body


def _server(protocol: str, **kw):
    return running_server(env=LIMITS, args=("--http", f"app.framing:{protocol}"), **kw)


def test_framing_covers_every_http_protocol_uvicorn_offers():
    """uvicorn's own list (uvicorn --help: --http auto|h11|httptools|zttp). Each one installed
    here must have its subclass in app/framing.py; one that is not installed (zttp) is named
    in the README as running without these guards. A new protocol fails this test."""
    from uvicorn.config import HTTP_PROTOCOLS

    covered = {framing.H11Protocol.__mro__[2]} | (
        set() if framing.HttpToolsProtocol is None else {framing.HttpToolsProtocol.__mro__[2]})
    uncovered_known = {"zttp"}
    for name, target in HTTP_PROTOCOLS.items():
        module, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError:
            assert name in uncovered_known, f"uvicorn offers --http {name}: decide whether app/framing.py covers it"
            continue
        assert cls in covered or name in uncovered_known, f"--http {name} ({target}) is not covered by app/framing.py"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_idle_connection_is_closed_after_the_header_timeout(protocol):
    """4,000 idle connections were held 75 s (for ever): uvicorn times a connection out only
    between requests."""
    with _server(protocol) as base, _connect(base) as s:
        t0 = time.monotonic()
        assert _read_all(s) == b""  # closed, nothing said: nothing was asked
        assert 0.8 < time.monotonic() - t0 < 5


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_half_a_header_is_answered_408_and_closed(protocol):
    with _server(protocol) as base, _connect(base) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: abc")
        t0 = time.monotonic()
        status, headers, body = _parse(_read_all(s))
        assert 0.8 < time.monotonic() - t0 < 5
        assert status == 408 and headers["connection"] == "close"
        assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
        err = orjson.loads(body)["error"]
        assert err["status"] == 408 and "BPTT_HEADER_TIMEOUT" in err["expected"], err
        assert err["code"] == "header_timeout" and err["params"] == {"setting": "BPTT_HEADER_TIMEOUT", "limit": 1.0}, err


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_slow_header_drip_is_cut_at_the_timeout(protocol):
    """A byte every 0.2 s: each one used to restart nothing, and nothing ever ended it."""
    with _server(protocol) as base, _connect(base) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        try:
            for _ in range(50):  # 10 s at most
                s.sendall(b"X")
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - t0 < 4


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_500_mb_header_stream_is_cut_off_early_with_bounded_memory(protocol):
    """500 MB of one header grew a worker by 480 MB; now the head is refused 431 past
    BPTT_MAX_HEADER_BYTES and the connection closed: the sender gets no further."""
    procs: list = []
    with _server(protocol, procs=procs) as base, _connect(base) as s:
        pid = procs[0].pid
        rss0 = _rss_kb(pid)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk, sent, refused = b"a" * 65536, 0, False
        deadline = time.monotonic() + 20  # bounded even against a server that takes it all
        try:
            while sent < 500 * 2**20 and time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            refused = True
        assert refused and sent < 16 * 2**20, sent  # socket buffers hold a few MB at most
        grown = _rss_kb(pid) - rss0
        assert grown < 20_000, f"the worker grew by {grown} kB"
        reply = _read_all(s)
        if reply:  # the 431 may be lost to the reset, as with any server that closes on a sender
            status, headers, body = _parse(reply)
            assert status == 431 and "BPTT_MAX_HEADER_BYTES" in orjson.loads(body)["error"]["expected"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_over_the_limit_is_431_and_one_under_it_is_served(protocol):
    with _server(protocol) as base:
        for size, status in ((20_000, 200), (40_000, 431)):
            with _connect(base) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * size + b"\r\nConnection: close\r\n\r\n")
                got, headers, body = _parse(_read_all(s))
                assert got == status, (size, got, body[:200])
                assert "content-security-policy" in headers
                if status == 431:
                    err = orjson.loads(body)["error"]
                    assert err["field"] == "headers" and "32768 bytes" in err["expected"], err
                    assert err["code"] == "headers_too_large" and err["params"]["limit"] == 32768, err


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_body_in_the_same_read_as_its_head_is_not_counted_as_head(protocol):
    """A 300 KB body sent with its head (and a second request pipelined behind it) is served:
    only head bytes count against BPTT_MAX_HEADER_BYTES."""
    body = (b'{"inputs": [[0.5], [1.0]], "targets": [[0.0], [1.0]], "init": {"seed": 1, "hidden": 2},'
            + b" " * 300_000 + b'"detail": "full"}')
    head = b"POST /api/v1/bptt HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    with _server(protocol) as base, _connect(base) as s:
        s.sendall(head + body + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = _read_all(s)
        assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
        assert reply.count(b"HTTP/1.1 200") == 2, reply[-300:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_http_carries_the_security_headers(protocol):
    with _server(protocol) as base, _connect(base) as s:
        s.sendall(b"GARBAGE\x00\x01 / HTTP/1.1\r\n\r\n")
        status, headers, body = _parse(_read_all(s))
        assert status == 400 and headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
        err = orjson.loads(body)["error"]
        assert err["field"] == "request" and err["code"] == "malformed_http", err


def test_bptt_explorer_ends_idle_keep_alive_connections():
    """BPTT_KEEP_ALIVE_TIMEOUT is uvicorn's timeout_keep_alive, passed by bptt-explorer."""
    with running_server(env={**LIMITS, "BPTT_KEEP_ALIVE_TIMEOUT": "1", "BPTT_HEADER_TIMEOUT": "30"}, cli=True) as base, \
            _connect(base) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        _read_all(s)
        assert 0.8 < time.monotonic() - t0 < 5


def test_bptt_explorer_times_out_an_idle_connection():
    with running_server(env={**LIMITS, "BPTT_HEADER_TIMEOUT": "1"}, cli=True) as base, _connect(base) as s:
        t0 = time.monotonic()
        assert _read_all(s) == b""
        assert 0.8 < time.monotonic() - t0 < 5
