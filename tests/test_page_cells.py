"""The page with every cell of the registry, in headless Chromium: a cell switch vanilla → LSTM →
GRU → vanilla leaves a working page with the right grids and plots, the state survives a link,
the BPTT-beside-RTRL panel shows the API's difference, and the Chinese page says the new parts
in Chinese. One server, one browser and one page for the module (a fresh page per test would
cost seconds each); each test starts from its own URL.

    python -m pytest -q tests/test_page_cells.py
"""

from __future__ import annotations

import os
import re

import pytest

from browser import VIEWPORT, Watch, chromium, decode_state, open_page, renders, response, wait_render, wait_views

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def session():
    """One browser, one context and one page for the module, with its Watch."""
    with chromium() as b:
        ctx = b.new_context(viewport=VIEWPORT)
        ctx.set_default_timeout(15_000)
        page = ctx.new_page()
        watch = Watch()
        watch.attach(page)
        yield page, watch


@pytest.fixture
def watched(session):
    page, watch = session
    watch.page_errors.clear()
    watch.console_errors.clear()
    return page, watch


def assert_clean(watch: Watch) -> None:
    assert watch.page_errors == [], watch.page_errors
    assert watch.unexpected_console_errors() == [], watch.console_errors


def switch(page, selector: str, value: str) -> dict:
    n = renders(page)
    page.select_option(selector, value)
    wait_render(page, n, timeout=30_000)
    return response(page)


def gate_rows(page, field: str) -> list[str]:
    """The row labels of a weight grid (the gate and unit, "f₂", for gated cells)."""
    return page.evaluate("""(field) => [...document.querySelector(`[data-param="${field}"]`).querySelectorAll('tr[data-gate] > th')]
        .map((th) => th.textContent)""", field)


def graph_names(page) -> list[str]:
    return page.evaluate("() => document.getElementById('graph').data.map((d) => d.name).filter(Boolean)")


def test_a_cell_switch_vanilla_lstm_gru_vanilla_leaves_a_working_page(watched, base):
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=classroom")
    page.click("#box-params > summary")
    menu = page.evaluate("() => [...document.getElementById('cell').options].map((o) => o.value)")
    assert menu == ["vanilla", "residual", "lstm", "gru"]  # from GET /api/v1/cells
    T0 = response(page)["shapes"]["T"]
    inputs0 = page.evaluate("() => JSON.stringify(window.bptt.state.req.inputs)")
    for cell, G, gates in (("lstm", 4, "ifgo"), ("gru", 3, "run"), ("vanilla", 1, "")):
        r = switch(page, "#cell", cell)
        assert r["cell"] == cell and r["nonfinite"] == [] and r["shapes"]["T"] == T0, r["warnings"]
        assert page.evaluate("() => JSON.stringify(window.bptt.state.req.inputs)") == inputs0  # kept
        m = r["shapes"]["m"]
        assert re.search(r"\d+ ms", page.inner_text("#status")), page.inner_text("#status")
        W = r["names"].get("W_ih") or r["names"]["W_xh"]
        if G > 1:
            rows = gate_rows(page, f"params.{W}")
            assert len(rows) == G * m and rows[0] == f"{gates[0]}₁" and rows[m] == f"{gates[1]}₁", rows
            assert page.is_visible("#panel-gates")
            bands = page.evaluate("() => document.getElementById('heat-gates').data.length")
            assert bands == G + (cell == "lstm")  # each gate, and the LSTM's c
            assert page.is_disabled("#activation")  # gated cells take tanh only
            assert len(r["delta_row"][0]) == G * m  # δ over the stacked gate pre-activations
        else:
            assert gate_rows(page, f"params.{W}") == [] and not page.is_visible("#panel-gates")
            assert not page.is_disabled("#activation")
        assert ("cell state cₜ" in graph_names(page)) == (cell == "lstm")  # the rail
        assert page.is_visible("#box-c0") == (cell == "lstm")
        # the graph is coloured by ‖∂L_t/∂h_k‖ for every cell, the heatmap is drawn
        assert r["delta_h_norm"] and page.evaluate("() => document.getElementById('heat-delta').data[0].z.length") == T0
    assert_clean(watch)


