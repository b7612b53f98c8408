"""One error shape for every 4xx and 5xx:

    {"error": {"status": 422, "code": "wrong_shape", "params": {},
               "field": "params.W_hh", "expected": "4×4 (hidden×hidden)",
               "got": "4×3", "message": "params.W_hh: expected 4×4 (hidden×hidden), got 4×3"}}

``field`` is a path into the request (dots for keys, [i] for indices), or "body", or null
for errors that concern no field (unknown route); ``expected``/``got`` may be null. ``code``
is a stable snake_case name (CODES) and ``params`` the numbers and names a translation needs
(e.g. {"setting": "BPTT_MAX_T", "limit": 1024, "got": 2000}), so that a client can say the
error in its own language without reading the English.
"""

from __future__ import annotations

import math
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


#: every error code, what it means (the README's table; a test checks both ways)
CODES = {
    "invalid_json": "the body is not JSON",
    "empty_body": "the body is empty",
    "malformed_http": "the bytes are not a well-formed HTTP/1.1 request",
    "wrong_type": "a field holds the wrong kind of value (a string for a number, …)",
    "wrong_shape": "an array has the wrong shape, is ragged or empty",
    "not_finite": "a number is NaN, Infinity or beyond float64",
    "not_one_of": "a value is not one of the options (params.options)",
    "out_of_range": "a number is outside its range (params.min, params.max)",
    "unknown_field": "a field or parameter name is not known (params.name, params.fields)",
    "missing": "a required field is missing",
    "conflict": "two fields that cannot go together",
    "over_limit": "a size over a limit of the server (params.setting, params.limit, params.got)",
    "body_too_large": "the body is over BPTT_MAX_BODY_BYTES (params.setting, params.limit)",
    "body_incomplete": "the client went away before sending the whole body",
    "body_timeout": "the body did not all come within BPTT_BODY_TIMEOUT (params.setting, params.limit)",
    "header_timeout": "the request head did not all come within BPTT_HEADER_TIMEOUT (params.setting, params.limit)",
    "headers_too_large": "the request head is over BPTT_MAX_HEADER_BYTES (params.setting, params.limit)",
    "wrong_content_type": "the body is not sent as application/json",
    "not_acceptable": "Accept allows neither application/json nor application/x-npz (params.options)",
    "content_encoding": "the body is compressed (gzip, …): send it as it is",
    "rate_limited": "too many requests or too much work a minute (params.setting, params.limit, params.retry_after)",
    "busy": "the worker is at BPTT_MAX_CONCURRENT large requests: try again (params.setting, params.limit, params.retry_after)",
    "not_found": "no such route or preset",
    "method_not_allowed": "the route does not take this method",
    "http_error": "another HTTP-level refusal",
    "invalid_value": "a value is invalid (a path or query parameter, an option of a training run)",
    "internal_error": "a defect of the server: please report it",
}


def _capped(v: Any) -> Any:
    """A param as JSON can carry it: strings (and lists of them) capped like the pieces, an
    integer beyond 64 bits (a request may send 2**64 as a size) as its digits, a float that is
    not finite as null."""
    if isinstance(v, str):
        return cap(v)
    if isinstance(v, list):
        return [_capped(x) for x in v[:64]]
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
        try:
            return cap(str(v))
        except ValueError:  # more digits than Python converts
            return f"an integer of about {int(v.bit_length() * 0.30103)} digits"
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class ApiError(Exception):
    def __init__(
        self, field: str | None, expected: str | None = None, got: str | None = None,
        *, status: int = 422, message: str | None = None, headers: dict[str, str] | None = None,
        code: str = "invalid_value", params: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.params = {k: _capped(v) for k, v in (params or {}).items()}
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
                "status": self.status, "code": self.code, "params": self.params, "field": self.field,
                "expected": self.expected, "got": self.got, "message": self.message,
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
        return orjson.dumps({"error": {k: _text(v) for k, v in body["error"].items()}
                             | {"params": {k: _text(v) for k, v in body["error"]["params"].items()}}})


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
            code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error"),
        ))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # a defect, not bad input (those are 4xx): still the one error shape, and uvicorn logs it
        return error_response(ApiError(None, status=500, message="internal error: this is a bug, please report it",
                                       code="internal_error"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        field = _loc(tuple(first.get("loc", ())))
        got = first.get("input")
        return error_response(
            ApiError(field, first.get("msg", "invalid value"), None if got is None else repr(got)[:80], code="invalid_value")
        )
