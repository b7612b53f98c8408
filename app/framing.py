"""uvicorn's HTTP protocols, answering bytes that are not a well-formed HTTP/1.1 request (a
broken request line or header, a bad chunk size) with the API's one error shape, as JSON,
instead of uvicorn's plain-text "Invalid HTTP request received.".

Such a request never reaches the app, so the app's error handlers cannot answer it: the
protocol writes the answer itself and closes the connection, as uvicorn does. ``bptt-explorer``
runs with these; ``uvicorn app.main:app --http app.framing:HttpToolsProtocol`` (or
``:H11Protocol``) gives the same with plain uvicorn.
"""

from __future__ import annotations

import sys

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11

try:
    import httptools
except ImportError:
    httptools = None

from .api.errors import ApiError, error_body

EXPECTED = "a well-formed HTTP/1.1 request (request line, headers, a body framed by content-length or chunked)"


#: the exceptions of the HTTP parsers: only their text describes the request
PARSER_ERRORS: tuple[type[BaseException], ...] = (h11.RemoteProtocolError,) + (
    () if httptools is None else (httptools.HttpParserError,))


def _error_json(msg: str) -> bytes:
    """The 400 body: what the parser said, when it said more than uvicorn's message (uvicorn
    calls send_400_response while handling the parser's exception; any other exception's text
    is not the client's business)."""
    exc = sys.exc_info()[1]
    detail = str(exc).strip() if isinstance(exc, PARSER_ERRORS) else ""
    got = f"bytes the HTTP parser refused ({detail or msg})"
    return error_body(ApiError("request", EXPECTED, got[:200], status=400))


def _response_400(body: bytes, default_headers: list[tuple[bytes, bytes]] = ()) -> bytes:
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    for name, value in default_headers:  # date, server: as uvicorn sends them
        head.extend([name, b": ", value, b"\r\n"])
    head.append(b"content-type: application/json\r\ncontent-length: " + str(len(body)).encode("ascii")
                + b"\r\nconnection: close\r\n\r\n")
    return b"".join(head) + body


class H11Protocol(_H11):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(_response_400(_error_json(msg), self.server_state.default_headers))
        self.transport.close()


if httptools is None:  # uvicorn without [standard]: h11 only
    HttpToolsProtocol = None
else:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools

    class HttpToolsProtocol(_HttpTools):  # type: ignore[no-redef]
        def send_400_response(self, msg: str) -> None:
            self.transport.write(_response_400(_error_json(msg), self.server_state.default_headers))
            self.transport.close()


#: what ``bptt-explorer`` passes to uvicorn's ``http``: httptools where installed, as uvicorn's auto
AUTO = "app.framing:HttpToolsProtocol" if HttpToolsProtocol is not None else "app.framing:H11Protocol"
