"""The exercise builder, quiz mode and the API's refusals said by code (issue 12 §4, §5), in
headless Chromium against the real app (tests/server.py); and, without a browser, that the page
has words for every error code in both languages.

One server and one browser for the module, one page reused by each test (seconds, not minutes).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import httpx
import pytest

from browser import VIEWPORT, Watch, chromium, decode_state, open_page, renders, wait_render, wait_views

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "static" / "js"
CJK = re.compile(r"[\u4e00-\u9fff]")
CONSOLE_422 = "status of 422"  # Chromium logs every 4xx fetch as a console error
SHOTS = Path(os.environ.get("BPTT_SHOTS", tempfile.gettempdir())) / "bptt-exercises"


# ------------------------------------------------------------------ without a browser

def _i18n_keys(lang: str) -> set[str]:
    text = (JS / "i18n.js").read_text(encoding="utf-8")
    en, zh = text.split("\n  zh: {", 1)
    block = en if lang == "en" else zh
    return set(re.findall(r'^\s+"([^"]+)":', block, re.M))


def test_every_error_code_has_words_in_both_languages():
    """A refusal is said by its code (app/api/errors.py CODES): the page's ERROR_CODES names
    every code, and each code's words exist in English and Chinese."""
    from app.api.errors import CODES

    table = (JS / "errors.js").read_text(encoding="utf-8").split("export const ERROR_CODES = {", 1)[1]
    page_codes = set(re.findall(r"^\s+([a-z_]+): ", table, re.M))
    assert set(CODES) <= page_codes, set(CODES) - page_codes
    for lang in ("en", "zh"):
        keys = _i18n_keys(lang)
        missing = [c for c in CODES if f"err.code.{c}" not in keys]
        assert missing == [], (lang, missing)
    editor = (JS / "editor.js").read_text(encoding="utf-8")
    # no English regexes over the API's words: the message is only kept for the hover
    assert not re.search(r"the string|an array of|not a finite number|an integer ≥", editor), "English matched in editor.js"


# ------------------------------------------------------------------ the browser

@pytest.fixture(scope="module")
def page_watch(base):
    with chromium() as b:
        ctx = b.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(15_000)
        ctx.set_default_navigation_timeout(40_000)
        page = ctx.new_page()
        watch = Watch()
        watch.attach(page)
        yield page, watch


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def assert_clean(watch: Watch, allow: tuple[str, ...] = ()) -> None:
    assert watch.page_errors == [], watch.page_errors
    bad = watch.unexpected_console_errors(allow)
    assert bad == [], bad
    watch.console_errors.clear()


def open_builder(page) -> None:
    page.click("details.menu > summary")
    page.click("#exercise-open")
    page.wait_for_function("() => document.getElementById('exercise').open && document.getElementById('ex-link').value !== ''")


def builder_link(page) -> str:
    page.wait_for_timeout(100)  # the link is written after the (async) deflate of the state
    page.wait_for_function("() => document.getElementById('ex-link').value !== ''")
    return page.input_value("#ex-link")