def test_the_state_survives_a_link(watched, base, session):
    """Cell, method, c0 and the heatmap's measure go into the URL and come back from it."""
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=long-span-lstm")
    page.click("#box-c0 > summary")
    n = renders(page)
    page.fill('[data-field="c0[1]"]', "0.25")
    wait_render(page, n)
    views = page.evaluate("() => Number(document.body.dataset.views)")
    page.select_option("#delta-measure", "dh")  # a view change: redrawn, not recomputed
    wait_views(page, views)
    assert page.evaluate("() => document.getElementById('heat-delta').data[0].colorbar.title.text") == "log₁₀‖∂L/∂h‖"
    r = switch(page, "#method", "rtrl")
    assert r["method"] == "rtrl" and r["delta_norm"] is None and r["grads"]["c0"]
    page.wait_for_function("() => !!document.querySelector('#rtrl .verdict')")
    href = page.evaluate("() => location.href")
    state = decode_state(href)
    assert state["r"]["cell"] == "lstm" and state["r"]["method"] == "rtrl" and state["r"]["c0"][1] == 0.25
    assert state["v"]["measure"] == "dh"
    page.goto("about:blank")
    page.goto(href)
    wait_render(page, 0, timeout=30_000)
    again = response(page)
    assert again["cell"] == "lstm" and again["method"] == "rtrl" and again["grads"] == r["grads"]
    assert page.input_value("#cell") == "lstm" and page.input_value("#method") == "rtrl"
    assert page.input_value("#delta-measure") == "dh"
    # RTRL has no δ table: the δ panels say so, the page still works (an arrow key moves the selection)
    assert page.evaluate("() => document.getElementById('heat-delta').layout.annotations[0].text").startswith("RTRL has no δ table")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    k = page.evaluate("() => window.bptt.state.sel.k")
    page.keyboard.press("ArrowLeft" if k > 0 else "ArrowRight")
    page.wait_for_function("(k) => window.bptt.state.sel.k !== k", arg=k)
    # back to BPTT: the δ table is there again
    r = switch(page, "#method", "bptt")
    assert r["delta_norm"] and page.evaluate("() => document.getElementById('heat-delta').data.length") >= 1
    assert_clean(watch)


def test_the_rtrl_panel_shows_the_same_gradient(watched, base):
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=long-span-gru")
    assert page.is_visible("#rtrl-run") and page.inner_text("#rtrl") == ""
    sent = []
    page.on("request", lambda q: q.method == "POST" and "/api/v1/bptt" in q.url and sent.append(q.post_data_json))
    page.click("#rtrl-run")
    page.wait_for_function("() => !!document.querySelector('#rtrl .verdict')")
    assert sent[-1]["fields"] == ["methods"]
    d = float(page.get_attribute("#rtrl .verdict", "data-max-rel-diff"))
    assert 0 <= d < 1e-10
    text = page.inner_text("#rtrl")
    assert "O(T·S²·|θ|)" in text and "O(S·|θ|)" in text and "O(T·S²)" in text and "O(T·S)" in text, text
    times = page.evaluate("() => [...document.querySelectorAll('#rtrl tr[data-route]')].map((r) => r.cells[1].textContent)")
    assert len(times) == 2 and all(re.fullmatch(r"[\d.e+−]+ ms", t) for t in times), times
    # the panel stays open (view.rtrl) and follows the model
    n = int(page.evaluate("() => Number(document.body.dataset.rtrl)"))
    switch(page, "#cell", "vanilla")
    page.wait_for_function("(n) => Number(document.body.dataset.rtrl) > n", arg=n)
    assert float(page.get_attribute("#rtrl .verdict", "data-max-rel-diff")) < 1e-10
    assert_clean(watch)


ALLOWED = {"LSTM", "GRU", "BPTT", "RTRL", "RNN", "tanh", "Williams", "Zipser", "PyTorch", "dh_next", "NNDL"}


def english_words(text: str) -> list[str]:
    """Latin words of three letters or more that are neither names nor symbols the course uses."""
    return [w for w in re.findall(r"[A-Za-z][A-Za-z_]{2,}", text) if w not in ALLOWED and not re.fullmatch(r"[A-Za-z]_\w+", w)]


