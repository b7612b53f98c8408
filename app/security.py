"""Security headers and an optional per-client rate limit, as plain ASGI middleware
(no per-request coroutine wrappers beyond what is needed: the classroom path is hot)."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

import orjson

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


class SecurityHeaders:
    """The security headers on every response, and redirects by path only. It wraps the
    whole application, outside Starlette's ServerErrorMiddleware (see ``app.main.App``), so
    that a 500, a 429 of the rate limit and every 4xx carry them too."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(settings).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

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


class RateLimit:
    """Token bucket per client address for POST requests under /api/: ``per_minute`` requests a
    minute with bursts of the same size. In memory, per worker process; 0 turns it off."""

    def __init__(self, app, per_minute: int) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.pruned = 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or "/api/" not in scope["path"]:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / self.rate)
            body = orjson.dumps({"error": {
                "status": 429, "field": None, "expected": f"at most {int(self.burst)} requests a minute (BPTT_RATE_LIMIT_PER_MINUTE)",
                "got": "more", "message": f"too many requests from {client}: try again in {wait} s",
            }})
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", str(wait).encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        self.buckets[client] = (tokens - 1.0, now)
        if len(self.buckets) > 50_000 and now - self.pruned > 10.0:  # forget full buckets, at most
            self.pruned = now  # every 10 s, so that many recent clients do not cost O(n) per request
            cutoff = now - self.burst / max(self.rate, 1e-9)
            self.buckets = {k: v for k, v in self.buckets.items() if v[1] > cutoff}
        await self.app(scope, receive, send)
