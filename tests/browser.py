"""Shared helpers for the browser tests and the page benchmark: headless Chromium through
Playwright, and small waits on the page's own signals (document.body.dataset.renders,
window.bptt).

The page is served with ``Content-Security-Policy: script-src 'self'`` (app/security.py), so a
string *expression* given to ``page.wait_for_function`` fails under Playwright's polling
("EvalError: ... 'unsafe-eval' is not an allowed source"): every predicate here is a function
(``"(arg) => ..."``), which Playwright calls without eval. We do not use ``bypass_csp``: a CSP
violation by the page itself must show up as a console error.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

CHROMIUM = os.environ.get("BPTT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1366, "height": 768}
DEBOUNCE_MS = 60  # static/js/main.js DEBOUNCE_MS


class BrowserMissing(RuntimeError):
    """Chromium (or Playwright) is not usable here."""


def launch(playwright):
    """Headless Debian Chromium; BrowserMissing with the reason when it cannot start."""
    if not os.path.exists(CHROMIUM):
        raise BrowserMissing(f"no Chromium at {CHROMIUM} (set BPTT_CHROMIUM to its path)")
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    except Exception as e:  # playwright.Error: a broken or incompatible binary
        raise BrowserMissing(f"Chromium at {CHROMIUM} did not start: {str(e).splitlines()[0]}") from e


def no_browser(reason: str) -> None:
    """Skip a browser test with the reason; under CI=true a missing browser fails it."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@contextlib.contextmanager
def chromium():
    """A launched headless Chromium for a test module, closed after it (no_browser without one)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        no_browser(f"Playwright is not installed ({e})")
    with sync_playwright() as pw:
        try:
            b = launch(pw)
        except BrowserMissing as e:
            no_browser(str(e))
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions, every request URL."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{m.text} @ {m.location.get('url', '')}:{m.location.get('lineNumber', '')}"))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def unexpected_console_errors(self, allow: tuple[str, ...] = ()) -> list[str]:
        return [e for e in self.console_errors if not any(a in e for a in allow)]


def watched_page(browser, viewport: dict = VIEWPORT, timeout: float = 15_000):
    """(context, page) of a new browser context, its page watched (``page.watch``)."""
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(timeout)
    p = ctx.new_page()
    p.watch = Watch()
    p.watch.attach(p)
    return ctx, p


def assert_page_clean(page) -> None:
    """No uncaught exception and no unexpected console error on the watched page."""
    w = page.watch
    assert w.page_errors == [] and w.unexpected_console_errors() == [], (w.page_errors, w.console_errors)


def renders(page) -> int:
    return page.evaluate("() => Number(document.body.dataset.renders || 0)")


def wait_render(page, after: int, timeout: float = 15_000) -> int:
    """Wait until the page's render counter exceeds `after` and every plot is drawn (the page
    draws a plot out of view when it is idle: data-pending counts those still to draw); return
    the new count."""
    page.wait_for_function("(n) => Number(document.body.dataset.renders || 0) > n"
                           " && document.body.dataset.pending === '0'", arg=after, timeout=timeout)
    return renders(page)


def wait_views(page, after: int, timeout: float = 15_000) -> int:
    """Wait until the page's view counter (bumped at every redraw: a selection, a language)
    exceeds `after` and every plot is drawn; return the new count."""
    page.wait_for_function("(n) => Number(document.body.dataset.views || 0) > n"
                           " && document.body.dataset.pending === '0'", arg=after, timeout=timeout)
    return page.evaluate("() => Number(document.body.dataset.views)")


# the plots of a vanilla model (static/js/main.js FIGURES, but the gated cells' heat-gates), and
# those a plot is drawn at a change for: in the window or NEAR_PX (200) beyond it (main.js inView)
PLOTS = ["graph", "heat-delta", "heat-deltarow", "plot-vanish", "heat-hidden", "heat-grads", "heat-contrib"]
IN_VIEW = """() => %s.filter((id) => {
    const r = document.getElementById(id).getBoundingClientRect(); return r.bottom > -200 && r.top < innerHeight + 200; })""" % json.dumps(PLOTS)


def settled(page, timeout: float = 15_000) -> None:
    """Wait until no plot is left to draw (data-pending 0)."""
    page.wait_for_function("() => document.body.dataset.pending === '0'", timeout=timeout)


def wait_url_change(page, old: str, timeout: float = 5_000) -> str:
    """The page writes the URL after the render counter is bumped (writeURL is async and not
    awaited in compute()), so wait for location.href itself."""
    page.wait_for_function("(old) => location.href !== old", arg=old, timeout=timeout)
    return page.evaluate("() => location.href")


def open_page(page, base: str, path: str = "/", timeout: float = 20_000) -> None:
    """Go to the page and wait for its first full render."""
    page.goto(base + path)
    wait_render(page, 0, timeout=timeout)


def response(page) -> dict:
    return page.evaluate("() => window.bptt.response()")


def decode_state(href: str) -> dict:
    """The state in a page URL: ?lang=…#s=<'z' deflate-raw | 'p' plain> base64url JSON."""
    parts = urlsplit(href)
    frag = dict(p.split("=", 1) for p in parts.fragment.split("&") if "=" in p)
    s = frag["s"]
    raw = base64.urlsafe_b64decode(s[1:] + "=" * (-len(s[1:]) % 4))
    text = zlib.decompress(raw, -15) if s[0] == "z" else raw
    return {"query": {k: v[0] for k, v in parse_qs(parts.query).items()}, **json.loads(text)}
