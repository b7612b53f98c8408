"""End-to-end tests of the page at "/" in headless Chromium (Playwright) against the real app
under uvicorn (tests/server.py).

One server and one browser per module; every test gets a fresh browser context and page with
listeners for console errors, uncaught page errors and every request URL. Without Chromium
(or Playwright) the tests are skipped, except under CI=true, where that is a failure. When a
test fails, a screenshot of its page is saved to a temporary directory (path printed).

    python -m pytest -q tests/test_page_e2e.py
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

import pytest

from browser import (
    IN_VIEW, PLOTS, VIEWPORT, Watch, decode_state, open_page, renders, response, settled,
    wait_render, wait_url_change, wait_views,
)

SUBS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
CONSOLE_422 = "status of 422"  # Chromium logs every 4xx fetch as a console error


@pytest.fixture
def watched(browser, request):
    """A fresh context + page at 1366×768 with its Watch; a screenshot when the test failed."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    watch = Watch()
    watch.attach(page)
    failed_before = request.session.testsfailed
    yield page, watch
    if request.session.testsfailed > failed_before:
        out = Path(tempfile.mkdtemp(prefix="bptt-e2e-")) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', request.node.name)}.png"
        try:
            page.screenshot(path=str(out), full_page=True)
            print(f"\nscreenshot of the failed page: {out}")
        except Exception as e:  # the page may be gone
            print(f"\nno screenshot: {e}")
    ctx.close()


def assert_clean(watch: Watch, allow: tuple[str, ...] = ()) -> None:
    assert watch.page_errors == [], f"uncaught errors in the page: {watch.page_errors}"
    bad = watch.unexpected_console_errors(allow)
    assert bad == [], f"console errors: {bad}"


def selection_text(page) -> str:
    return page.inner_text("#selection")


def wait_text_change(page, selector: str, old: str, timeout: float = 5_000) -> str:
    page.wait_for_function("([sel, old]) => document.querySelector(sel).innerText !== old",
                           arg=[selector, old], timeout=timeout)
    return page.inner_text(selector)


# ---------------------------------------------------------------------------------- tests


def test_loads_without_errors_and_stays_on_origin(watched, base):
    page, watch = watched
    open_page(page, base)
    assert page.title() == "BPTT Explorer"
    resp = response(page)
    assert resp and resp["shapes"]["T"] >= 1
    assert page.evaluate("() => document.getElementById('graph').data.length") > 0
    assert page.inner_text("#formula").strip() != ""
    # the page fetched what it needs from its own server...
    assert any(u.startswith(base + "/api/v1/bptt") for u in watch.requests), watch.requests
    assert any(u.startswith(base + "/static/vendor/plotly") for u in watch.requests), watch.requests
    # ...and nothing from anywhere else (no CDN, fonts, analytics)
    foreign = [u for u in watch.requests if not u.startswith(base + "/")]
    assert foreign == [], f"requests leaving {base}: {foreign}"
    assert_clean(watch)


def test_preset_switch_changes_heatmap_and_response(watched, base):
    page, watch = watched
    open_page(page, base)
    heat = "() => document.getElementById('heat-delta').data[0].z"
    seen = {"start": (page.evaluate(heat), response(page))}
    for preset in ("vanishing", "exploding"):
        n = renders(page)
        page.select_option("#preset", preset)
        wait_render(page, n)
        z, resp = page.evaluate(heat), response(page)
        assert page.evaluate("() => window.bptt.state.preset") == preset
        # the heatmap shows this response: z = log10 ‖δ_{t,k}‖ (log scale is the default view)
        dn = resp["delta_norm"]
        assert len(z) == resp["shapes"]["T"] == len(dn)
        for t, row in enumerate(dn):
            for k in range(t + 1):
                if row[k] is not None and row[k] > 0:
                    assert z[t][k] == pytest.approx(math.log10(row[k]), rel=1e-12, abs=1e-12), (preset, t, k)
        for name, (z0, r0) in seen.items():
            assert z != z0, f"δ-norm heatmap unchanged from {name} to {preset}"
            assert r0["delta_norm"] != dn and r0["forward"]["loss"] != resp["forward"]["loss"], (name, preset)
        seen[preset] = (z, resp)
    assert_clean(watch)


def _loss_node_px(page, step: int) -> dict:
    """Viewport pixel of the graph's L node for step index `step` (from the Plotly figure)."""
    return page.evaluate("""(step) => {
        const gd = document.getElementById('graph');
        const nodes = gd.data.filter((d) => Array.isArray(d.customdata) && d.customdata.length
            && Array.isArray(d.customdata[0]) && d.customdata[0][0] === 't' && d.mode && d.mode.includes('markers'));
        // ŷ (row 2) and L (row 3) both carry ["t", step]; L is the top row
        const L = nodes.reduce((a, b) => (b.y[0] > a.y[0] ? b : a));
        const i = L.customdata.findIndex((c) => c[1] === step);
        const fl = gd._fullLayout;
        const r = gd.getBoundingClientRect();
        return {
            name: L.name, x: r.left + fl._size.l + fl.xaxis.l2p(L.x[i]), y: r.top + fl._size.t + fl.yaxis.l2p(L.y[i]),
        };
    }""", step)


def test_clicking_a_loss_node_selects_it(watched, base):
    page, watch = watched
    open_page(page, base)
    mask = response(page)["loss_steps"]
    t0 = page.evaluate("() => window.bptt.state.sel.t")
    target = next(s for s in (2, 1, 3, 0) if s != t0 and mask[s])
    sel0, formula0 = selection_text(page), page.inner_text("#formula")
    page.locator("#graph").scroll_into_view_if_needed()
    px = _loss_node_px(page, target)
    assert px["name"] == "loss Lₜ", px
    page.mouse.move(px["x"], px["y"])
    page.mouse.click(px["x"], px["y"])
    sel1 = wait_text_change(page, "#selection", sel0)
    assert f"L{str(target + 1).translate(SUBS)} " in sel1 + " ", sel1
    assert page.evaluate("() => window.bptt.state.sel.t") == target
    page.wait_for_function("(old) => document.getElementById('formula').innerText !== old", arg=formula0)
    formula1 = page.inner_text("#formula")
    assert f"t = {target + 1}," in formula1, formula1[:200]
    assert_clean(watch)


def test_copied_url_reproduces_the_numbers(watched, browser, base):
    page, watch = watched
    open_page(page, base)
    before = response(page)
    href0 = page.evaluate("() => location.href")
    seed = int(page.input_value("#seed")) + 5
    n = renders(page)
    page.fill("#seed", str(seed))
    page.dispatch_event("#seed", "change")
    wait_render(page, n)
    href = wait_url_change(page, href0)
    state = decode_state(href)
    assert state["r"]["init"]["seed"] == seed, state["r"].get("init")
    after = response(page)
    assert after["grads"] != before["grads"], "changing the seed did not change the gradients"
    sel = selection_text(page)

    ctx2 = browser.new_context(viewport=VIEWPORT)
    try:
        page2 = ctx2.new_page()
        watch2 = Watch()
        watch2.attach(page2)
        page2.goto(href)
        wait_render(page2, 0)
        again = response(page2)
        assert again["grads"] == after["grads"]
        assert again["forward"]["loss"] == after["forward"]["loss"]
        assert again["delta_norm"] == after["delta_norm"]
        assert page2.input_value("#seed") == str(seed)
        assert selection_text(page2) == sel
        assert_clean(watch2)
    finally:
        ctx2.close()
    assert_clean(watch)


