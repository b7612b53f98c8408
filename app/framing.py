"""uvicorn's HTTP/1.1 protocols with the connection-level guards uvicorn lacks, and the API's
one error shape for what never reaches the app.

What uvicorn 0.54 offers (``uvicorn --help``: ``--http auto|h11|httptools|zttp``) and does not:

- no timeout for a request head: a connection that never sends a byte, or sends half a
  header line, is held for ever (its keep-alive timer runs only between requests);
- no bound on a request head with httptools (the default where installed): 500 MB of
  headers grew a worker by 480 MB; h11 has one (``h11_max_incomplete_event_size``);
- bytes that are not HTTP are answered in plain text, without the security headers.

So ``bptt-explorer`` runs these subclasses (httptools where installed, as uvicorn's
``auto``): a request head must be complete within BPTT_HEADER_TIMEOUT seconds of the
connection opening or of its first byte (408, or a silent close when nothing came), and be at
most BPTT_MAX_HEADER_BYTES (431); malformed requests get 400; all three in the error shape,
with the security headers, and the connection closed. Plain uvicorn gets the same with
``--http app.framing:HttpToolsProtocol`` (or ``:H11Protocol``). uvicorn's zttp protocol is
not covered (it is not installed here; tests/test_protocol.py fails when an importable
protocol appears that this module does not cover).
"""

from __future__ import annotations

import sys
from functools import lru_cache

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11

try:
    import httptools
except ImportError:
    httptools = None

from .api.errors import ApiError, error_body
from .security import security_headers
from .settings import get_settings

EXPECTED = "a well-formed HTTP/1.1 request (request line, headers, a body framed by content-length or chunked)"
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}

#: the exceptions of the HTTP parsers: only their text describes the request
PARSER_ERRORS: tuple[type[BaseException], ...] = (h11.RemoteProtocolError,) + (
    () if httptools is None else (httptools.HttpParserError,))


@lru_cache(maxsize=1)
def _fixed_headers() -> bytes:
    """The security headers, as they go on the wire (the settings are fixed per process)."""
    return b"".join(k + b": " + v + b"\r\n" for k, v in security_headers(get_settings()))


def _response(err: ApiError, default_headers=()) -> bytes:
    body = error_body(err)
    head = [b"HTTP/1.1 %d %s\r\n" % (err.status, REASONS[err.status])]
    for name, value in default_headers:  # date, server: as uvicorn sends them
        head.extend([name, b": ", value, b"\r\n"])
    head.append(b"content-type: application/json\r\ncontent-length: " + str(len(body)).encode("ascii")
                + b"\r\nconnection: close\r\n" + _fixed_headers() + b"\r\n")
    return b"".join(head) + body


def _too_large(limit: int, got: str) -> ApiError:
    return ApiError("headers", f"a request head (request line and headers) of at most {limit} bytes "
                    "(limit BPTT_MAX_HEADER_BYTES)", got, status=431,
                    code="headers_too_large", params={"setting": "BPTT_MAX_HEADER_BYTES", "limit": limit})


def _parser_error(msg: str) -> ApiError:
    """What the parser said, when it said more than uvicorn's message (uvicorn calls
    send_400_response while handling the parser's exception; any other exception's text is
    not the client's business). h11 hints 431 for a head over its buffer limit."""
    exc = sys.exc_info()[1]
    if getattr(exc, "error_status_hint", 400) == 431:
        return _too_large(get_settings().max_header_bytes, f"more than {get_settings().max_header_bytes} bytes")
    detail = str(exc).strip() if isinstance(exc, PARSER_ERRORS) else ""
    return ApiError("request", EXPECTED, f"bytes the HTTP parser refused ({detail or msg})", status=400,
                    code="malformed_http")


class _HeadGuard:
    """The request-head timer and the error answers, shared by both protocols. A subclass
    says whether a request head is under way (``_in_head``) and counts its bytes."""

    def _guard_init(self) -> None:
        s = get_settings()
        self.header_timeout = s.header_timeout
        self.max_header_bytes = s.max_header_bytes
        self.head_timer = None
        self.head_bytes = 0

    def _arm(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _idle_for_a_head(self) -> bool:
        """No request of this connection is being answered (so a head is what it owes)."""
        return self.cycle is None or self.cycle.response_complete

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self._idle_for_a_head():
            return
        if self._in_head():  # half a head: say why; a connection that sent nothing is just closed
            self._answer(ApiError(
                "request", f"a complete request head within {self.header_timeout:g} s (limit BPTT_HEADER_TIMEOUT)",
                "part of a request head, then nothing", status=408,
                code="header_timeout", params={"setting": "BPTT_HEADER_TIMEOUT", "limit": self.header_timeout}))
        else:
            self.transport.close()

    def _answer(self, err: ApiError) -> None:
        self._disarm()
        self.transport.write(_response(err, self.server_state.default_headers))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing():  # answered already (a head over the limit)
            return
        err = _parser_error(msg)
        self._answer(err)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


class H11Protocol(_HeadGuard, _H11):
    """h11 bounds the head itself (a buffer of BPTT_MAX_HEADER_BYTES, 431 beyond it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_bytes)

    def _in_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a request: its head has BPTT_HEADER_TIMEOUT
            # h11's buffer limit holds only while the head is incomplete: a whole head that
            # comes in one read is parsed whatever its size. Measure it here.
            end = data.find(b"\r\n\r\n")
            size = len(self.conn.trailing_data[0]) + (end if end >= 0 else len(data))
            if size > self.max_header_bytes:
                self._answer(_too_large(self.max_header_bytes, f"{size} bytes" if end >= 0 else f"more than {size} bytes"))
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()


if httptools is None:  # uvicorn without [standard]: h11 only
    HttpToolsProtocol = None
else:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools

    class HttpToolsProtocol(_HeadGuard, _HttpTools):  # type: ignore[no-redef]
        """httptools hands the head over in pieces and keeps no limit: bytes are counted
        while a head is under way (between the parser's on_message_begin and
        on_headers_complete) and the complete head is measured once more, exactly."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._guard_init()
            self.heading = False

        def _in_head(self) -> bool:
            return self.heading

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = self.heading
            if self._idle_for_a_head():
                self._arm()
            super().data_received(data)
            if self.transport.is_closing():
                return
            if before and self.heading:  # the whole of data went into one unfinished head
                self.head_bytes += len(data)
                if self.head_bytes > self.max_header_bytes:
                    self._answer(_too_large(self.max_header_bytes, f"more than {self.head_bytes} bytes"))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.heading = True
            self.head_bytes = 0
            self._arm()

        def on_headers_complete(self) -> None:
            self.heading = False
            self._disarm()
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers) + 16
            if size > self.max_header_bytes:
                self._answer(_too_large(self.max_header_bytes, f"{size} bytes"))
                raise httptools.HttpParserCallbackError("request head too large")
            super().on_headers_complete()


#: what ``bptt-explorer`` passes to uvicorn's ``http``: httptools where installed, as uvicorn's auto
AUTO = "app.framing:HttpToolsProtocol" if HttpToolsProtocol is not None else "app.framing:H11Protocol"
