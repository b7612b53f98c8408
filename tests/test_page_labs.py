"""The labs page (/labs) in headless Chromium against the real app (tests/server.py): each lab
renders without a page error and draws the API's own numbers (the page's request replayed
with httpx gives the same JSON, or for a training run the same lines); the URL carries the lab
and its settings; Stop and leaving a lab abort the run; the Chinese page has no English words.
Skipped without Chromium, except under CI=true."""

from __future__ import annotations

import json
import re

import httpx
import orjson
import pytest

from browser import VIEWPORT, Watch

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def watched(browser):
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    watch = Watch()
    watch.attach(page)
    posts: list[tuple[str, dict]] = []
    page.on("request", lambda r: r.method == "POST" and posts.append((r.url, json.loads(r.post_data))))
    yield page, watch, posts
    ctx.close()


def assert_clean(watch: Watch) -> None:
    assert watch.page_errors == [], watch.page_errors
    assert watch.unexpected_console_errors() == [], watch.console_errors


def wait_lab(page, lab: str, after: int = 0, timeout: float = 30_000) -> int:
    key = "renders" + lab[0].upper() + lab[1:]
    page.wait_for_function("([k, n]) => Number(document.body.dataset[k] || 0) > n", arg=[key, after], timeout=timeout)
    return page.evaluate("(k) => Number(document.body.dataset[k])", key)


def wait_idle(page, timeout: float = 60_000) -> None:
    page.wait_for_function("() => window.labs.busy() === 0", timeout=timeout)


def trace(page, el: str, i: int, axis: str = "y"):
    return page.evaluate("([el, i, a]) => document.getElementById(el).data[i][a]", [el, i, axis])


def replay(url: str, body: dict):
    r = httpx.post(url, json=body, timeout=120)
    assert r.status_code == 200, r.text
    if r.headers["content-type"].startswith("application/x-ndjson"):
        return [orjson.loads(x) for x in r.content.splitlines()]
    return r.json()


def post_to(posts, path):
    found = [(u, b) for u, b in posts if u.endswith(path)]
    assert found, f"the page posted nothing to {path}: {[u for u, _ in posts]}"
    return found[-1]


def test_compare_cells_and_vanishing_labs_draw_the_apis_numbers(watched, base):
    page, watch, posts = watched
    page.goto(base + "/labs?lang=en#lab=cells")
    wait_lab(page, "cells")
    url, body = post_to(posts, "/api/v1/compare-cells")
    api = replay(url, body)
    assert body["cells"] == ["vanilla", "residual", "lstm", "gru"] and body["task"]["delay"] == 49
    # the LSTM's forget-gate bias under its one name (init.forget_bias), the GRU's in keep_bias
    assert body["init"]["forget_bias"] == 3 and body["keep_bias"] == {"gru": 3} and "deprecated" not in api
    assert api["forget_bias"] == 3.0 and api["cells"]["lstm"]["params"]["b_ih"][16:32] == [3.0] * 16
    for i, cell in enumerate(body["cells"]):
        assert trace(page, "cells-reach", i) == api["cells"][cell]["reach"]
        assert trace(page, "cells-reach", i, "x") == api["lag"]
        heat = page.evaluate("(c) => document.getElementById('cells-heat-' + c).data[0]", cell)
        assert heat["customdata"] == api["cells"][cell]["delta_h_norm"]
    zmin = page.evaluate("() => document.getElementById('cells-heat-gru').data[0].zmin")
    assert zmin == pytest.approx(__import__("math").log10(api["scale"]["min"]), rel=1e-15)
    assert trace(page, "cells-gates", 0) == api["cells"]["lstm"]["gate"]["mean"]
    reading = page.inner_text("#cells-reading")
    assert "49 steps back" in reading and "LSTM 0.06" in reading, reading  # kept[49] of the API, 2 digits

    page.click("#lab-tabs [data-lab=vanish]")
    wait_lab(page, "vanish")
    url, body = post_to(posts, "/api/v1/radius-sweep")
    api = replay(url, body)
    for i, run in enumerate(api["runs"]):
        assert trace(page, "vanish-plot", i) == run["delta_t1"]
    verdicts = page.eval_on_selector_all("#vanish-reading li[data-verdict]", "els => els.map(e => e.dataset.verdict)")
    assert verdicts == [r["verdict"] for r in api["runs"]] and "vanishing" in verdicts and "exploding" in verdicts
    assert_clean(watch)


