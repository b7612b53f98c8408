"""Security headers and an optional per-client rate limit, as plain ASGI middleware
(no per-request coroutine wrappers beyond what is needed: the classroom path is hot)."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from .api.errors import ApiError, error_body
from .settings import Settings


def content_security_policy(s: Settings) -> str:
    """script-src 'self': no inline script anywhere (the page and /docs load files only).
    style-src allows inline styles because Plotly sets them on its SVG elements."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {s.frame_ancestors}",
    ])


def path_only(location: bytes) -> bytes:
    """A Location as a path (with its query): Starlette builds redirects (a missing or extra
    trailing slash, a static folder) from the request's Host header, so a request with
    ``Host: evil.example`` would be sent there. The app never redirects to another site."""
    if not (location.startswith(b"http://") or location.startswith(b"https://") or location.startswith(b"//")):
        return location
    parts = urlsplit(location)
    path = parts.path or b"/"
    if path.startswith(b"//"):  # a path-only "//host/x" would again be another host
        path = b"/" + path.lstrip(b"/")
    return path + (b"?" + parts.query if parts.query else b"")


def security_headers(s: Settings) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (the app's, and the protocol's own in app/framing.py)."""
    return [
        (b"content-security-policy", content_security_policy(s).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """The security headers on every response, and redirects by path only. It wraps the
    whole application, outside Starlette's ServerErrorMiddleware (see ``app.main.App``), so
    that a 500, a 429 of the rate limit and every 4xx carry them too."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.headers = security_headers(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if 300 <= message["status"] < 400:
                    headers = [(k, path_only(v) if k.lower() == b"location" else v) for k, v in headers]
                message = {**message, "headers": [*headers, *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Buckets:
    """Token buckets per client address: ``per_minute`` units a minute, with bursts of one
    minute's worth. A charge is admitted when the bucket holds it (or is full: one charge
    larger than a minute's worth is admitted and leaves the client in debt, so its next one
    waits); else the seconds to wait. In memory, per worker process."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.pruned = 0.0

    def charge(self, client: str, cost: float) -> int:
        """0 when admitted (and charged), else the whole seconds until it would be."""
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        need = min(cost, self.burst)
        if tokens < need:
            self.buckets[client] = (tokens, now)
            return max(1, math.ceil((need - tokens) / self.rate))
        self.buckets[client] = (tokens - cost, now)
        if len(self.buckets) > 50_000 and now - self.pruned > 10.0:  # forget full buckets, at most
            self.pruned = now  # every 10 s, so that many recent clients do not cost O(n) per request
            cutoff = now - 2 * self.burst / max(self.rate, 1e-9)
            self.buckets = {k: v for k, v in self.buckets.items() if v[1] > cutoff}
        return 0


def client_address(scope) -> str:
    """The client's address: the peer's, or X-Forwarded-For's when the peer is a proxy listed
    in BPTT_FORWARDED_ALLOW_IPS (uvicorn's ProxyHeadersMiddleware has then rewritten it)."""
    return (scope.get("client") or ("?", 0))[0]


class RateLimit:
    """At most ``per_minute`` POST requests under /api/ a minute per client address
    (BPTT_RATE_LIMIT_PER_MINUTE), answered 429 before the body is read; 0 turns it off."""

    def __init__(self, app, per_minute: int) -> None:
        self.app = app
        self.per_minute = per_minute
        self.buckets = Buckets(per_minute)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or "/api/" not in scope["path"]:
            return await self.app(scope, receive, send)
        client = client_address(scope)
        wait = self.buckets.charge(client, 1.0)
        if wait:
            err = ApiError(
                None, f"at most {self.per_minute} requests a minute (limit BPTT_RATE_LIMIT_PER_MINUTE)", "more",
                status=429, message=f"too many requests from {client}: try again in {wait} s",
                code="rate_limited", params={"setting": "BPTT_RATE_LIMIT_PER_MINUTE", "limit": self.per_minute,
                                             "retry_after": wait},
            )
            body = error_body(err)
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", str(wait).encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class WorkBudget:
    """At most ``per_minute`` units of estimated work (those of BPTT_MAX_WORK) a minute per
    client address (BPTT_RATE_LIMIT_WORK_PER_MINUTE): charged after parsing, before computing,
    so that a few maximal requests cannot take a worker from the other students."""

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.buckets = Buckets(per_minute)

    def charge(self, scope, work: float) -> None:
        client = client_address(scope)
        wait = self.buckets.charge(client, work)
        if wait:
            raise ApiError(
                "body", f"at most {self.per_minute:.3g} estimated operations a minute per client "
                "(limit BPTT_RATE_LIMIT_WORK_PER_MINUTE)", f"{work:.3g} more",
                status=429, headers={"retry-after": str(wait)}, code="rate_limited",
                params={"setting": "BPTT_RATE_LIMIT_WORK_PER_MINUTE", "limit": self.per_minute, "got": work,
                        "retry_after": wait},
                message=f"too much work asked from {client}: try again in {wait} s "
                f"(this request is estimated at {work:.3g} operations)",
            )