def test_language_switch_and_it_survives_reload(watched, base):
    page, watch = watched
    open_page(page, base)
    heading = "#panel-graph h2"
    assert page.get_attribute("html", "lang") == "en"
    en = page.inner_text(heading)
    assert en == "The unrolled network"
    href0 = page.evaluate("() => location.href")
    page.click("#lang")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    zh = page.inner_text(heading)
    assert zh != en and re.search(r"[\u4e00-\u9fff]", zh), zh
    assert re.search(r"[\u4e00-\u9fff]", selection_text(page)), selection_text(page)
    href = wait_url_change(page, href0)
    assert decode_state(href)["query"].get("lang") == "zh", href
    n_before_reload = renders(page)
    page.reload()
    wait_render(page, 0)
    assert n_before_reload >= 1
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text(heading) == zh
    assert page.inner_text("#lang") == "English"
    assert_clean(watch)


def test_invalid_weight_shows_the_api_error_by_the_field(watched, base):
    page, watch = watched
    open_page(page, base)
    page.click("#box-params > summary")
    path = "params.W_hh[0][1]"
    cell = page.locator(f'input[data-field="{path}"]')
    box = page.locator('.field-error[data-for~="params"]')
    assert box.inner_text() == ""
    cell.click()
    cell.press("Control+a")
    cell.press_sequentially("abc")
    page.wait_for_function("() => document.querySelector('.field-error[data-for~=\"params\"]').textContent !== ''")
    msg = box.inner_text()
    assert path in msg and "abc" in msg, msg
    assert box.is_visible()
    assert "invalid" in (cell.get_attribute("class") or "").split()
    assert page.is_visible("#banner-error")

    n = renders(page)
    cell.press("Control+a")
    cell.press_sequentially("0.5")
    wait_render(page, n)
    page.wait_for_function("() => document.querySelector('.field-error[data-for~=\"params\"]').textContent === ''")
    assert "invalid" not in (cell.get_attribute("class") or "").split()
    assert not page.is_visible("#banner-error")
    assert response(page)["params"]["W_hh"][0][1] == 0.5
    assert_clean(watch, allow=(CONSOLE_422,))


def test_arrow_keys_move_the_selection(watched, base):
    page, watch = watched
    open_page(page, base)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    sel = lambda: page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]")  # noqa: E731
    t, k = sel()
    assert t >= 3, "the default preset should select a late loss"
    if k != 0:  # Home: back to the first step k = 0 of the selected loss
        old = selection_text(page)
        page.keyboard.press("Home")
        wait_text_change(page, "#selection", old)
        k = 0
    assert tuple(sel()) == (t, 0)
    for key, want in (("ArrowRight", (t, k + 1)), ("ArrowRight", (t, k + 2)),
                      ("ArrowLeft", (t, k + 1)), ("ArrowUp", (t - 1, k + 1))):
        old = selection_text(page)
        page.keyboard.press(key)
        new = wait_text_change(page, "#selection", old)
        assert tuple(sel()) == want, (key, sel(), want)
        assert f"L{str(want[0] + 1).translate(SUBS)}" in new and f"k = {want[1] + 1}" in new, (key, new)
    # in a grid cell the arrows move the caret, not the selection
    page.click("#box-inputs > summary")
    page.click('input[data-field="inputs[0][0]"]')
    before = (sel(), selection_text(page))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.wait_for_timeout(300)
    assert (sel(), selection_text(page)) == before
    assert_clean(watch)


@pytest.mark.parametrize("size", [(1366, 768), (1024, 768), (768, 1024)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_readable_without_horizontal_scroll(watched, base, size):
    page, watch = watched
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_page(page, base)
    sw, cw = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert sw <= cw, f"horizontal scrollbar at {size}: scrollWidth {sw} > clientWidth {cw}"
    wide = page.evaluate("""(cw) => [...document.querySelectorAll('#topbar, #editor, .panel')]
        .filter((el) => el.offsetParent !== null)
        .map((el) => [el.id || el.className, el.getBoundingClientRect().left, el.getBoundingClientRect().right])
        .filter(([, l, r]) => l < 0 || r > cw + 0.5)""", cw)
    assert wide == [], f"boxes sticking out of the {cw}px viewport: {wide}"
    graph = page.locator("#graph")
    graph.scroll_into_view_if_needed()
    assert graph.is_visible()
    bb = graph.bounding_box()
    assert bb["x"] >= 0 and bb["x"] + bb["width"] <= cw + 0.5, bb
    assert bb["width"] >= 0.6 * cw and bb["height"] >= 200, bb
    assert 0 <= bb["y"] < size[1], f"graph not in the viewport after scrolling to it: {bb}"
    # Plotly drew at the container's width (not a stale width), with the loss nodes inside it
    svg_w = page.evaluate("() => document.querySelector('#graph .main-svg').getBoundingClientRect().width")
    assert abs(svg_w - bb["width"]) <= 2, (svg_w, bb)
    px = _loss_node_px(page, 0)
    assert bb["x"] <= px["x"] <= bb["x"] + bb["width"] and bb["y"] <= px["y"] <= bb["y"] + bb["height"], (px, bb)
    assert_clean(watch)


def test_api_docs_work_offline(watched, base):
    """/docs is Swagger UI from local files under the same CSP: it renders the operations,
    logs no error and asks no other host for anything."""
    page, watch = watched
    page.goto(base + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    assert page.locator(".opblock").count() >= 5
    assert_clean(watch)


def test_hide_flags_give_a_focused_exercise(watched, base):
    page, watch = watched
    open_page(page, base, "/?preset=vanishing&hide=weights,json,check")
    assert page.evaluate("() => window.bptt.state.req.init.scale") == 0.25  # the preset is loaded
    for sel in ("#box-params", 'section[data-hide="json"]', "#panel-check"):
        assert not page.locator(sel).is_visible(), sel
    assert page.locator("#graph").is_visible() and page.locator("#hide-note").is_visible()
    assert_clean(watch)


def test_a_pasted_request_with_fields_still_shows_everything(watched, base):
    """The page needs every response field: "fields" in a pasted request is dropped."""
    page, watch = watched
    open_page(page, base)
    body = page.evaluate("() => window.bptt.state.req")
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body | {"fields": ["grads"]}))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n)
    resp = response(page)
    assert "fields" not in page.evaluate("() => window.bptt.state.req")
    assert resp["delta_row"] is not None and resp["forward"] and resp["diagnostics"]
    assert_clean(watch)


def test_a_model_over_the_size_budget_says_so_once_in_the_pages_language(watched, base):
    """Over BPTT_MAX_FULL_FLOATS the API answers with norms and a warning; the page says it
    with its own banner (translated), not the API's English sentence as well."""
    page, watch = watched
    open_page(page, base)
    T = 450  # δ table and per-step gradients over 1.5 million numbers with m = 16
    body = {"inputs": [[0.01 * (t % 7)] for t in range(T)], "targets": [[0.0]] * T,
            "init": {"seed": 1, "hidden": 16, "outputs": 1}}
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)
    resp = response(page)
    assert resp["detail"] == "norms" and any(w.startswith("detail:") for w in resp["warnings"])
    info = page.inner_text("#banner-info")
    assert info.startswith("Only the norms") and "BPTT_MAX_FULL_FLOATS" not in info, info
    assert_clean(watch)


