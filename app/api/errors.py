"""One error shape for every 4xx:

    {"error": {"status": 422, "field": "params.W_hh", "expected": "4×4 (hidden×hidden)",
               "got": "4×3", "message": "params.W_hh: expected 4×4 (hidden×hidden), got 4×3"}}

``field`` is a path into the request (dots for keys, [i] for indices), or "body", or null
for errors that concern no field (unknown route); ``expected``/``got`` may be null.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response


#: the longest piece of text (field, expected, got) an error quotes; longer ones are cut, with
#: their length said: an error never echoes a 7 MB key or a million-digit number whole
MAX_PIECE = 300
#: the longest message (it is made of the pieces, and a sentence around them)
MAX_MESSAGE = 4 * MAX_PIECE


def cap(text: str | None, limit: int = MAX_PIECE) -> str | None:
    """text, or its start with "… (N characters)" when it is longer than limit."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[: limit - 40]}… ({len(text):,} characters)"


class ApiError(Exception):
    def __init__(
        self, field: str | None, expected: str | None = None, got: str | None = None,
        *, status: int = 422, message: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        if message is not None and field and len(field) > MAX_PIECE:
            message = message.replace(field, cap(field))  # a message built around a huge key
        self.field = field = cap(field)
        self.expected = expected = cap(expected)
        self.got = got = cap(got)
        self.headers = headers
        if message is None:
            parts = [f"expected {expected}" if expected else None, f"got {got}" if got else None]
            message = ", ".join(p for p in parts if p)
            if field:
                message = f"{field}: {message}"
        self.message = message = cap(message, MAX_MESSAGE)
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "status": self.status, "field": self.field, "expected": self.expected,
                "got": self.got, "message": self.message,
            }
        }


def _text(v: Any) -> Any:
    """v, with lone surrogates (a body may escape them: "\\ud800") written as the text \\ud800,
    which UTF-8 and so JSON can carry."""
    return v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v


def error_body(err: ApiError) -> bytes:
    """The error as JSON bytes."""
    body = err.body()
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # a string from the request that UTF-8 cannot hold
        return orjson.dumps({"error": {k: _text(v) for k, v in body["error"].items()}})


def error_response(err: ApiError) -> Response:
    return Response(error_body(err), status_code=err.status, media_type="application/json", headers=err.headers)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in ("body", "query", "path") and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        expected = got = field = None
        if exc.status_code == 404:
            field, expected, got = "path", "a route of this app (listed at /docs)", request.url.path
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get("Allow")
            field, expected, got = "method", allowed, request.method
        return error_response(ApiError(
            field, expected, got, status=exc.status_code, message=str(exc.detail), headers=exc.headers,
        ))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # a defect, not bad input (those are 4xx): still the one error shape, and uvicorn logs it
        return error_response(ApiError(None, status=500, message="internal error: this is a bug, please report it"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        field = _loc(tuple(first.get("loc", ())))
        got = first.get("input")
        return error_response(
            ApiError(field, first.get("msg", "invalid value"), None if got is None else repr(got)[:80])
        )
