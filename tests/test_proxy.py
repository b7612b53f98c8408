"""BPTT_ROOT_PATH=/bptt behind a real nginx running deploy/nginx.conf as written, with the
prefix kept (as written) and stripped (its commented proxy_pass line), in front of
``bptt-explorer``, plain ``uvicorn app.main:app`` and ``uvicorn --root-path /bptt``.

(uvicorn ≥ 0.26 prepends its root_path to every path; TestClient does not, so only a real
server behind a real proxy shows what a course server gets.)"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from nginx import free_port, running_nginx, wait_listening
from server import running_server

ROOT = Path(__file__).resolve().parent.parent
KEPT = "proxy_pass http://bptt_explorer;"
STRIPPED = "proxy_pass http://bptt_explorer/;"


def _config(app_port: int, kept_port: int, stripped_port: int) -> str:
    """deploy/nginx.conf on loopback ports without TLS, once as written (prefix kept) and once
    with its commented proxy_pass line instead (prefix stripped)."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert KEPT in conf and f"# {STRIPPED}" in conf, "deploy/nginx.conf must show both styles"
    conf = re.sub(r"(?m)^\s*#.*\n", "", conf).replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
    upstream, _, server = conf.partition("\nserver {")
    server = "server {" + server
    kept = server.replace("listen 443 ssl;", f"listen 127.0.0.1:{kept_port};")
    stripped = server.replace("listen 443 ssl;", f"listen 127.0.0.1:{stripped_port};").replace(KEPT, STRIPPED)
    assert STRIPPED in stripped and KEPT not in stripped
    return "\n".join([upstream, kept, stripped])


SERVERS = {
    "bptt-explorer": dict(cli=True),
    "uvicorn": dict(),
    "uvicorn --root-path": dict(args=("--root-path", "/bptt")),
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_sub_path_behind_nginx(server, tmp_path):
    env = {"BPTT_ROOT_PATH": "/bptt"}
    with running_server(env=env, **SERVERS[server]) as base:
        app_port = urlsplit(base).port
        kept_port, stripped_port = free_port(), free_port()
        with running_nginx(tmp_path, _config(app_port, kept_port, stripped_port)) as nginx:
            wait_listening(kept_port, nginx)
            wait_listening(kept_port, nginx)
            for style, port in (("kept", kept_port), ("stripped", stripped_port)):
                _check_everything_under_the_prefix(f"http://127.0.0.1:{port}", f"{server}, prefix {style}")


def _check_everything_under_the_prefix(proxy: str, where: str) -> None:
    with httpx.Client(base_url=proxy, timeout=30, headers={"host": "evil.example"}) as http:
        def get(path: str, status: int = 200) -> httpx.Response:
            r = http.get(path)
            assert r.status_code == status, (where, path, r.status_code, r.text[:300])
            assert "content-security-policy" in r.headers, (where, path)
            return r

        page = get("/bptt/").text
        assert 'content="/bptt"' in page and 'href="/bptt/static/css/app.css"' in page, where
        assert '"/bptt/static/vendor/plotly.min.js"' in page and '"/bptt/static/js/main.js"' in page, where
        assert get("/bptt/static/css/app.css").headers["content-type"].startswith("text/css")
        assert get("/bptt/static/js/main.js").text
        assert len(get("/bptt/static/vendor/plotly.min.js").content) > 1_000_000
        docs = get("/bptt/docs").text
        assert '"/bptt/static/swagger-ui/swagger-ui-bundle.js"' in docs and '"/bptt/static/js/docs.js"' in docs
        assert get("/bptt/static/swagger-ui/swagger-ui-bundle.js").content
        assert get("/bptt/static/swagger-ui/swagger-ui.css").content
        assert get("/bptt/openapi.json").json()["servers"] == [{"url": "/bptt"}], where
        assert get("/bptt/healthz").json() == {"status": "ok"}
        ids = [p["id"] for p in get("/bptt/api/v1/presets").json()]
        body = get(f"/bptt/api/v1/presets/{ids[0]}").json()
        r = http.post("/bptt/api/v1/bptt", content=orjson.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["shapes"]["T"] == len(body["inputs"]), (where, r.text[:300])
        err = get("/bptt/nope", 404).json()["error"]
        assert err["field"] == "path" and err["got"] == "/bptt/nope", (where, err)  # not /bptt/bptt/nope
        # redirects go to a path under the prefix, never to the Host the client sent
        for path, to in (("/bptt", "/bptt/"), ("/bptt/docs/", "/bptt/docs"), ("/bptt/healthz/", "/bptt/healthz")):
            r = http.get(path)
            assert r.status_code in (301, 307, 308) and r.headers["location"] == to, (where, path, r.status_code, r.headers)


def test_the_page_and_the_docs_work_in_a_browser_under_the_prefix(tmp_path):
    """Chromium through nginx as deploy/nginx.conf is written (prefix kept: every URL was 404
    under bptt-explorer): the page renders from /bptt/ and asks only for /bptt/... URLs; Swagger UI at /bptt/docs
    lists the operations and its "Try it out" server is /bptt."""
    import os

    from browser import VIEWPORT, BrowserMissing, Watch, launch, open_page

    def no_browser(reason: str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(f"browser test skipped: {reason}")

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        no_browser(f"Playwright is not installed ({e})")
    with running_server(env={"BPTT_ROOT_PATH": "/bptt"}, cli=True) as base:
        kept_port, stripped_port = free_port(), free_port()
        with running_nginx(tmp_path, _config(urlsplit(base).port, kept_port, stripped_port)) as nginx, \
                sync_playwright() as pw:
            wait_listening(kept_port, nginx)
            try:
                browser = launch(pw)
            except BrowserMissing as e:
                no_browser(str(e))
            proxy = f"http://127.0.0.1:{kept_port}"
            try:
                page = browser.new_page(viewport=VIEWPORT)
                watch = Watch()
                watch.attach(page)
                open_page(page, proxy, "/bptt/")
                assert page.evaluate("() => window.bptt.response().shapes.T") > 0
                page.screenshot(path=str(tmp_path / "page-under-bptt.png"))
                page.goto(proxy + "/bptt/docs")
                page.wait_for_selector(".opblock-summary-path", timeout=15_000)
                assert page.locator(".opblock").count() >= 5
                assert not watch.console_errors and not watch.page_errors, (watch.console_errors, watch.page_errors)
                outside = [u for u in watch.requests if not u.startswith(proxy + "/bptt/")]
                assert not outside, outside
            finally:
                browser.close()
