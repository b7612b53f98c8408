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

from uvicorn.protocols.http.h11_impl import H11Protocol as _H11

from .api.errors import ApiError, error_body

EXPECTED = "a well-formed HTTP/1.1 request (request line, headers, a body framed by content-length or chunked)"


def _error_json(msg: str) -> bytes:
    """The 400 body: what the parser said, when it said more than uvicorn's message (the
    parser's exception is the one being handled while uvicorn calls send_400_response)."""
    exc = sys.exc_info()[1]
    detail = str(exc).strip() if exc is not None else ""
    got = f"bytes the HTTP parser refused ({detail})" if detail else f"bytes the HTTP parser refused ({msg})"
    return error_body(ApiError("request", EXPECTED, got[:200], status=400))


class H11Protocol(_H11):
    def send_400_response(self, msg: str) -> None:
        body = _error_json(msg)
        head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
        self.transport.write(head + body)
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools
except ImportError:  # httptools not installed (uvicorn without [standard]): h11 only
    HttpToolsProtocol = None
else:
    class HttpToolsProtocol(_HttpTools):  # type: ignore[no-redef]
        def send_400_response(self, msg: str) -> None:
            body = _error_json(msg)
            content = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ])
            self.transport.write(b"".join(content))
            self.transport.close()

#: what ``bptt-explorer`` passes to uvicorn's ``http``: httptools where installed, as uvicorn's auto
AUTO = "app.framing:HttpToolsProtocol" if HttpToolsProtocol is not None else "app.framing:H11Protocol"
