"""The training view at /train in headless Chromium against the real app under uvicorn: play
draws a falling loss curve (the API's numbers), pause stops the stream and play goes on to the
uninterrupted run's parameters bit for bit, step advances by one update, reset clears, the
setup survives the URL, "show this update" opens the explorer on that checkpoint, and the
Chinese page has no English. One server, one browser; each test a fresh page.

    python -m pytest -q tests/test_page_train.py
"""

from __future__ import annotations

import base64
import json
import re
import time

import httpx
import orjson
import pytest

from browser import Watch, decode_state, watched_page


@pytest.fixture
def page(browser):
    ctx, p = watched_page(browser, {"width": 1366, "height": 900}, 20_000)
    yield p
    ctx.close()


SETUP = {"task": {"name": "echo", "delay": 2, "T": 10, "n": 1, "N": 16}, "cell": "vanilla", "activation": "tanh",
         "hidden": 8, "seed": 0, "forget_bias": None, "optimizer": {"name": "adam", "lr": 0.02}, "batch_size": 8,
         "updates": 120, "truncation": {"kind": "none", "K": 5, "p": 0.5}, "clip": None}


def _url(base: str, setup: dict, lang: str = "en") -> str:
    blob = base64.urlsafe_b64encode(json.dumps({"c": setup, "p": None}).encode()).decode().rstrip("=")
    return f"{base}/train?lang={lang}#c=p{blob}"


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.ready === '1'")


def _run(page) -> dict:
    return page.evaluate("() => window.bpttTrain.run()")


def _wait_status(page, status: str, timeout: float = 30_000) -> None:
    page.wait_for_function("(s) => document.body.dataset.status === s", arg=status, timeout=timeout)