def test_api_warnings_are_said_in_the_pages_language(watched, base):
    """The API's warnings are English sentences; the Chinese page says the known ones in
    Chinese (gradient check under truncation, no loss step, softmax over one output)."""
    page, watch = watched
    open_page(page, base, "?lang=zh")
    for extra, want in (
        ({"truncation": 1, "gradient_check": True}, "梯度检验比较的是精确"),
        ({"loss_steps": [False, False, False]}, "没有任何时刻带有损失"),
        ({"loss": "softmax_ce", "targets": [0, 0, 0]}, "softmax 恒等于 1"),
    ):
        body = {"inputs": [[1.0], [2.0], [3.0]], "targets": [[0.5], [0.8], [0.9]], "h0": [0.0],
                "params": {"W_xh": [[0.5]], "W_hh": [[0.8]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}} | extra
        page.click("#box-json summary") if not page.is_visible("#json-box") else None
        page.fill("#json-box", json.dumps(body))
        n = renders(page)
        page.click("#json-apply")
        wait_render(page, n)
        assert response(page)["warnings"], extra
        info = page.inner_text("#banner-info")
        assert want in info and "gradient_check:" not in info and "loss_steps:" not in info, info
    assert_clean(watch)


def test_the_reading_says_why_there_is_no_trend(watched, base):
    """Too few usable norms along the last loss row: the reading names the cause (overflow, δ
    exactly 0 from a saturated tanh, a short truncation window) instead of suggesting a longer
    sequence; the timing label follows a language switch."""
    page, watch = watched
    open_page(page, base)

    def apply(T, W_hh, act="tanh", **extra):
        body = {"activation": act, "inputs": [[1.0]] * T, "targets": [[0.5]] * T, "h0": [0.0],
                "params": {"W_xh": [[0.5]], "W_hh": [[W_hh]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}} | extra
        if not page.is_visible("#json-box"):
            page.click("#box-json summary")
        page.fill("#json-box", json.dumps(body))
        n = renders(page)
        page.click("#json-apply")
        wait_render(page, n, timeout=30_000)
        return page.inner_text("#vanish-reading")

    assert "exactly 0" in apply(60, 50.0)  # tanh saturated: f'(z) rounds to 0
    assert "forward pass" in apply(40, 1e10, act="identity")  # h itself overflows: clipping cannot help
    assert "forward pass" in apply(40, 1e10, act="identity", clip={"max_norm": 1.0})
    assert "cannot bound" in page.inner_text("#clip-info")  # not "under the threshold": the norm is not a number
    assert "Truncation K = 2" in apply(10, 0.9, truncation=2)
    assert "per step" in apply(10, 0.9)  # a trend to read
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang.startsWith('zh')")
    assert "毫秒" in page.inner_text("#status")
    assert_clean(watch)


def _heat_cell_px(page, div: str, x: float, y: float) -> dict:
    """Viewport pixel of data point (x, y) of the heatmap in div."""
    return page.evaluate("""([div, x, y]) => {
        const gd = document.getElementById(div), fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return { x: r.left + fl._size.l + fl.xaxis.l2p(x), y: r.top + fl._size.t + fl.yaxis.l2p(y) };
    }""", [div, x, y])


def _hover_text(page, div: str) -> str:
    return page.evaluate("(div) => [...document.querySelectorAll('#' + div + ' .hovertext')].map((e) => e.textContent).join(' | ')", div)


def test_truncated_and_zero_cells_say_what_they_are_and_can_be_picked(watched, base):
    """In the ‖δₜ,ₖ‖ heatmap, a cell that truncation drops (t − k ≥ K) and, on the log scale, a
    cell that is exactly 0 have no colour on the scale; each has a colour of its own, says what
    it is on hover, and selects its (t, k) when clicked, like any other cell of the triangle."""
    page, watch = watched
    T, K = 12, 3
    body = {"inputs": [[1.0], [0.5]] * (T // 2), "targets": [[0.3]] * T, "truncation": K,
            "loss_steps": [t % 2 == 1 for t in range(T)],  # no loss at odd steps t = 1, 3, …: δ rows of 0
            "params": {"W_xh": [[0.5], [0.2]], "W_hh": [[0.5, 0.1], [0.0, 0.4]], "b_h": [0.0, 0.1],
                       "W_hy": [[1.0, -0.5]], "b_y": [0.0]}}
    open_page(page, base)
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)
    page.locator("#heat-delta").scroll_into_view_if_needed()
    colours = page.evaluate("() => document.getElementById('heat-delta').data.map((d) => typeof d.colorscale === 'string' ? d.colorscale : d.colorscale[0][1])")
    assert colours[0] == "Viridis" and len(set(colours)) == len(colours) == 3, colours  # the scale, truncated, zero: told apart

    for (t, k), want, K_said, formula in (((10, 2), "dropped by truncation", f"≥ K = {K}", "Dropped by truncation"),
                                          ((9, 8), "has no loss", "step 9", "no loss")):
        px = _heat_cell_px(page, "heat-delta", k, t)  # 1-based on the axes
        page.mouse.move(px["x"], px["y"])
        page.wait_for_function("(at) => [...document.querySelectorAll('#heat-delta .hovertext')].some((e) => e.textContent.includes(at))",
                               arg=f"t = {t}, k = {k}")
        hover = _hover_text(page, "heat-delta")
        assert want in hover and K_said in hover and f"t = {t}, k = {k}" in hover, hover
        page.mouse.click(px["x"], px["y"])
        page.wait_for_function("([t, k]) => window.bptt.state.sel.t === t && window.bptt.state.sel.k === k", arg=[t - 1, k - 1])
        page.wait_for_function("(t) => document.getElementById('formula').innerText.includes(`Loss step t = ${t},`)", arg=t)
        assert formula in page.inner_text("#formula")  # and the formula panel explains the 0

    # a δ row of zeros: the row plot has no colour bar from −1e−300 to 1e−300 (every number is 0)
    assert page.evaluate("() => document.getElementById('heat-deltarow').data[0].showscale") is False
    assert_clean(watch)


def test_a_model_whose_deltas_are_all_zero_says_so_in_the_vanishing_plot(watched, base):
    page, watch = watched
    open_page(page, base)
    body = {"inputs": [[1.0]] * 6, "targets": [[0.0]] * 6, "h0": [0.0],
            "params": {"W_xh": [[0.0]], "W_hh": [[0.5]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}}  # o = y: e = 0
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)
    notes = page.evaluate("() => (document.getElementById('plot-vanish')._fullLayout.annotations || []).map((a) => a.text)")
    assert any("nothing to draw" in a for a in notes), notes
    assert page.evaluate("() => document.getElementById('heat-grads').data.every((d) => d.zmax === 1)")
    assert_clean(watch)


def test_a_formula_wider_than_its_panel_shows_there_is_more(watched, base):
    """A row of math wider than the formula panel scrolls sideways (overlay scrollbars do not
    show it): a shadow on the side where more is hidden, following the scroll."""
    page, watch = watched
    open_page(page, base, "/?preset=vanishing")
    wide = page.locator("#formula .fx-row.fx-more-r")
    assert wide.count() >= 1
    row = wide.first.element_handle()  # (the locator would move on to the next row once this one's class changes)
    row.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    page.wait_for_function("(el) => el.classList.contains('fx-more-l') && !el.classList.contains('fx-more-r')", arg=row)
    narrow = page.locator("#formula .fx-row:not(.fx-more-r):not(.fx-more-l)")
    assert narrow.count() >= 1 and narrow.first.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
    assert_clean(watch)


def test_switching_notation_keeps_the_preset_and_its_numbers(watched, base):
    """A notation renames the weights; the model is the same, so the preset stays chosen (its
    description stays) and every number is the same under the new names."""
    page, watch = watched
    open_page(page, base, "/?preset=note-003")
    before = response(page)
    desc = page.inner_text("#preset-desc")
    n = renders(page)
    page.select_option("#notation", "nndl")
    wait_render(page, n)
    after = response(page)
    assert after["notation"] == "nndl" and page.input_value("#preset") == "note-003"
    # the description stays, under the notation's names (NNDL: W_xh is W, W_hh is U, W_hy is V)
    assert page.inner_text("#preset-desc") == desc.replace("W_xh", "W").replace("W_hh", "U").replace("W_hy", "V") != desc
    assert page.inner_text("#weights-mode") == "Weights given by the preset"
    assert after["delta_row"] == before["delta_row"] and after["forward"]["loss"] == before["forward"]["loss"]
    names = {c: after["names"][c] for c in before["grads"] if c in after["names"]}
    assert all(after["grads"][names[c]] == before["grads"][c] for c in names), names
    n = renders(page)
    page.fill("#size-T", "4")
    page.dispatch_event("#size-T", "change")
    wait_render(page, n)
    assert page.input_value("#preset") == ""  # a change of the model is no longer the preset
    assert page.inner_text("#weights-mode") == "Weights edited by hand"
    assert_clean(watch)


def test_a_cells_api_error_is_said_in_chinese_on_the_chinese_page(watched, base):
    page, watch = watched
    open_page(page, base, "/?lang=zh")
    page.click("#box-params > summary")
    path = "params.W_hh[0][1]"
    cell = page.locator(f'input[data-field="{path}"]')
    cell.click()
    cell.press("Control+a")
    cell.press_sequentially("abc")
    box = '.field-error[data-for~="params"]'
    page.wait_for_function("(sel) => document.querySelector(sel).textContent !== ''", arg=box)
    msg = page.inner_text(box)
    assert "第 1 行，第 2 列" in msg and path in msg and "应为一个数" in msg and '字符串 "abc"' in msg, msg
    assert "expected" not in msg, msg
    cell.press("Control+a")
    cell.press_sequentially("1e400")
    page.wait_for_function("(sel) => document.querySelector(sel).textContent.includes('1e400')", arg=box)
    assert "超出 float64 的范围" in page.inner_text(box)  # a number too large, not "a string"
    cell.press("Control+a")
    cell.press_sequentially("0.5")
    page.wait_for_function("(sel) => document.querySelector(sel).textContent === ''", arg=box)
    # a control's range, said in Chinese, the control outlined
    page.check("#trunc-on")
    page.fill("#trunc-K", "0")
    trunc = '.field-error[data-for~="truncation"]'
    page.wait_for_function("(sel) => document.querySelector(sel).textContent !== ''", arg=trunc)
    msg = page.inner_text(trunc)
    assert "截断窗口 K（truncation）：应为 1 到" in msg and "之间的整数，实为0" in msg, msg
    assert "invalid" in (page.get_attribute("#trunc-K", "class") or "").split()
    assert_clean(watch, allow=(CONSOLE_422,))


def test_a_size_the_page_refuses_is_said_like_a_refusal_of_the_api(watched, base):
    """T = 0 is refused by the page before sending, a seed of −5 by the API: both get the
    banner, the greyed panels and the message by the field; a valid value clears them."""
    page, watch = watched
    open_page(page, base)
    page.fill("#size-T", "0")
    page.dispatch_event("#size-T", "change")
    page.wait_for_function("() => document.getElementById('panels').classList.contains('stale')")
    assert page.is_visible("#banner-error") and "refused" in page.inner_text("#status")
    assert "steps T" in page.inner_text('.field-error[data-for~="inputs"]')
    n = renders(page)
    page.fill("#size-T", "5")
    page.dispatch_event("#size-T", "change")
    wait_render(page, n)
    assert not page.is_visible("#banner-error") and not page.evaluate("() => document.getElementById('panels').classList.contains('stale')")
    page.fill("#seed", "-5")
    page.dispatch_event("#seed", "change")
    box = '.field-error[data-for~="init.seed"]'
    page.wait_for_function("(sel) => document.querySelector(sel).textContent !== ''", arg=box)
    assert "init.seed" in page.inner_text(box) and "-5" in page.inner_text(box)
    assert "invalid" in (page.get_attribute("#seed", "class") or "").split()
    assert_clean(watch, allow=(CONSOLE_422,))


# ------------------------------------------------------------------ ?hide= and the modebar

EDITOR_FLAGS = ("preset", "notation", "export", "model", "sizes", "loss", "tricks", "data", "weights", "json")
PANEL_FLAGS = ("graph", "formula", "delta", "deltarow", "vanish", "hidden", "steps", "grads", "contrib", "check")


def _hide_cases():
    """Every flag alone, every pair of panels (the plots and panels are what the page's
    JavaScript draws and binds; an editor flag only hides a section of controls), and all."""
    cases = [(f,) for f in EDITOR_FLAGS + PANEL_FLAGS]
    cases += [(a, b) for i, a in enumerate(PANEL_FLAGS) for b in PANEL_FLAGS[i + 1:]]
    cases.append(EDITOR_FLAGS + PANEL_FLAGS)
    return cases


def test_every_hide_flag_and_pair_leaves_a_working_page(watched, base):
    """?hide=graph (or delta, deltarow) used to stop the page at "computing…" with
    `$(...).on is not a function` and leave the heatmap's clicks dead. For every case: the page
    renders, says it is ready, an arrow key moves the selection, a click on the δ heatmap (when
    shown) selects its cell, and the hidden parts are hidden."""
    page, watch = watched
    for flags in _hide_cases():
        page.goto(f"{base}/?preset=note-003&hide={','.join(flags)}")
        wait_render(page, 0)
        where = f"hide={','.join(flags)}"
        assert watch.page_errors == [], (where, watch.page_errors)
        assert re.search(r"\d+ ms", page.inner_text("#status")), (where, page.inner_text("#status"))
        for f in flags:
            sel = f"#panel-{f}" if f in PANEL_FLAGS else f'[data-hide="{f}"]'
            assert not page.locator(sel).first.is_visible(), (where, sel)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        t, k = page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]")
        page.keyboard.press("ArrowLeft" if k > 0 else "ArrowRight")
        page.wait_for_function("(k) => window.bptt.state.sel.k !== k", arg=k)
        if "delta" not in flags:
            page.locator("#heat-delta").scroll_into_view_if_needed()
            px = _heat_cell_px(page, "heat-delta", 1, 2)  # (t, k) = (2, 1), 1-based
            page.mouse.click(px["x"], px["y"])
            page.wait_for_function("() => window.bptt.state.sel.t === 1 && window.bptt.state.sel.k === 0")
    assert_clean(watch)


def test_unknown_hide_names_are_named_in_a_banner(watched, base):
    page, watch = watched
    open_page(page, base, "/?hide=formula,wieghts&lang=zh")
    banner = page.inner_text("#banner-hide")
    assert "wieghts" in banner and "weights" in banner and "没有隐藏" in banner, banner
    assert "formula" not in banner.split("：")[1].split("。")[0], banner  # a known flag is not called unknown
    assert not page.locator("#panel-formula").is_visible() and page.locator("#box-params").count() == 1
    page.click("#lang")
    page.wait_for_function("() => document.getElementById('banner-hide').innerText.includes('not hidden')")
    open_page(page, base, "/?hide=formula")
    assert not page.is_visible("#banner-hide")
    assert_clean(watch)


def test_no_modebar_button_sends_anything_elsewhere(watched, base):
    """Plotly's "Share chart…" offers to upload the chart to Plotly's cloud: no modebar may have
    it, and clicking every button of every plot (the PNG download included) asks no other host
    for anything and opens no page."""
    page, watch = watched
    open_page(page, base, "/?lang=zh")  # and every tooltip and notice of Plotly's in Chinese
    popups = []
    page.context.on("page", lambda p: popups.append(p.url))
    titles = page.evaluate("() => [...document.querySelectorAll('.modebar-btn')].map((b) => b.dataset.title)")
    assert titles and not [t for t in titles if re.search(r"share|cloud|studio|edit|分享", t or "", re.I)], titles
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in titles), titles
    plots = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map((d) => d.id)")
    assert len(plots) >= 7, plots
    clicked = 0
    for pid in plots:
        n = page.evaluate("(id) => document.querySelectorAll('#' + id + ' .modebar-btn').length", pid)
        for i in range(n):
            page.locator(f"#{pid}").scroll_into_view_if_needed()
            page.locator(f"#{pid}").hover()
            btn = page.locator(f"#{pid} .modebar-btn").nth(i)
            with page.expect_download(timeout=3_000) if "png" in (btn.get_attribute("data-title") or "").lower() \
                    else _nothing():
                btn.click()
            clicked += 1
    assert clicked >= len(plots)
    page.wait_for_timeout(300)
    notices = page.evaluate("() => [...document.querySelectorAll('.notifier-note')].map((e) => e.textContent)")
    assert notices and all(re.search(r"[\u4e00-\u9fff]", t) for t in notices), notices
    foreign = [u for u in watch.requests if not u.startswith(base + "/") and not u.startswith(("blob:", "data:"))]
    assert foreign == [] and popups == [], (foreign, popups)
    assert_clean(watch)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ------------------------------------------------------------------ words a course reads