def test_the_chinese_page_says_the_new_parts_in_chinese(watched, base):
    page, watch = watched
    open_page(page, base, "/?lang=zh&preset=long-span-lstm")
    page.click("#rtrl-run")
    page.wait_for_function("() => !!document.querySelector('#rtrl .verdict')")
    page.click("#box-params > summary")
    page.click("#box-c0 > summary")
    parts = {
        "cell menu": page.evaluate("() => [...document.getElementById('cell').options].map((o) => o.textContent).join(' ')"),
        "method menu": page.evaluate("() => [...document.getElementById('method').options].map((o) => o.textContent).join(' ')"),
        "measure menu": page.evaluate("() => [...document.getElementById('delta-measure').options].map((o) => o.textContent).join(' ')"),
        "gates panel": page.inner_text("#panel-gates"),
        "rtrl panel": page.inner_text("#panel-rtrl"),
        "grids": page.inner_text("#box-params"),
        "c0": page.inner_text("#box-c0 > summary"),
        "preset": page.inner_text("#preset-desc"),
        "graph legend": page.inner_text("#panel-graph"),
        "gate names": page.evaluate("() => [...document.querySelectorAll('tr[data-gate] > th')].map((th) => th.title).join(' ')"),
        "graph hover": page.evaluate("() => document.getElementById('graph').data.flatMap((d) => d.hovertemplate || []).join(' ')"),
    }
    for where, text in parts.items():
        assert CJK.search(text) or where in ("measure menu",), (where, text[:200])
        assert english_words(text.replace("<extra></extra>", "").replace("<br>", " ").replace("<sub>", " ").replace("</sub>", " ")) == [], (where, english_words(text), text[:300])
    assert "遗忘门" in parts["gate names"] and "内部状态" in parts["gates panel"]
    assert_clean(watch)


def test_screenshots_of_the_lstm_page(watched, base, tmp_path_factory):
    """The LSTM page in both languages, saved for a person to look at (BPTT_SCREENSHOTS=dir keeps them)."""
    page, watch = watched
    out = os.environ.get("BPTT_SCREENSHOTS") or str(tmp_path_factory.mktemp("cells"))
    for lang in ("zh", "en"):
        open_page(page, base, f"/?lang={lang}&preset=long-span-lstm")
        assert page.is_visible("#panel-gates") and response(page)["cell"] == "lstm"
        assert len(graph_names(page)) == 5  # the nodes x, h, c (the rail), ŷ, L
        page.screenshot(path=os.path.join(out, f"lstm-{lang}.png"), full_page=True)
    assert_clean(watch)


def test_the_contributions_name_a_gated_cells_rows_by_gate(watched, base):
    """The contributions of the LSTM's stacked W_hh (4m × m) are labelled by gate and unit, as the
    editor's grids name the rows ("f₂,1", not "6,1"); the output layer keeps its row numbers; the
    colour bar writes 4×10⁻⁴, not Plotly's SI "400μ" (a gradient has no unit)."""
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=long-span-lstm")
    xs = "() => document.getElementById('heat-contrib').data[0].x"
    page.select_option("#contrib-param", "W_hh")  # (redrawn in place: no new computation)
    page.wait_for_function(f"() => ({xs})().length === {16 * 4}")
    x = page.evaluate(xs)
    m = response(page)["shapes"]["m"]
    assert x[:2] == ["i₁,1", "i₁,2"] and f"f₁,1" in x and x[-1] == f"o{'₀₁₂₃₄₅₆₇₈₉'[m]},{m}", x
    assert x[m * m] == "f₁,1"  # the f block starts after the m rows of i
    assert gate_rows(page, "params.W_hh")[m] == "f₁"  # the editor's name of the same row
    bar = page.evaluate("() => document.getElementById('heat-contrib').data[0].colorbar.exponentformat")
    assert bar == "power"
    page.select_option("#contrib-param", "W_hy")
    page.wait_for_function(f"() => ({xs})()[0] === '1,1'")
    assert_clean(watch)


STEPS_ROWS = "() => [...document.querySelectorAll('#steps table.steps tr')].map((r) => [...r.cells].map((c) => c.textContent))"