def test_the_builders_link_reproduces_the_model_and_hides_exactly_the_ticked_parts(page_watch, base):
    page, watch = page_watch
    open_page(page, base, "/?preset=classroom&lang=zh")
    n = renders(page)
    page.fill("#seed", "11")  # a model that is no preset: it must travel in the link
    page.dispatch_event("#seed", "change")
    wait_render(page, n)
    req = page.evaluate("() => window.bptt.state.req")
    open_builder(page)
    flags = page.evaluate("() => [...document.querySelectorAll('input[name=\"ex-hide\"]')].map((x) => x.value)")
    assert {"weights", "formula", "delta", "graph", "json", "steps"} <= set(flags), flags
    labels = page.inner_text("#exercise")
    assert "权重表格" in labels and "代入数值的公式" in labels, labels  # named in the page's language
    ticked = ["weights", "formula", "steps"]
    for f in ticked:
        page.check(f'input[name="ex-hide"][value="{f}"]')
    page.select_option("#ex-lang", "en")
    link = builder_link(page)
    assert "hide=weights,formula,steps" in link or set(re.search(r"hide=([^&#]+)", link)[1].split(",")) == set(ticked), link
    assert "quiz=" not in link and "lang=en" in link
    shot(page, "builder-zh")
    page.click("#ex-preview")  # the preview is the link itself, in a frame
    frame = page.frame_locator("#ex-frame")
    frame.locator("body[data-renders]").wait_for(timeout=20_000)
    assert frame.locator("#panel-formula").is_hidden() and frame.locator("#panel-graph").is_visible()
    page.click("#ex-close")
    open_page(page, base, link.split(base, 1)[1])
    assert page.evaluate("() => window.bptt.state.req") == req
    for f in flags:
        sel = f"#panel-{f}" if page.locator(f"#panel-{f}").count() else f'[data-hide="{f}"]'
        # hidden by the link exactly when ticked (gates and rtrl are also hidden by the cell and
        # by their button: the link's mark is what counts)
        by_link = page.locator(sel).first.evaluate("(el) => el.classList.contains('hidden-by-link')")
        assert by_link == (f in ticked), (f, sel)
        if f in ticked:
            assert page.locator(sel).first.is_hidden(), (f, sel)
    assert not page.is_visible("#banner-hide") and page.is_visible("#hide-note")
    assert page.inner_text("#quiz-title" if page.locator("#quiz-title").count() else "body") and page.is_hidden("#quiz")
    # a preset and a question chosen by the teacher: the preset's name in the link, no model
    open_builder(page)
    page.check('input[name="ex-model"][value="preset"]')
    page.select_option("#ex-preset", "note-003")
    page.select_option("#ex-quiz", "delta:fixed")
    page.fill("#ex-t", "3")
    page.fill("#ex-k", "2")
    page.fill("#ex-i", "1")
    page.dispatch_event("#ex-i", "input")
    link = builder_link(page)
    assert "preset=note-003" in link and "quiz=delta:3,2,1" in link and "#s=" not in link, link
    page.fill("#ex-t", "9")  # note 003 has 3 steps
    page.dispatch_event("#ex-t", "input")
    page.wait_for_function("() => document.getElementById('ex-link').value === ''")
    assert "1 到 3" in page.inner_text("#ex-error") or "1 to 3" in page.inner_text("#ex-error")
    page.keyboard.press("Escape")
    # a quiz value the page does not know is named (nothing is asked, nothing hidden by it), in both languages
    open_page(page, base, "/?preset=note-003&lang=zh&quiz=dleta")
    assert "dleta" in page.inner_text("#banner-hide") and page.is_hidden("#quiz")
    page.click("#lang")
    page.wait_for_function("() => document.getElementById('banner-hide').innerText.includes('not one this page knows')")
    assert_clean(watch)


def _answer_forms(v: float) -> list[str]:
    """How the page could print v (util.js fmt: 4 significant digits; the formula panel's 4; 3)."""
    out = set()
    for d in (3, 4, 5, 6):
        s = f"{v:.{d}g}"
        out |= {s, s.replace("-", "−")}
    return sorted(x for x in out if len(x.lstrip("-−")) >= 4)


def _page_text(page) -> str:
    """Every text, hover title and aria-label of the page, and every text of its plots (the numbers
    printed in heatmap cells, hover labels)."""
    return page.evaluate("""() => document.body.innerText + ' ' +
        [...document.querySelectorAll('[title], [aria-label]')].map((e) => (e.title || '') + ' ' + (e.getAttribute('aria-label') || '')).join(' ') + ' ' +
        [...document.querySelectorAll('svg text')].map((e) => e.textContent).join(' ')""")


def _hover_delta(page, t: int, k: int) -> str:
    """Hover the ‖δ‖ heatmap at (t, k) (1-based) and return the hover label's text."""
    page.locator("#heat-delta").scroll_into_view_if_needed()
    px = page.evaluate("""([x, y]) => { const gd = document.getElementById('heat-delta'), fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return { x: r.left + fl._size.l + fl.xaxis.l2p(x), y: r.top + fl._size.t + fl.yaxis.l2p(y) }; }""", [k, t])
    page.mouse.move(px["x"] - 3, px["y"] - 3)
    page.mouse.move(px["x"], px["y"])
    page.wait_for_timeout(250)
    return page.evaluate("() => [...document.querySelectorAll('#heat-delta .hovertext')].map((e) => e.textContent).join(' | ')")


