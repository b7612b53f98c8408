"""Course-server concerns: settings, sub-path, headers, rate limit, teacher presets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.presets import PresetError
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"BPTT_{name.upper()}" for name in Settings.model_fields if f"BPTT_{name.upper()}" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BPTT_MAX_T", "77")
    monkeypatch.setenv("BPTT_CORS_ORIGINS", "https://a.example, https://b.example")
    s = Settings()
    assert s.max_t == 77 and s.cors_origin_list == ["https://a.example", "https://b.example"]


def test_sub_path_behind_a_proxy_serves_page_static_and_api():
    with TestClient(create_app(Settings(root_path="/bptt"))) as c:
        for prefix in ("/bptt", ""):  # the proxy may or may not strip the prefix
            page = c.get(f"{prefix}/")
            assert page.status_code == 200
            assert 'href="/bptt/static/css/app.css"' in page.text
            assert 'content="/bptt"' in page.text
            assert c.get(f"{prefix}/static/js/main.js").status_code == 200
            assert c.get(f"{prefix}/static/vendor/plotly.min.js").status_code == 200
            r = c.post(f"{prefix}/api/v1/bptt", json=c.get(f"{prefix}/api/v1/presets/note-003").json())
            assert r.status_code == 200
        assert c.get("/bptt/openapi.json").json()["servers"] == [{"url": "/bptt"}]
        docs = c.get("/bptt/docs").text
        assert "/bptt/static/swagger-ui/swagger-ui-bundle.js" in docs
        assert c.get("/bptt/static/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_security_headers_and_no_inline_script(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    for page in ("/", "/docs"):
        html = client.get(page).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), page
        assert not re.search(r"(src|href)=\"(https?:)?//", html), "the page must not load from another host"
    # errors carry the headers too
    assert "content-security-policy" in client.post("/api/v1/bptt", content=b"{").headers


def test_frame_ancestors_and_cors_from_settings():
    s = Settings(frame_ancestors="'self' https://course.example.edu", cors_origins="https://course.example.edu")
    with TestClient(create_app(s)) as c:
        assert "frame-ancestors 'self' https://course.example.edu" in c.get("/").headers["content-security-policy"]
        pre = c.options("/api/v1/bptt", headers={"origin": "https://course.example.edu", "access-control-request-method": "POST"})
        assert pre.headers["access-control-allow-origin"] == "https://course.example.edu"
        other = c.get("/healthz", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(Settings())) as c:  # none by default
        r = c.get("/healthz", headers={"origin": "https://course.example.edu"})
        assert "access-control-allow-origin" not in r.headers


def test_rate_limit_per_client():
    with TestClient(create_app(Settings(rate_limit_per_minute=3))) as c:
        body = c.get("/api/v1/presets/note-003").json()
        codes = [c.post("/api/v1/bptt", json=body).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.post("/api/v1/bptt", json=body)
        assert r.json()["error"]["status"] == 429 and int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200  # reads are not limited


def test_teacher_presets_folder(tmp_path):
    good = {"id": "my-lesson", "title": {"en": "Lesson 4", "zh": "第 4 课"}, "description": "x",
            "request": {"inputs": [[1.0], [0.5]], "targets": [[0.0], [1.0]], "init": {"seed": 1, "hidden": 2}}}
    (tmp_path / "lesson.json").write_text(json.dumps(good), encoding="utf-8")
    with TestClient(create_app(Settings(presets_dir=tmp_path))) as c:
        ids = [p["id"] for p in c.get("/api/v1/presets").json()]
        assert "my-lesson" in ids and "note-003" in ids
        assert c.post("/api/v1/bptt", json=c.get("/api/v1/presets/my-lesson").json()).status_code == 200
    bad = dict(good, request={**good["request"], "params": {"W_hh": [[1.0]]}})
    (tmp_path / "lesson.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(PresetError, match=r"lesson.json: request.init: expected params or init, not both"):
        create_app(Settings(presets_dir=tmp_path))
    (tmp_path / "lesson.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(PresetError, match="not readable JSON"):
        create_app(Settings(presets_dir=tmp_path))
    with pytest.raises(PresetError, match="is not a folder"):
        create_app(Settings(presets_dir=tmp_path / "missing"))


def test_cli_options(monkeypatch):
    from app import cli

    seen = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setattr(cli, "_supervise", lambda n, host, port, kw: seen.update(kw, workers=n, port=port, host=host))
    cli.main(["--port", "9001"])
    assert seen["app"] == "app.main:app" and seen["workers"] == 1 and seen["port"] == 9001
    assert seen["host"] == "127.0.0.1" and seen["forwarded_allow_ips"] == "" and seen["proxy_headers"] is False
    assert seen["http"] == "app.framing:HttpToolsProtocol"  # malformed HTTP gets the JSON error shape
    # connection limits: uvicorn's own options where it has them (app.framing adds the head timeout)
    assert seen["timeout_keep_alive"] == 5 and seen["h11_max_incomplete_event_size"] == 32768 and seen["ws"] == "none"
    seen.clear()
    cli.main(["--workers", "2", "--port", "9002"])
    assert seen["workers"] == 2 and seen["port"] == 9002 and "app" not in seen


def test_malloc_tuning_applies_on_linux():
    import sys

    from app.runtime import tune_malloc

    assert tune_malloc() == sys.platform.startswith("linux")


def test_an_installed_wheel_carries_the_page(tmp_path):
    """pip install . (not -e) gives a working app: the wheel holds every file of static/ and
    templates/ (as app/static, app/templates), and the app serves the page from there."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"  # a copy: building leaves build/ and *.egg-info behind, and reuses them
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("app", "static", "templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    # without build isolation when the setuptools at hand is one the build asks for (fast,
    # offline); else pip fetches one (a fresh 3.11 venv has ensurepip's 65.5, the build asks ≥ 68)
    isolation = ["--no-build-isolation"] if _setuptools_builds_it() else []
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation,
                            "-w", str(tmp_path), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("static", "templates"):
        for f in (ROOT / top).rglob("*"):
            if f.is_file():
                assert f"app/{top}/{f.relative_to(ROOT / top).as_posix()}" in names, f
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = (
        "import app.main as m\n"
        "from fastapi.testclient import TestClient\n"
        f"assert m.STATIC_DIR.is_relative_to({str(target)!r}), m.STATIC_DIR\n"
        "c = TestClient(m.app)\n"
        "assert c.get('/').status_code == 200 and 'BPTT' in c.get('/').text\n"
        "assert c.get('/static/js/main.js').status_code == 200\n"
        "assert c.get('/docs').status_code == 200\n"
    )
    # run away from the source tree, with the installed copy first on the path
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr[-2000:]


def _setuptools_builds_it() -> bool:
    """The installed setuptools satisfies pyproject.toml's build-system requirement."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, version

    (spec,) = [r for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
               if r.startswith("setuptools")]
    need = spec.partition(">=")[2] or "0"
    try:
        have = version("setuptools")
    except PackageNotFoundError:
        return False
    as_tuple = lambda v: tuple(int(x) for x in v.split(".")[:2] if x.isdigit())  # noqa: E731
    return as_tuple(have) >= as_tuple(need)