def test_training_labs_stream_the_apis_runs_and_stop(watched, base):
    page, watch, posts = watched
    small = "remedies.delay=4&remedies.updates=15&remedies.cupdates=12&remedies.m=4"
    page.goto(base + f"/labs?lang=en#lab=remedies&{small}")
    page.click("#lab-remedies .play")
    wait_lab(page, "remedies")
    wait_idle(page)
    trains = [(u, b) for u, b in posts if u.endswith("/api/v1/train")]
    assert len(trains) == 5
    by_cell = {b["cell"]: b for _, b in trains if "task" in b and b["task"]["name"] == "recall"}
    assert set(by_cell) == {"vanilla", "lstm", "gru"}
    assert by_cell["lstm"]["params"]["b_ih"][4:8] == [3.0] * 4  # the forget-gate bias, from compare-cells
    _, cc = post_to(posts, "/api/v1/compare-cells")
    assert cc["init"]["forget_bias"] == 3 and "keep_bias" not in cc  # one name for it, as /train's init
    for i, cell in enumerate(["vanilla", "lstm", "gru"]):
        lines = replay(base + "/api/v1/train", by_cell[cell])
        assert trace(page, "rem-loss", i) == [x["loss"] for x in lines[:-1]]
    clip = [b for _, b in trains if b["task"]["name"] == "sum"]
    for i, b in enumerate(sorted(clip, key=lambda b: "clip" in b)):  # trace 0: no clipping, 1: clipped
        lines = replay(base + "/api/v1/train", b)
        assert trace(page, "clip-norm", i) == [x["grad_norm"] for x in lines[:-1]]
    assert "→" in page.inner_text("#rem-reading")

    # truncation: the comparison as the lab opens, the curves on Run; Stop aborts a long run
    page.click("#lab-tabs [data-lab=truncation]")
    wait_lab(page, "truncation")
    url, body = post_to(posts, "/api/v1/compare-gradients")
    api = replay(url, body)
    names = ["full", "window", "chunked", "randomized", "randomized_mean", "rtrl"]
    assert trace(page, "trunc-bars", 0, "x") == [api["variants"][k]["cosine"] for k in names][::-1]
    assert trace(page, "trunc-bars", 1, "x") == [api["variants"][k]["norm_ratio"] for k in names][::-1]
    page.fill("#trunc-updates", "2000")
    page.dispatch_event("#trunc-updates", "change")
    n = len(posts)
    page.click("#lab-truncation .play")
    page.wait_for_function("() => document.getElementById('trunc-loss').data.length === 4 && "
                           "document.getElementById('trunc-loss').data[0].y.length > 3")
    page.click("#lab-truncation .stop")
    wait_idle(page, timeout=5_000)
    assert page.inner_text("#status") in ("stopped",)
    got = trace(page, "trunc-loss", 0)
    page.wait_for_timeout(600)
    assert trace(page, "trunc-loss", 0) == got and len(got) < 2000  # nothing more arrives
    started = [u for u, _ in posts[n:] if u.endswith("/train")]
    assert len(started) == 2  # BPTT_TRAIN_MAX_RUNS in flight; the other two waited and were dropped
    page.wait_for_timeout(300)
    assert len([u for u, _ in posts[n:] if u.endswith("/train")]) == 2
    # the server saw the client go: both of its places are free again (else 503)
    long = {"cell": "vanilla", "init": {"seed": 0, "hidden": 2}, "task": {"name": "echo", "T": 3, "delay": 1}, "updates": 5000}
    codes = []
    with httpx.Client(timeout=30) as c:
        for _ in range(30):
            with c.stream("POST", base + "/api/v1/train", json=long) as a, c.stream("POST", base + "/api/v1/train", json=long) as b:
                codes = [a.status_code, b.status_code]
            if codes == [200, 200]:
                break
            page.wait_for_timeout(100)
    assert codes == [200, 200]
    # leaving a lab stops its run
    page.click("#lab-truncation .play")
    page.wait_for_function("() => window.labs.busy() === 1")
    page.click("#lab-tabs [data-lab=cells]")
    wait_idle(page, timeout=5_000)
    assert_clean(watch)


def test_the_url_carries_the_lab_and_its_settings(watched, browser, base):
    page, watch, posts = watched
    page.goto(base + "/labs?lang=en#lab=vanish&vanish.T=25&vanish.radii=0.7%2C1.3&vanish.act=identity")
    wait_lab(page, "vanish")
    assert page.input_value("#vanish-T") == "25" and page.input_value("#vanish-act") == "identity"
    body = post_to(posts, "/api/v1/radius-sweep")[1]
    assert body["radii"] == [0.7, 1.3] and body["task"]["T"] == 25 and body["activation"] == "identity"
    page.fill("#vanish-m", "7")
    page.dispatch_event("#vanish-m", "change")
    page.wait_for_function("() => location.hash.includes('vanish.m=7')")
    wait_lab(page, "vanish", 1)
    href = page.evaluate("() => location.href")
    numbers = trace(page, "vanish-plot", 1)
    other = browser.new_context(viewport=VIEWPORT).new_page()
    other.goto(href)
    wait_lab(other, "vanish")
    assert other.input_value("#vanish-m") == "7" and trace(other, "vanish-plot", 1) == numbers
    assert other.is_visible("#lab-vanish") and not other.is_visible("#lab-cells")
    other.context.close()
    assert_clean(watch)


# the language switch says "English"; names of methods, functions and parameters stay as written
ALLOWED = r"English|identity|LSTM|GRU|RTRL|BPTT|PyTorch|clip_grad_norm_|Adam|tanh|sigmoid|relu|log|NNDL|API|W_hh|b_ih|b_hh|b_f"


def test_the_chinese_page_has_no_english(watched, base):
    page, watch, posts = watched
    small = "remedies.delay=3&remedies.updates=5&remedies.cupdates=5&remedies.m=3&truncation.updates=5"
    page.goto(base + f"/labs?lang=zh#lab=cells&{small}")
    wait_lab(page, "cells")
    texts = [page.inner_text("body")]
    for lab in ("vanish", "remedies", "truncation"):
        page.click(f"#lab-tabs [data-lab={lab}]")
        if lab in ("remedies", "truncation"):
            page.click(f"#lab-{lab} .play")
        wait_lab(page, lab)
        wait_idle(page)
        texts.append(page.inner_text("body"))
    for text in texts:
        assert CJK.search(text)
        left = re.findall(r"[A-Za-z]{3,}", re.sub(ALLOWED, "", text))
        assert left == [], left
    assert "梯度裁剪（NNDL 称“梯度截断”）" in texts[2] and "截断 BPTT（只回传 K 步）" in texts[3]
    assert_clean(watch)