def test_quiz_hides_the_answer_until_it_is_given_and_says_right_or_wrong(page_watch, base):
    page, watch = page_watch
    body = httpx.get(f"{base}/api/v1/presets/classroom").json()
    d = httpx.post(f"{base}/api/v1/bptt", json=body).json()
    t, k, i = 5, 3, 2
    value = d["delta"][t - 1][k - 1][i - 1]
    norm = d["delta_norm"][t - 1][k - 1]
    # without the quiz the same page shows the numbers (this test can fail)
    open_page(page, base, "/?preset=classroom&lang=en")
    page.evaluate("([t, k]) => window.bptt.state.sel.t === t", [t - 1, k - 1])
    assert "|" in _hover_delta(page, t, k) or _hover_delta(page, t, k) != ""
    for lang, wrong_word, right_word in (("zh", "还不对", "正确"), ("en", "Not right yet", "Right")):
        open_page(page, base, f"/?preset=classroom&lang={lang}&quiz=delta:{t},{k},{i}")
        assert page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]") == [t - 1, k - 1]
        ask = page.inner_text("#quiz-ask")
        assert f"δ{str(t).translate(str.maketrans('0123456789', '₀₁₂₃₄₅₆₇₈₉'))}" in ask and str(i) in ask, ask
        assert _hover_delta(page, t, k) == ""  # no hover label in quiz mode (the click still selects)
        text = _page_text(page)
        leaks = [f for f in _answer_forms(value) + _answer_forms(norm) if f in text]
        assert leaks == [], leaks
        assert "?" in page.inner_text("#selection") and page.is_hidden('[data-hide="json"]') and page.is_hidden("details.menu")
        shot(page, f"quiz-{lang}")
        page.fill("#quiz-answer", f"{-value:.4f}")  # a sign error
        page.click("#quiz-check")
        page.wait_for_function("() => document.getElementById('quiz-result').textContent !== ''")
        assert page.inner_text("#quiz-result").startswith(wrong_word), page.inner_text("#quiz-result")
        told = _page_text(page).replace(page.inner_text("#quiz-result"), "")  # (it repeats the student's −v)
        assert [f for f in _answer_forms(value) if f in told] == []  # still not told
        page.fill("#quiz-answer", f"{value:.4f}".replace("-", "−"))
        page.click("#quiz-check")
        page.wait_for_function("() => document.getElementById('quiz-result').className === 'ok'")
        assert page.inner_text("#quiz-result").startswith(right_word), page.inner_text("#quiz-result")
        page.wait_for_function("() => !document.getElementById('selection').innerText.includes('?')")
        assert f"{norm:.4g}" in page.inner_text("#selection")  # the numbers are back
        shot(page, f"quiz-{lang}-right")
    # the student picks: the question follows the selection; reveal gives the API's number
    open_page(page, base, "/?preset=note-003&lang=zh&quiz=delta")
    before = page.inner_text("#quiz-ask")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    v = page.evaluate("() => Number(document.body.dataset.views || 0)")
    page.keyboard.press("ArrowUp")
    wait_views(page, v)
    after = page.inner_text("#quiz-ask")
    assert after != before and "δ₂," in after, (before, after)
    n3 = httpx.post(f"{base}/api/v1/bptt", json=httpx.get(f"{base}/api/v1/presets/note-003").json()).json()
    sel = page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]")
    page.click("#quiz-reveal")
    page.wait_for_function("() => document.getElementById('quiz-result').textContent !== ''")
    want = n3["delta"][sel[0]][sel[1]][0]
    assert f"{want:.6g}".replace("-", "−") in page.inner_text("#quiz-result").replace("-", "−"), page.inner_text("#quiz-result")
    # a gradient entry the teacher chose
    open_page(page, base, "/?preset=classroom&lang=en&quiz=grad:W_hh:2,3")
    assert page.inner_text("#quiz-ask") == "Compute the entry in row 2, column 3 of ∂L/∂W_hh."
    g = d["grads"]["W_hh"][1][2]
    assert [f for f in _answer_forms(g) if f in _page_text(page)] == []
    page.fill("#quiz-answer", f"{g:.5g}")
    page.press("#quiz-answer", "Enter")
    page.wait_for_function("() => document.getElementById('quiz-result').className === 'ok'")
    assert_clean(watch)