def _api_lines(base: str, body: dict) -> list[dict]:
    r = httpx.post(base + "/api/v1/train", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return [orjson.loads(x) for x in r.content.splitlines()]


def _clean(page, allow: tuple[str, ...] = ()) -> None:
    assert page.watch.page_errors == [], page.watch.page_errors
    assert page.watch.unexpected_console_errors(allow) == []


def test_play_draws_the_apis_falling_loss_curve(page, base):
    _open(page, _url(base, SETUP))
    page.click("#play")
    _wait_status(page, "done")
    run = _run(page)
    assert run["shown"] == 120 and run["streams"] == 1
    drawn = page.evaluate("() => document.getElementById('plot-loss').data[0]")
    assert drawn["y"] == run["series"]["loss"] and drawn["x"] == run["series"]["update"]
    assert drawn["y"][-1] < drawn["y"][0] / 2, "the loss fell by half"
    # the curve is the API's stream for the same request (the page does no maths)
    body = page.evaluate("() => window.bpttTrain.request()")
    lines = _api_lines(base, body)
    assert [d["loss"] for d in lines if "update" in d] == run["series"]["loss"]
    assert lines[-1]["params"] == run["resume"]["params"]
    assert page.evaluate("() => document.getElementById('progress').value") == 120
    # the δ matrix: one frame per checkpoint, the slider over them, the API's reading
    cks = [d for d in lines if "delta_norm" in d]
    assert len(run["checkpoints"]) == len(cks) and run["checkpoints"][-1]["delta_norm"] == cks[-1]["delta_norm"]
    assert page.get_attribute("#frame", "max") == str(len(cks) - 1)
    assert f"{cks[-1]['update']}" in page.inner_text("#delta-reading")
    page.fill("#frame", "0")
    page.dispatch_event("#frame", "input")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('update 1 ')")
    z = page.evaluate("() => document.getElementById('plot-delta').data[0].text")
    assert z[-1][0] != "" and z[0][1] == ""  # lower triangle of the first checkpoint
    _clean(page)


def test_pause_stops_the_stream_and_play_goes_on_to_the_same_run(page, base):
    U = 5000
    setup = SETUP | {"updates": U, "batch_size": 4, "truncation": {"kind": "randomized", "K": 5, "p": 0.5}}
    _open(page, _url(base, setup))
    # Play, then pause from inside the page as soon as 60 updates are shown: on a quiet machine
    # the server trains this in ~2 s, and a pause sent from here after a wait_for_function
    # round trip came after the last line (the run was done, and "paused" never came).
    page.evaluate("""() => new Promise((resolve) => {
      document.getElementById('play').click();
      const tick = () => {
        if (window.bpttTrain.run().shown > 60) { document.getElementById('play').click(); resolve(); }
        else setTimeout(tick, 0);
      };
      tick();
    })""")
    _wait_status(page, "paused")
    before = _run(page)
    assert 60 < before["shown"] < U, before["shown"]
    time.sleep(0.8)
    after = _run(page)
    assert after["lines"] == before["lines"] and after["shown"] == before["shown"], "no more lines after pause"
    page.click("#play")
    _wait_status(page, "done", timeout=60_000)
    run = _run(page)
    assert run["streams"] == 2 and run["series"]["update"] == sorted(set(run["series"]["update"]))
    whole = _api_lines(base, page.evaluate("() => window.bpttTrain.request()"))
    assert run["resume"]["params"] == whole[-1]["params"], "paused and resumed = the uninterrupted run"
    assert run["series"]["loss"] == [d["loss"] for d in whole if "update" in d]
    _clean(page)


def test_step_advances_one_update_and_reset_clears(page, base):
    _open(page, _url(base, SETUP))
    for n in (1, 2, 3):
        page.click("#step")
        page.wait_for_function("(n) => window.bpttTrain.run().shown === n && document.body.dataset.status === 'paused'", arg=n)
    assert _run(page)["series"]["update"] == [1, 2, 3]
    page.click("#step-report")  # to the next reported update: report_every 1 here
    page.wait_for_function("() => window.bpttTrain.run().shown === 4 && document.body.dataset.status === 'paused'")
    # four one-update streams give the uninterrupted run's first four updates
    whole = _api_lines(base, page.evaluate("() => window.bpttTrain.request(4)"))
    assert _run(page)["series"]["loss"] == [d["loss"] for d in whole if "update" in d]
    assert _run(page)["resume"]["params"] == whole[-1]["params"]
    page.click("#reset")
    page.wait_for_function("() => window.bpttTrain.run().shown === 0")
    assert page.evaluate("() => document.getElementById('plot-loss').data[0].x.length") == 0
    assert page.evaluate("() => document.getElementById('progress').value") == 0
    assert _run(page)["checkpoints"] == [] and _run(page)["resume"] is None
    _clean(page)


def test_the_setup_survives_the_url(page, base, browser):
    _open(page, f"{base}/train?lang=en")
    old = page.url
    page.select_option("#task", "recall")
    page.wait_for_function("(old) => location.href !== old && !document.querySelector('[data-opt=T]').offsetParent", arg=old)
    page.select_option("#cell", "gru")
    page.fill("#hidden", "12")
    page.dispatch_event("#hidden", "change")
    page.select_option("#optimizer", "momentum")
    page.select_option("#trunc-kind", "chunked")
    page.fill("#trunc-K", "4")
    page.dispatch_event("#trunc-K", "change")
    page.check("#clip-on")
    page.fill("#clip-c", "0.5")
    page.dispatch_event("#clip-c", "change")
    page.wait_for_function("() => window.bpttTrain.request().clip?.max_norm === 0.5")
    page.wait_for_timeout(300)  # the URL is written after the debounced change
    body = page.evaluate("() => window.bpttTrain.request()")
    assert body["task"]["name"] == "recall" and body["cell"] == "gru" and "activation" not in body
    assert body["optimizer"]["name"] == "momentum" and body["truncation"] == {"kind": "chunked", "K": 4}
    assert body["init"]["hidden"] == 12
    href = page.url
    other = browser.new_page()
    _open(other, href)
    assert other.evaluate("() => window.bpttTrain.request()") == body
    assert other.input_value("#cell") == "gru" and other.input_value("#trunc-K") == "4"
    assert other.is_checked("#clip-on")
    other.close()
    _clean(page)


def test_show_this_update_opens_the_explorer_on_that_checkpoint(page, base, browser):
    _open(page, _url(base, SETUP | {"updates": 30}))
    page.click("#play")
    _wait_status(page, "done")
    page.fill("#frame", "1")
    page.dispatch_event("#frame", "input")
    page.wait_for_function("() => document.getElementById('show-update').href.includes('#s=')")
    ck = _run(page)["checkpoints"][1]
    page.wait_for_function("(u) => window.bpttTrain.linkFor === u", arg=ck["update"])
    href = page.evaluate("() => document.getElementById('show-update').href")
    state = decode_state(href)
    assert state["r"]["params"] == ck["params"] and state["r"]["cell"] == "vanilla"
    explorer = browser.new_page()
    w = Watch()
    w.attach(explorer)
    explorer.goto(href)
    explorer.wait_for_function("() => Number(document.body.dataset.renders || 0) > 0")
    resp = explorer.evaluate("() => window.bptt.response()")
    # the explorer's δ norms of that sequence under those weights are the checkpoint's
    for row_e, row_c in zip(resp["delta_norm"], ck["delta_norm"]):
        assert row_e[: len(row_c)] == pytest.approx(row_c, rel=1e-9, abs=1e-300)
    assert w.page_errors == [] and w.unexpected_console_errors() == []
    explorer.close()
    _clean(page)


ALLOWED = {"BPTT", "LSTM", "GRU", "RNN", "SGD", "Adam", "Adagrad", "RMSprop", "Nesterov", "API", "NNDL", "PyTorch",
           "tanh", "sigmoid", "relu", "softmax", "max_norm", "detach", "Tallec", "Ollivier", "min", "char", "rnn",
           "log", "PNG", "ReLU", "identity", "Shift",
           "English", "Switch",  # the language button and its tooltip ("Switch to English") are for English readers
           "W_xh", "W_hh", "b_h", "W_hy", "b_y", "W_ih", "b_ih", "b_hh"}  # the parameters' names


def test_the_chinese_page_has_no_english(page, base):
    _open(page, _url(base, SETUP | {"updates": 12}, lang="zh"))
    assert page.get_attribute("html", "lang") == "zh-CN"
    page.click("#step")
    page.wait_for_function("() => window.bpttTrain.run().shown === 1 && document.body.dataset.status === 'paused'")
    texts = page.evaluate("""() => [document.body.innerText,
        ...[...document.querySelectorAll('option')].map((o) => o.textContent),
        ...[...document.querySelectorAll('[title]')].map((e) => e.title),
        ...[...document.querySelectorAll('[placeholder]')].map((e) => e.placeholder), document.title]""")
    words = set(re.findall(r"[A-Za-z_]{3,}", " ".join(texts))) - ALLOWED
    assert words == set(), " ".join(sorted(words))
    assert "梯度裁剪（NNDL 称“梯度截断”）" in texts[0] and "截断 BPTT（只回传 K 步）" in texts[0]
    # the language switch says it all in English, and back
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert "Loss" in page.inner_text("#panel-loss h2") and "lang=en" in page.url
    _clean(page)