CJK = re.compile(r"[\u4e00-\u9fff]")


def _load_json(page, body: dict) -> None:
    if not page.is_visible("#json-box"):
        page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)


NOTE_003 = {"inputs": [[1.0], [2.0], [3.0]], "targets": [[0.5], [0.8], [0.9]], "h0": [0.0],
            "params": {"W_xh": [[0.5]], "W_hh": [[0.8]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}}


def test_the_chinese_page_uses_the_courses_words(watched, base):
    """NNDL calls clipping 梯度截断 and truncated BPTT goes back K steps; the reduction, the
    product expansion, the factor per step, the status and the formula header's colon."""
    page, watch = watched
    open_page(page, base, "/?lang=zh&preset=vanishing")
    editor = page.inner_text("#editor")
    assert "梯度裁剪（NNDL 称“梯度截断”）" in editor and "截断 BPTT（只回传 K 步）" in editor, editor
    assert re.fullmatch(r"计算\+绘图 \d+ 毫秒", page.inner_text("#status")), page.inner_text("#status")
    formula = page.inner_text("#formula")
    assert "记号：" in formula and "连乘展开式" in formula and "闭式" not in formula, formula[:300]
    reading = page.inner_text("#vanish-reading")
    assert re.search(r"约乘以 \d", reading) and "×" not in reading, reading
    _load_json(page, NOTE_003 | {"reduction": "mean", "loss": "upstream", "upstream": [[0.1], [0.2], [0.3]],
                                 "targets": None, "params": {"W_xh": [[0.5]], "W_hh": [[0.8]], "b_h": [0.0]}})
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("End")  # k = t: the start of the recursion, with the upstream gradient
    page.wait_for_function("() => window.bptt.state.sel.k === window.bptt.state.sel.t")
    page.wait_for_function("() => document.getElementById('formula').innerText.includes('上游梯度')")
    formula = page.inner_text("#formula")
    assert "汇总方式为“平均”" in formula and "mean" not in formula and "upstream" not in formula, formula
    page.fill("#seed", "-5")
    page.dispatch_event("#seed", "change")
    box = '.field-error[data-for~="init.seed"]'
    page.wait_for_function("(sel) => document.querySelector(sel).textContent !== ''", arg=box)
    assert "应为非负整数" in page.inner_text(box), page.inner_text(box)
    assert_clean(watch, allow=(CONSOLE_422,))


def test_no_english_in_the_chinese_pages_messages(watched, base):
    """A JSON syntax error, an API refusal of a pasted request and the overflow banner are said
    in Chinese (the API's own sentence only on hover)."""
    page, watch = watched
    open_page(page, base, "/?lang=zh")
    page.click("#box-json summary")
    page.fill("#json-box", '{"inputs": [[1.0]],\n "targets": oops}')
    page.click("#json-apply")
    box = '.field-error[data-for="json"]'
    page.wait_for_function("(sel) => document.querySelector(sel).textContent !== ''", arg=box)
    msg = page.inner_text(box)
    assert "不是合法的 JSON" in msg and "第 2 行" in msg and not re.search(r"[A-Za-z]{4,}", msg.replace("JSON", "")), msg
    for body in ({"inputs": "x"}, NOTE_003 | {"foo": 1}, NOTE_003 | {"loss": "mae"}):
        page.fill("#json-box", json.dumps(body))
        page.click("#json-apply")
        page.wait_for_function("() => document.getElementById('json-error').textContent !== ''")
        msg = page.inner_text("#json-error")
        words = re.sub(r'"[^"]*"|[a-z_]+\b', "", msg)  # field names and the user's own text may stay
        assert CJK.search(msg) and not re.search(r"\b(expected|got|unknown|the string)\b", msg), msg
        assert page.get_attribute("#json-error", "title"), "the API's own sentence is kept on hover"
        del words
    _load_json(page, {"activation": "identity", "inputs": [[1.0]] * 250, "targets": [[0.0]] * 250,
                      "params": {"W_xh": [[1.0]], "W_hh": [[40.0]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}})
    banner = page.inner_text("#banner-overflow")
    assert "隐状态 h" in banner and "梯度 ∂L/∂W_hh" in banner and "forward." not in banner and "grads." not in banner, banner
    assert_clean(watch, allow=(CONSOLE_422,))


def test_smaller_wording_and_control_items(watched, base):
    page, watch = watched
    # the preset's description follows the notation; note-003 says whose numbers they are
    open_page(page, base, "/?preset=vanishing")
    assert page.inner_text("#preset-desc").startswith("W_hh has spectral radius")
    n = renders(page)
    page.select_option("#notation", "nndl")
    wait_render(page, n)
    assert page.inner_text("#preset-desc").startswith("U has spectral radius"), page.inner_text("#preset-desc")
    # an arrow key on the focused dropdown moves the selection, not the notation
    page.focus("#notation")
    t, k = page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]")
    page.keyboard.press("ArrowLeft" if k > 0 else "ArrowRight")
    page.wait_for_function("(k) => window.bptt.state.sel.k !== k", arg=k)
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(200)
    assert page.input_value("#notation") == "nndl" and page.evaluate("() => window.bptt.state.req.notation") == "nndl"
    open_page(page, base, "/?preset=note-003")
    assert "this page's choice" in page.inner_text("#preset-desc")
    # a new m draws at the default scale 1/√m, unless the user typed a scale
    open_page(page, base, "/?preset=classroom")
    assert page.evaluate("() => window.bptt.state.req.init.scale") == 0.8
    n = renders(page)
    page.fill("#size-m", "8")
    page.dispatch_event("#size-m", "change")
    wait_render(page, n)
    assert page.evaluate("() => window.bptt.state.req.init.scale") is None and page.input_value("#scale") == ""
    n = renders(page)
    page.fill("#scale", "0.3")
    page.dispatch_event("#scale", "change")
    wait_render(page, n)
    n = renders(page)
    page.fill("#size-m", "6")
    page.dispatch_event("#size-m", "change")
    wait_render(page, n)
    assert page.evaluate("() => window.bptt.state.req.init") == {"seed": 7, "hidden": 6, "outputs": 1, "scale": 0.3} \
        or page.evaluate("() => window.bptt.state.req.init.scale") == 0.3
    # linear scale: a row without a loss has its own colour (a layer), not the scale's bottom
    open_page(page, base, "/?preset=many-to-one")
    n = page.evaluate("() => window.bptt.perf.views")
    page.uncheck("#delta-log")
    wait_views(page, n)
    layers = page.evaluate("() => document.getElementById('heat-delta').data.map((d) => d.z.map((r) => r.filter((v) => v !== null).length).reduce((a, b) => a + b, 0))")
    T = response(page)["shapes"]["T"]
    assert layers[0] == T and layers[1] == T * (T + 1) // 2 - T, layers  # only the last row on the scale
    # with detail norms the bound is still computed and sent (not "overflow", not missing)
    _load_json(page, NOTE_003 | {"detail": "norms"})
    formula = page.inner_text("#formula")
    assert "not computed" not in formula and "overflow" not in formula, formula
    bound = response(page)["backward_parts"]["bound"]
    titles = page.evaluate("() => [...document.querySelectorAll(\"#formula [data-fx-row='bound'] span[title]\")].map((s) => Number(s.title))")
    assert bound in titles, (bound, titles)
    assert_clean(watch)


# ------------------------------------------------------------------ speed: what a selection redraws, what is asked

def _long_body(T: int, m: int = 8, seed: int = 1) -> dict:
    import random
    r = random.Random(seed)
    g = lambda: round(r.gauss(0, 1), 3)  # noqa: E731
    return {"inputs": [[g() for _ in range(3)] for _ in range(T)], "targets": [[g() for _ in range(2)] for _ in range(T)],
            "init": {"seed": seed, "hidden": m, "outputs": 2}}


COUNT_REACTS = """() => {
    window.__reacts = [];
    if (!window.__orig) { window.__orig = Plotly.react; }
    Plotly.react = function (el, ...a) { window.__reacts.push(el.id); return window.__orig.call(this, el, ...a); };
}"""


def _press_and_wait(page, key: str) -> None:
    v = page.evaluate("() => Number(document.body.dataset.views || 0)")
    page.keyboard.press(key)
    wait_views(page, v)


def test_a_selection_redraws_only_what_depends_on_it(watched, base):
    """A move of k redraws the graph only (the ‖δ‖ heatmap's and the δ rows' frames are boxes
    moved over the plots); a move of t adds the δ vectors of row t and the vanishing plot's
    row, whose cloud of every (t, k) is the same object (not rebuilt, not re-sent to Plotly)."""
    page, watch = watched
    open_page(page, base)
    _load_json(page, _long_body(100))
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.evaluate(COUNT_REACTS)
    frame = lambda: page.evaluate("() => document.querySelector('.sel-frame[data-for=\"heat-delta\"]').getBoundingClientRect().toJSON()")  # noqa: E731
    f0 = frame()
    _press_and_wait(page, "ArrowLeft")
    assert page.evaluate("() => window.__reacts") == ["graph"]
    f1 = frame()
    assert f1["x"] < f0["x"] and f1["y"] == f0["y"], (f0, f1)  # the frame moved one column left
    cloud = page.evaluate("() => { window.__cloud = document.getElementById('plot-vanish').data[0]; return window.__cloud.type; }")
    assert cloud == "heatmap"  # 5050 pairs (t, k): drawn as their density, not 5050 SVG points
    page.evaluate(COUNT_REACTS)
    _press_and_wait(page, "ArrowUp")
    assert sorted(page.evaluate("() => window.__reacts")) == ["graph", "heat-deltarow", "plot-vanish"]
    assert page.evaluate("() => document.getElementById('plot-vanish').data[0] === window.__cloud")
    assert frame()["y"] < f1["y"]
    assert_clean(watch)


def _change_seed(page, seed: int) -> list[str]:
    """Sets the seed (new weights: every plot changes); returns the plots drawn by the time the
    render counter moved (recorded by a MutationObserver, before any idle callback can run)."""
    return page.evaluate("""async (seed) => {
        const before = Number(document.body.dataset.renders);
        const seen = new Promise((resolve) => {
            const obs = new MutationObserver(() => {
                if (Number(document.body.dataset.renders) > before) { obs.disconnect(); resolve([...window.__reacts]); }
            });
            obs.observe(document.body, { attributes: true, attributeFilter: ['data-renders'] });
        });
        const el = document.getElementById('seed');
        el.value = String(seed);
        el.dispatchEvent(new Event('change', { bubbles: true }));
        return seen;
    }""", seed)


def test_a_change_draws_the_plots_in_view_first_and_the_others_when_idle_seen_or_printed(watched, base):
    """A change (new weights) draws the plots in the window (200 px beyond it) before the page says
    it is ready; the plots out of view are marked stale (data-pending) and drawn when the page is
    idle, each from the response of that moment: when all are drawn every plot shows the new
    weights. With no idle time (requestIdleCallback stubbed) a stale plot is drawn when it is
    scrolled into view, and the rest before printing."""
    page, watch = watched
    open_page(page, base, "/?preset=classroom&lang=en")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    in_view = page.evaluate(IN_VIEW)
    assert "graph" in in_view and "heat-contrib" not in in_view, in_view
    hidden_z = lambda: page.evaluate("() => document.getElementById('heat-hidden').data[0].z")  # noqa: E731
    z0 = hidden_z()
    page.evaluate(COUNT_REACTS)
    first = _change_seed(page, 101)
    assert set(first) == set(in_view), (first, in_view)  # nothing out of view drawn before "ready"
    settled(page)
    assert set(page.evaluate("() => window.__reacts")) == set(PLOTS)  # the rest, when idle
    assert hidden_z() != z0 and hidden_z() == response(page)["forward"]["h"]  # the new response's h
    # no idle time: seen or printed
    page.evaluate("() => { window.requestIdleCallback = () => 0; }")
    page.evaluate(COUNT_REACTS)
    _change_seed(page, 102)
    page.wait_for_timeout(300)
    stale = int(page.evaluate("() => document.body.dataset.pending"))
    assert stale == len(PLOTS) - len(in_view), stale
    assert "heat-contrib" not in page.evaluate("() => window.__reacts")
    page.evaluate("() => document.getElementById('heat-contrib').scrollIntoView()")
    page.wait_for_function("() => window.__reacts.includes('heat-contrib')")
    assert int(page.evaluate("() => document.body.dataset.pending")) < stale
    page.evaluate("() => window.scrollTo(0, 0)")
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    settled(page)
    assert set(page.evaluate("() => window.__reacts")) == set(PLOTS)
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    assert_clean(watch)


ROW_T = "() => document.getElementById('heat-deltarow').layout.yaxis.title.text"
FRAME_AT = """(id) => {
    const gd = document.getElementById(id), fl = gd._fullLayout;
    const box = gd.parentElement.querySelector(`.sel-frame[data-for="${id}"]`).getBoundingClientRect();
    const g = gd.getBoundingClientRect();
    const inside = box.left >= g.left - 1 && box.right <= g.right + 1 && box.top >= g.top - 1 && box.bottom <= g.bottom + 1;
    return { inside, x: fl.xaxis.p2l(box.left + box.width / 2 - g.left - fl._size.l),
             y: fl.yaxis.p2l(box.top + box.height / 2 - g.top - fl._size.t) };
}"""


def test_a_plot_out_of_view_waits_for_its_row_and_its_frame_follows_every_resize(watched, base):
    """The δ-row heatmap out of view after a move of t: its row is asked for at the key, and the
    page counts it as pending until that row is drawn, also when printing flushes it (it said
    "drawn" with the old row). The selection frames sit on the selected cell and row after the
    projector view is switched on and off (Plotly's own resize comes after the element's)."""
    page, watch = watched
    open_page(page, base, "/?preset=classroom&lang=en")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    assert "heat-deltarow" not in page.evaluate(IN_VIEW)
    t = lambda: page.evaluate("() => window.bptt.state.sel.t") + 1  # noqa: E731
    for flush in (False, True):
        page.keyboard.press("ArrowUp")
        if flush:  # printed at once: the row is still on its way
            page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        settled(page)
        assert f"t = {t()})" in page.evaluate(ROW_T), (t(), page.evaluate(ROW_T))
        if flush:
            page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    sel = page.evaluate("() => window.bptt.state.sel")
    for on in (True, False):
        page.click("#projector")
        page.wait_for_function("(on) => document.body.classList.contains('projector') === on", arg=on)
        page.wait_for_timeout(600)  # (Plotly's responsive resize waits for a timer)
        page.evaluate("() => document.getElementById('heat-deltarow').scrollIntoView()")
        settled(page)
        page.wait_for_timeout(100)
        cell, row = page.evaluate(FRAME_AT, "heat-delta"), page.evaluate(FRAME_AT, "heat-deltarow")
        assert cell["inside"] and row["inside"], (on, cell, row)
        assert abs(cell["x"] - (sel["k"] + 1)) < 0.5 and abs(cell["y"] - (sel["t"] + 1)) < 0.5, (on, cell, sel)
        assert abs(row["y"] - (sel["k"] + 1)) < 0.5, (on, row, sel)
        page.evaluate("() => window.scrollTo(0, 0)")
    assert_clean(watch)


def test_the_page_asks_only_for_the_fields_its_panels_draw(watched, base):
    page, watch = watched
    sent = []
    page.on("request", lambda r: r.method == "POST" and "/api/v1/bptt" in r.url and sent.append(r.post_data_json))
    open_page(page, base, "/?preset=classroom&hide=deltarow,formula,steps")
    fields = set(sent[-1]["fields"])
    resp = response(page)
    assert not {"delta", "delta_row"} & fields and "delta_row" not in resp and "dh" not in fields, fields
    assert {"delta_norm", "forward", "grads", "grads_per_step"} <= fields and resp["grads_per_step"], fields
    assert "select" not in sent[-1] and "backward_parts" not in resp  # no formula panel, no parts
    # the contributions per unrolled copy are the API's grads_per_copy: switching asks for them
    n = renders(page)
    page.select_option("#contrib-by", "copy")
    wait_render(page, n)
    assert "grads_per_copy" in sent[-1]["fields"] and "grads_per_step" not in sent[-1]["fields"]
    z = page.evaluate("() => document.getElementById('heat-contrib').data[0].z")
    flat = lambda a: [x for r in a for x in (r if isinstance(r, list) else [r])]  # noqa: E731
    copies = response(page)["grads_per_copy"].values()
    assert len(z) == resp["shapes"]["T"] and any(z[1] == flat(g[1]) for g in copies)  # the API's numbers, as sent
    open_page(page, base, "/?preset=classroom")
    # the δ-row heatmap's row t, not the whole table (~12 MB of JSON at T = 256, m = 16)
    assert "delta_row" in sent[-1]["fields"] and "delta" not in sent[-1]["fields"] and response(page)["delta_row"]
    # the formula panel's numbers come with the computation: select names the selection
    sel = page.evaluate("() => window.bptt.state.sel")
    assert sent[-1]["select"] == {"t": sel["t"], "k": sel["k"]} and response(page)["backward_parts"]["t"] == sel["t"]
    # the exported response is the whole one, every field
    with page.expect_download() as dl:
        page.click("details.menu > summary")
        page.click("#export-response")
    whole = json.loads(Path(dl.value.path()).read_text())
    assert "dh" in whole and "delta" in whole and whole["delta"][sel["t"]] == response(page)["delta_row"]
    assert_clean(watch)


def test_a_long_sequence_draws_a_window_of_steps(watched, base):
    """T ≥ 61: the graph draws 40 steps around the selection with readable labels; ◀ ▶ move the
    window, an arrow key brings it back; the edges are coloured on the ‖δ‖ heatmap's one scale
    (a W_hh of 0.99 barely decays: one colour, not a rainbow relative to the row)."""
    page, watch = watched
    open_page(page, base)
    assert page.get_attribute("#size-T", "max") == "1024"  # what the API allows (BPTT_MAX_T)
    _load_json(page, _long_body(200))
    xr = lambda: page.evaluate("() => document.getElementById('graph').layout.xaxis.range")  # noqa: E731
    lo, hi = xr()
    assert hi - lo < 43 and hi > 199, (lo, hi)
    assert "161–200" in page.inner_text("#graph-range"), page.inner_text("#graph-range")
    colours = page.evaluate("() => document.getElementById('graph').data.filter((d) => d.mode === 'lines' && d.line.width > 2).length")
    assert colours >= 1  # the paths of the selected loss are drawn
    page.click("#graph-prev")
    page.wait_for_function("(hi) => document.getElementById('graph').layout.xaxis.range[1] < hi", arg=hi)
    assert "141–180" in page.inner_text("#graph-range")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("(hi) => document.getElementById('graph').layout.xaxis.range[1] >= hi", arg=hi)
    body = {"activation": "identity", "inputs": [[1.0]] * 20, "targets": [[0.0]] * 20, "h0": [0.0],
            "params": {"W_xh": [[0.1]], "W_hh": [[0.99]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}}
    _load_json(page, body)
    widths = page.evaluate("() => document.getElementById('graph').data.filter((d) => d.mode === 'lines' && d.line.width > 2).map((d) => d.line.color)")
    assert len(widths) == 1, widths  # one colour: the row decays by 0.99 a step (relative to the row it was five)
    assert_clean(watch)


def test_the_state_can_be_written_s_as_the_notes_do(watched, base):
    """Seeds 000 and 004 write the hidden state sₜ: a display choice (graph, hidden-state panel,
    formulas), kept in the link; the API's request and names are unchanged."""
    page, watch = watched
    open_page(page, base, "/?preset=note-003&lang=zh")
    n = page.evaluate("() => window.bptt.perf.views")
    page.select_option("#state-letter", "s")
    wait_views(page, n)
    texts = page.evaluate("() => document.getElementById('graph').data.filter((d) => d.name === '隐状态 hₜ')[0].text")
    assert texts[:4] == ["s0", "s1", "s2", "s3"], texts
    assert page.inner_text("#hidden-title") == "隐状态 sₜ"
    # the bases of the subscripted symbols: sₜ, never hₜ (W_hh keeps its letters)
    bases = page.evaluate("() => [...document.querySelectorAll('#formula msub, #formula msubsup')].map((e) => e.firstElementChild.textContent)")
    assert "s" in bases and "h" not in bases, bases
    assert "state" not in json.dumps(page.evaluate("() => window.bptt.state.req")) and response(page)["names"]["h"] == "h"
    for _ in range(50):  # the URL is written asynchronously (the state is deflated)
        href = page.evaluate("() => location.href")
        if decode_state(href)["v"].get("stateLetter") == "s":
            break
        page.wait_for_timeout(100)
    page.goto(href)
    page.reload()
    wait_render(page, 0)
    assert page.input_value("#state-letter") == "s" and page.inner_text("#hidden-title") == "隐状态 sₜ"
    assert_clean(watch)


def test_the_forward_pass_and_dh_with_numbers(watched, base):
    """Note 003's unrolling with its numbers (zₜ, hₜ, oₜ, eₜ, Lₜ), ∂L/∂hₖ of the dh_next pass,
    ∂L/∂xₖ and ∂L/∂h₀: the course notebook's da0[2][3] = −0.3149 is on the page."""
    page, watch = watched
    open_page(page, base, "/?preset=note-003")
    resp = response(page)
    text = page.inner_text("#steps")
    from_resp = lambda v: f"{v:.4g}".replace("-", "−")  # noqa: E731  (util.js fmt: 4 significant digits)
    t, k = page.evaluate("() => [window.bptt.state.sel.t, window.bptt.state.sel.k]")
    for v in (resp["forward"]["z"][t][0], resp["forward"]["h"][t][0], resp["e"][t][0], resp["forward"]["loss_t"][t],
              resp["dh"][k][0], resp["dz"][k][0], resp["grads"]["inputs"][k][0], resp["grads"]["h0"][0]):
        assert from_resp(v) in text, (v, text)
    assert "tanh(z3)" in text and "W_xh x3 + W_hh h2 + b_h" in text, text
    open_page(page, base, "/?preset=course-notebook")
    n = page.evaluate("() => window.bptt.perf.views")
    page.select_option("#batch-b", "3")  # the notebook's batch index 3
    wait_views(page, n)
    page.wait_for_function("() => document.getElementById('steps').innerText.includes('−0.3149')")
    assert_clean(watch)


def test_the_vanishing_verdict_reads_the_whole_span(watched, base):
    """The classroom preset shrinks ‖δ‖ by about 0.8 a step: 0.15 over its 9 steps back, which
    the reading calls vanishing (it said "neither" from the factor per step alone), naming the
    remedies."""
    page, watch = watched
    open_page(page, base, "/?preset=classroom")
    reading = page.inner_text("#vanish-reading")
    assert reading.startswith("Vanishing") and "Over the 9 steps" in reading, reading
    assert "LSTM" in reading and "residual cell" in reading, reading
    assert_clean(watch)


def test_clipping_shows_before_and_after_on_one_scale(watched, base):
    """With clipping by norm on, each gradient is drawn before and after clipping with one colour
    range (each on its own scale they looked identical), and the factor is said."""
    page, watch = watched
    open_page(page, base, "/?preset=note-003")
    body = page.evaluate("() => window.bptt.state.req")
    body["clip"] = {"max_norm": 0.1}
    _load_json(page, body)
    resp = response(page)
    assert resp["clip"]["clipped"], resp["clip"]
    f = resp["clip"]["norm_after"] / resp["clip"]["norm_before"]
    traces = page.evaluate("""() => document.getElementById('heat-grads').data
        .filter((d) => d.type === 'heatmap' && d.zmax !== undefined).map((d) => [d.z, d.zmin, d.zmax])""")
    n = len(resp["params"])  # the five weights (grads also holds inputs and h0)
    assert len(traces) == 2 * n, len(traces)
    for (zb, lo_b, hi_b), (za, lo_a, hi_a) in zip(traces[:n], traces[n:]):  # a row before, a row after
        assert (lo_b, hi_b) == (lo_a, hi_a)  # one scale for before and after
        assert hi_b == pytest.approx(max(abs(v) for r in zb for v in r))
        assert za[0][0] == pytest.approx(zb[0][0] * f, rel=1e-12)
    note = page.inner_text("#grads-note")
    assert f"{f:.4g}" in note, note
    labels = page.evaluate("() => document.getElementById('heat-grads').layout.annotations.map((a) => a.text)")
    assert "<b>before clipping</b>" in labels and any(t.startswith("<b>after (×") for t in labels), labels
    assert_clean(watch)


def test_small_gradients_print_numbers_only_where_they_fit(watched, base):
    """The gradient panel: the cell's arrays in one row, the output layer's below, each as wide as
    its columns; a 4×4 gradient prints its numbers (each cell wide enough for "−0.0263"), while
    the LSTM's 16-row gradients, whose cells are a few pixels high, keep them in the hover (they
    ran into each other)."""
    page, watch = watched
    open_page(page, base, "/?preset=classroom")
    got = page.evaluate("""() => { const gd = document.getElementById('heat-grads'), L = gd._fullLayout;
        return gd.data.filter((d) => d.type === 'heatmap' && d.zmax !== undefined).map((d) => {
          const xa = L[d.xaxis.replace('x', 'xaxis')], ya = L[d.yaxis.replace('y', 'yaxis')];
          return { rows: d.z.length, cols: d.z[0].length, text: !!d.texttemplate,
                   cellPx: xa._length / d.z[0].length, cellRowPx: ya._length / d.z.length, top: ya.domain[1] }; }); }""")
    assert len(got) == 5, got
    w_hh, w_hy = got[1], got[3]
    assert (w_hh["rows"], w_hh["cols"]) == (4, 4) and w_hh["text"] and w_hh["cellPx"] >= 40, got
    assert w_hy["top"] < got[0]["top"], got  # the output layer below the cell's arrays
    assert all(g["text"] == (g["cellPx"] >= 40 and g["cellRowPx"] >= 14) for g in got), got
    open_page(page, base, "/?preset=long-span-lstm")
    got = page.evaluate("""() => document.getElementById('heat-grads').data
        .filter((d) => d.type === 'heatmap' && d.zmax !== undefined && d.z.length === 16 && d.z[0].length * 16 <= 48)
        .map((d) => !!d.texttemplate)""")
    assert got and not any(got), got
    assert_clean(watch)
