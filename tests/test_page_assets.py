"""What the page is served with: Plotly gzipped once for every browser, API responses gzipped
only when BPTT_GZIP_LEVEL asks (float JSON shrinks ~2× for ~30 ms a MB: a loss on loopback),
and the size fields' limits from the settings (the page allows what the API allows)."""

from __future__ import annotations

import gzip
import re

from fastapi.testclient import TestClient

from app.main import PLOTLY_JS, create_app
from app.settings import Settings


def test_plotly_is_sent_gzipped_to_a_browser_and_plain_to_others():
    c = TestClient(create_app(Settings()))
    r = c.get("/static/vendor/plotly.min.js", headers={"accept-encoding": "gzip, deflate, br"})
    assert r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    assert r.content == PLOTLY_JS.read_bytes()  # httpx decoded it: the very same file
    assert int(r.headers["content-length"]) < len(r.content) / 2.5
    plain = c.get("/static/vendor/plotly.min.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == PLOTLY_JS.read_bytes()


def test_api_responses_are_gzipped_only_when_the_setting_asks():
    body = {"inputs": [[0.1 * t] for t in range(40)], "targets": [[0.0]] * 40, "init": {"seed": 1, "hidden": 8, "outputs": 1}}
    off = TestClient(create_app(Settings())).post("/api/v1/bptt", json=body, headers={"accept-encoding": "gzip"})
    on = TestClient(create_app(Settings(gzip_level=1))).post("/api/v1/bptt", json=body, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in off.headers
    assert on.headers["content-encoding"] == "gzip"
    assert on.content == off.content  # the same bytes once decoded: every number exact
    raw = gzip.compress(off.content, 1)
    assert int(on.headers["content-length"]) <= len(raw) + 64


def test_the_size_fields_allow_what_the_api_allows():
    html = TestClient(create_app(Settings(max_t=777, max_m=33))).get("/").text
    assert re.search(r'id="size-T"[^>]*max="777"', html) and re.search(r'id="size-m"[^>]*max="33"', html)