@pytest.mark.parametrize("cell, h_formula", [("lstm", "o50 ⊙ tanh(c50)"), ("gru", "(1 − u50) ⊙ n50 + u50 ⊙ h49")])
def test_the_steps_panel_writes_a_gated_cells_own_forward_step(watched, base, cell, h_formula):
    """The forward pass and ∂L/∂h panel of a gated cell: aₜ (the stacked gates) from W_ih and
    W_hh, the cell's own hₜ (the LSTM's cₜ), ∂L/∂aₖ and W_ihᵀ (it wrote the vanilla zₜ = W_xh xₜ + …,
    hₜ = tanh(zₜ), f′(zₖ) ⊙ ∂L/∂hₖ and W_xh, a name the cell has not); the target of the one loss
    step, given for the loss steps only, is shown (it said "not in this response")."""
    page, watch = watched
    open_page(page, base, f"/?lang=en&preset=long-span-{cell}")
    rows = {r[0]: r[1:] for r in page.evaluate(STEPS_ROWS)}
    text = page.inner_text("#steps")
    assert "W_xh" not in text and "f′(z" not in text, text
    assert rows["a50"][0].startswith("W_ih x50 + b_ih + W_hh h49 + b_hh"), rows["a50"]
    assert rows["h50"][0] == h_formula, rows["h50"]
    assert ("c50" in rows) == (cell == "lstm")
    assert rows["y50"][1] == "[1]", rows["y50"]  # targets [[1.0]] for the last step only
    assert "∂L/∂a49" in rows and rows["∂L/∂x49"][0] == "W_ihᵀ ∂L/∂a49"
    assert_clean(watch)


def test_the_vanishing_panel_and_delta_rows_of_a_gated_cell(watched, base):
    """The LSTM's δ rows are named by gate and unit (G·m entries, not "unit i" 1 … 16); the bound's
    legend says ‖Lₖ‖ (for a gated cell max|f′| becomes ‖∂sₖ/∂aₖ‖, as the formula panel says) and
    the stats leave out the spectral radius a stacked 4m × m W_hh has not ("Spectral radius —")."""
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=long-span-lstm")
    x = page.evaluate("() => document.getElementById('heat-deltarow').data[0].x")
    assert x[0] == "i₁" and x[4] == "f₁" and len(x) == 16, x
    names = page.evaluate("() => document.getElementById('plot-vanish').data.map((d) => d.name)")
    assert any("‖Lₖ‖" in (n or "") for n in names) and not any("max|f′|" in (n or "") for n in names), names
    stats = page.inner_text("#vanish-stats")
    assert "Spectral radius" not in stats and "1.313" in stats, stats
    open_page(page, base, "/?lang=en&preset=long-span-vanilla")
    assert "Spectral radius" in page.inner_text("#vanish-stats")
    names = page.evaluate("() => document.getElementById('plot-vanish').data.map((d) => d.name)")
    assert any("max|f′|" in (n or "") for n in names), names
    assert_clean(watch)


HEATMAPS = """() => { const el = document.getElementById('heat-grads');
  return el.data.filter((d) => d.type === 'heatmap' && d.hovertemplate.includes('max |·|'))
    .map((d) => [d.hovertemplate.split('[')[0], !!d.texttemplate, d.yaxis]); }"""


def test_the_summed_gradients_print_numbers_only_where_they_fit(watched, base):
    """Numbers in the cells only where a cell is wide and high enough for one: they overlapped
    in the classroom's 4 × 4 W_hh beside four other arrays (now the output layer's arrays go
    below, and W_hh's cells hold them) and in the LSTM's 16 × 2 W_ih; a 1 × 1 array keeps its
    number. The LSTM's stacked rows are named by gate and unit."""
    page, watch = watched
    open_page(page, base, "/?lang=en&preset=classroom")
    shown = {name: text for name, text, _ in page.evaluate(HEATMAPS)}
    assert shown["∂L/∂W_hh"] is True and shown["∂L/∂b_h"] is True, shown
    open_page(page, base, "/?lang=en&preset=note-003")
    assert all(text for _, text, _ in page.evaluate(HEATMAPS))
    open_page(page, base, "/?lang=en&preset=long-span-lstm")
    maps = page.evaluate(HEATMAPS)
    shown = {name: text for name, text, _ in maps}
    assert shown["∂L/∂W_ih"] is False and shown["∂L/∂W_hh"] is False, shown
    axis = next(ax for name, _, ax in maps if name == "∂L/∂W_hh")
    ticks = page.evaluate(f"() => document.getElementById('heat-grads').layout['yaxis{axis[1:]}'].ticktext")
    assert ticks[:5] == ["i₁", "i₂", "i₃", "i₄", "f₁"] and ticks[-1] == "o₄", ticks
    assert_clean(watch)