def test_a_refusal_is_said_in_chinese_by_its_code(page_watch, base):
    page, watch = page_watch
    open_page(page, base, "/?lang=zh&preset=note-003")
    note = httpx.get(f"{base}/api/v1/presets/note-003").json()
    page.click("#box-json summary")
    cases = [
        (note | {"loss": "mae"}, ["loss", "之一", "“mae”" if False else '"mae"']),          # not_one_of
        (note | {"inputs": [[1.0]] * 2000, "targets": [[0.0]] * 2000}, ["超过了本服务器的上限 1024", "BPTT_MAX_T"]),  # over_limit
        (note | {"foo": 1}, ["“foo”不是 API 认识的名称"]),                                  # unknown_field
        (note | {"params": note["params"] | {"W_hh": [[1.0, 2.0]]}}, ["W_hh", "方阵", "1×2"]),  # wrong_shape
    ]
    for body, words in cases:
        page.fill("#json-box", json.dumps(body))
        page.click("#json-apply")
        page.wait_for_function("() => document.getElementById('json-error').textContent !== ''")
        msg = page.inner_text("#json-error")
        assert CJK.search(msg) and all(w in msg for w in words), (words, msg)
        assert not re.search(r"\b(expected|got|unknown|the string|one of|at most)\b", msg), msg
        assert page.get_attribute("#json-error", "title"), "the API's own sentence stays on hover"
        page.evaluate("() => { document.getElementById('json-error').textContent = ''; }")
    shot(page, "refusal-zh")
    assert_clean(watch, allow=(CONSOLE_422,))


PLACEHOLDERS_FIT = """() => { const c = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('input[placeholder], textarea[placeholder]')].filter((e) => e.offsetParent).map((e) => {
    const cs = getComputedStyle(e); c.font = cs.font;
    const room = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    return [e.id, c.measureText(e.placeholder).width <= room]; }); }"""


def test_the_notes_names_and_the_smaller_items(page_watch, base):
    """Seed 000 writes the biases b_h and b_o, seed 001 δ⁽ᵗ⁾ = ∂L/∂h⁽ᵗ⁾: display choices that follow
    the notation switch (NNDL's c becomes b_o in the formulas and the gradient heatmaps), kept in
    the link, the API's names unchanged. With clipping the gradients' note no longer says each
    array has its own scale; every placeholder fits its field."""
    page, watch = page_watch
    open_page(page, base, "/?preset=note-003&lang=zh")
    n = renders(page)
    page.select_option("#notation", "nndl")
    wait_render(page, n)
    for box in ("#names-bo", "#names-dh"):
        v = page.evaluate("() => window.bptt.perf.views")
        page.check(box)
        wait_views(page, v)
    titles = page.evaluate("() => document.getElementById('heat-grads').layout.annotations.map((a) => a.text)")
    assert "∂L/∂b<sub>o</sub>" in titles and "∂L/∂b<sub>h</sub>" in titles and "∂L/∂U" in titles, titles
    bases = page.evaluate("() => [...document.querySelectorAll('#formula msub')].map((e) => e.textContent)")
    assert "bo" in bases and "c" not in bases, bases
    steps = page.inner_text("#steps")
    k = page.evaluate("() => window.bptt.state.sel.k") + 1
    assert f"δ⁽{'⁰¹²³⁴⁵⁶⁷⁸⁹'[k]}⁾ = ∂L/∂h{k}" in steps and "V h3 + b_o" in steps, steps
    body = page.evaluate("() => window.bptt.state.req")
    assert set(body["params"]) == {"W", "U", "b", "V", "c"}  # the API's NNDL names
    for _ in range(50):  # the URL is written asynchronously
        href = page.evaluate("() => location.href")
        if decode_state(href)["v"].get("deltaH"):
            break
        page.wait_for_timeout(100)
    open_page(page, base, href.split(base, 1)[1])
    assert page.is_checked("#names-bo") and page.is_checked("#names-dh")
    assert all(ok for _, ok in page.evaluate(PLACEHOLDERS_FIT))
    # clipping: before and after share one scale per array
    body["clip"] = {"max_norm": 0.001}
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n)
    note = page.inner_text("#grads-note")
    assert "共用一个颜色刻度" in note and "各用自己的色标" not in note, note
    open_page(page, base, "/?preset=classroom&lang=en&quiz=grad")
    assert all(ok for _, ok in page.evaluate(PLACEHOLDERS_FIT)), page.evaluate(PLACEHOLDERS_FIT)
    assert_clean(watch)
