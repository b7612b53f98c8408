"""The page a teacher teaches with (issue 12), in headless Chromium against the real app: the
graph's and the heatmap's colour range with truncation, the notes' δ⁽ᵏ⁾ name wherever ∂L/∂hₖ is
shown, the output bias in the weight grids, and the top bar on one row in both languages.

One server and one browser per module; every test gets a fresh context and page. Without
Chromium the tests are skipped, except under CI=true, where that is a failure.

    python -m pytest -q tests/test_page_teaching.py
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from browser import VIEWPORT, assert_page_clean, open_page, renders, wait_render, wait_views, watched_page


@pytest.fixture
def page(browser):
    ctx, p = watched_page(browser, VIEWPORT)
    yield p
    assert_page_clean(p)
    ctx.close()


def load(page, base, body, lang="en", path="/"):
    """The page at path with body applied through its JSON box (one full render)."""
    open_page(page, base, f"{path}{'&' if '?' in path else '?'}lang={lang}")
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)


# a contracting model: ‖∂L_t/∂h_k‖ falls with t − k, so with truncation K its smallest kept
# values are on the row t − k = K (h_k still feeds copy k + 1 there)
T, K = 10, 3
CONTRACTING = {
    "inputs": [[1.0], [-0.5]] * (T // 2), "targets": [[0.3]] * T, "truncation": K,
    "params": {"W_xh": [[0.5], [0.2]], "W_hh": [[0.3, 0.05], [0.0, 0.25]], "b_h": [0.0, 0.1],
               "W_hy": [[1.0, -0.5]], "b_y": [0.0]},
}


def test_truncated_colour_range_holds_the_row_t_minus_k_equal_K(page, base):
    """‖∂L_t/∂h_k‖ is kept for t − k ≤ K: the heatmap's colour range (measure ∂L/∂h) and the
    graph's edge colours (logRange, shared) reach its smallest value, on the row t − k = K; ‖δ‖'s
    range stops at t − k = K − 1 (δ_{t,k} with t − k ≥ K is dropped)."""
    api = httpx.post(f"{base}/api/v1/bptt", json=CONTRACTING | {"fields": ["delta_h_norm", "delta_norm"]}).json()
    dh, dn = api["delta_h_norm"], api["delta_norm"]
    logs = lambda a, reach: [math.log10(a[t][k]) for t in range(T) for k in range(max(0, t - reach), t + 1) if a[t][k]]  # noqa: E731
    want_dh, want_d = logs(dh, K), logs(dn, K - 1)
    assert min(want_dh) < min(logs(dh, K - 1)) - 0.1  # the row t − k = K holds the smallest (the case of the bug)
    load(page, base, CONTRACTING)
    got = page.evaluate("""async () => {
        const { logRange } = await import('/static/js/plots.js');
        const r = window.bptt.response();
        return [logRange(r, r.delta_h_norm, 0, 'dh'), logRange(r, r.delta_norm, 0, 'delta')];
    }""")
    assert got[0] == pytest.approx([min(want_dh), max(want_dh)], abs=1e-12), got
    assert got[1] == pytest.approx([min(want_d), max(want_d)], abs=1e-12), got
    page.select_option("#delta-measure", "dh")
    page.wait_for_function("() => document.getElementById('heat-delta').data[0].colorbar.title.text.includes('∂L')")
    zmin, zmax = page.evaluate("() => { const d = document.getElementById('heat-delta').data[0]; return [d.zmin, d.zmax]; }")
    assert (zmin, zmax) == pytest.approx((min(want_dh), max(want_dh)), abs=1e-12)
    # the graph: L₁₀'s path ends at t − k = K with ∂L₁₀/∂h₇ on the edge h₇ → h₈, coloured on the
    # same scale (one of five viridis levels from the range's bottom), not clamped below it
    page.evaluate("() => { window.bptt.state.sel.t = 9; window.bptt.state.sel.k = 6; }")
    page.keyboard.press("ArrowLeft")  # a selection move redraws the graph (k = 6, 0-based 5)
    page.wait_for_function("() => window.bptt.state.sel.k === 5")
    viridis = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
    lo, hi = min(want_dh), max(want_dh)
    level = min(4, int((math.log10(dh[9][6]) - lo) / (hi - lo) * 4.999))
    colour = page.evaluate("""() => document.getElementById('graph').data.find((d) => d.mode === 'lines'
        && d.x.some((x, i) => x === 7 && d.x[i + 1] === 8 && d.y[i] === d.y[i + 1]) && d.line.color !== '#d5dae1')?.line.color""")
    assert colour == viridis[level], (colour, level)


@pytest.mark.parametrize("size", [(1280, 800), (1440, 900)])
def test_the_top_bar_is_one_row_in_both_languages(browser, base, size):
    """At a classroom laptop's 1280×800 and at 1440×900 the top bar is one row in English and in
    Chinese (the zh labels are wider): every control's box on one line, none over its neighbour,
    nothing cut off at the right; the shortened menus name their choice in full on hover."""
    w, h = size
    ctx = browser.new_context(viewport={"width": w, "height": h})
    page = ctx.new_page()
    try:
        for lang in ("en", "zh"):
            open_page(page, base, f"/?preset=note-003&lang={lang}")
            boxes = page.evaluate("""() => [...document.getElementById('topbar').children]
                .filter((e) => e.offsetParent !== null && !e.classList.contains('spacer'))
                .map((e) => { const r = e.getBoundingClientRect(); return [e.id || e.className || e.tagName, r.left, r.right, r.top, r.bottom]; })""")
            mids = [(top + bottom) / 2 for *_, top, bottom in boxes]
            assert max(mids) - min(mids) < 6, (lang, w, boxes)  # one row
            for a, b in zip(boxes, boxes[1:]):
                assert a[2] <= b[1] + 0.5, (lang, w, a, b)  # side by side, no overlap
            assert boxes[-1][2] <= w, (lang, w, boxes[-1])
            inner = page.evaluate("""() => ['preset', 'notation'].map((id) => { const s = document.getElementById(id),
                l = s.closest('label'); return [s.getBoundingClientRect().right <= l.getBoundingClientRect().right + 0.5, s.title]; })""")
            assert all(fits for fits, _ in inner), (lang, w, inner)
            assert inner[0][1] and inner[1][1] == page.evaluate("() => document.getElementById('notation').selectedOptions[0].text")
            assert page.evaluate("() => document.getElementById('topbar').getBoundingClientRect().height") < 60
    finally:
        ctx.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_notes_delta_k_names_dL_dh_k_in_the_player_as_in_the_steps_table(page, base, lang):
    """With "δ⁽ᵏ⁾ = ∂L/∂hₖ" ticked the total ∂L/∂hₖ is δ⁽ᵏ⁾ wherever it is shown: the steps table's
    row and its dz formula, the player's dh_next pass (its dhₖ row and dzₖ = f′(zₖ) ⊙ δ⁽ᵏ⁾); the
    per-loss ∂Lₜ/∂hₖ of route 1 keeps its name. Unticked: note 003's dhₖ, no δ⁽ᵏ⁾."""
    open_page(page, base, f"/?preset=note-003&lang={lang}")
    page.click("#player-start")
    page.wait_for_function("() => window.bptt.state.view.player?.k === 2 && document.querySelector('#player tr[data-q=dh]')")
    page.keyboard.press("ArrowRight")  # k = 2 (0-based 1)
    page.wait_for_function("() => window.bptt.state.view.player?.k === 1 && window.bptt.state.sel.k === 1")

    def cells(q):
        return page.evaluate("(q) => [...document.querySelectorAll(`#player tr[data-q=${q}] td`)].map((e) => e.textContent)", q)

    def steps():
        return page.evaluate("() => [...document.querySelectorAll('#steps table.steps')[1].rows].map((r) => [...r.cells].map((c) => c.textContent))")

    page.wait_for_function("() => document.querySelector('#player tr[data-q=dh] td')?.textContent === 'dh₂'")
    assert "δ⁽" not in page.inner_text("#player") and "δ⁽" not in page.inner_text("#steps")
    assert cells("dz_pass")[1].endswith("⊙ dh₂")
    n = int(page.evaluate("() => document.body.dataset.views"))
    page.check("#names-dh")
    wait_views(page, n)
    page.wait_for_function("() => document.querySelector('#player tr[data-q=dh] td')?.textContent.startsWith('δ')")
    assert cells("dh")[0] == "δ⁽²⁾ = dh₂", cells("dh")
    assert cells("dz_pass")[1].endswith("⊙ δ⁽²⁾"), cells("dz_pass")
    assert "∂L₃/∂h₂" in cells("carry_row")[1] + cells("carry_row")[0]  # route 1: one loss, its own name
    rows = steps()
    assert rows[0][0] == "δ⁽²⁾ = ∂L/∂h2" and "δ⁽³⁾" in rows[0][1], rows[0]
    assert "⊙ δ⁽²⁾" in rows[1][1], rows[1]
    assert rows[3][0].startswith("δ⁽⁰⁾") and rows[3][1].endswith("δ⁽¹⁾"), rows[3]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_output_bias_option_names_the_weight_grids(page, base, lang):
    """"biases b_h, b_o" on: the editor's weight grids name the output bias b_o (in Goodfellow's
    notation b and c become b_h and b_o), as the gradient grids do; the inputs keep the API's
    field (params.b_y, params.c), named on hover; off again: b_y (c)."""
    open_page(page, base, f"/?preset=note-003&lang={lang}")
    titles = lambda: page.evaluate("() => [...document.querySelectorAll('#grid-params .param-name')].map((e) => e.textContent.split('  ')[0])")  # noqa: E731
    grads = lambda: page.evaluate("() => document.getElementById('heat-grads').layout.annotations.map((a) => a.text)")  # noqa: E731
    assert titles() == ["W_xh", "W_hh", "b_h", "W_hy", "b_y"]

    def tick(on):
        n = int(page.evaluate("() => document.body.dataset.views"))
        page.set_checked("#names-bo", on)
        wait_views(page, n)

    tick(True)
    assert titles() == ["W_xh", "W_hh", "b_h", "W_hy", "b_o"], titles()
    assert "∂L/∂b<sub>o</sub>" in grads()
    assert page.get_attribute("#grid-params .grid-wrap:last-of-type input", "data-field") == "params.b_y[0]"
    assert "b_y" in page.evaluate("() => [...document.querySelectorAll('#grid-params .param-name')].pop().title")
    n = renders(page)
    page.select_option("#notation", "goodfellow")
    wait_render(page, n)
    assert titles() == ["U", "W", "b_h", "V", "b_o"], titles()
    assert page.get_attribute("#grid-params .grid-wrap:last-of-type input", "data-field") == "params.c[0]"
    tick(False)
    assert titles() == ["U", "W", "b", "V", "c"], titles()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_delta_row_heatmap_asks_for_one_row_and_another_when_t_moves(page, base, lang):
    """The δ-row heatmap draws row t of the δ table from the API's delta_row: the page's request
    never names the whole delta; ↑ (another loss t) asks for that row alone and draws it, the
    API's numbers; with detail norms (no δ vectors in the table) the row still comes."""
    import random
    r = random.Random(11)
    T = 8
    body = {"inputs": [[round(r.gauss(0, 1), 3), round(r.gauss(0, 1), 3)] for _ in range(T)],
            "targets": [[round(r.gauss(0, 1), 3)] for _ in range(T)], "init": {"seed": 3, "hidden": 3, "outputs": 1}}
    whole = httpx.post(f"{base}/api/v1/bptt", json=body | {"select": {"t": 0, "k": 0}, "fields": ["delta", "delta_row"]}).json()["delta"]
    sent = []
    page.on("request", lambda q: q.url.endswith("/api/v1/bptt") and sent.append(json.loads(q.post_data)))
    load(page, base, body, lang=lang)
    assert all("delta" not in q.get("fields", ()) for q in sent), [q.get("fields") for q in sent]
    z = lambda: page.evaluate("() => document.getElementById('heat-deltarow').data[0].z")  # noqa: E731
    t = page.evaluate("() => window.bptt.state.sel.t")
    assert z() == whole[t]
    n = int(page.evaluate("() => Number(document.body.dataset.rows || 0)"))
    before = len(sent)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowUp")
    page.wait_for_function("(n) => Number(document.body.dataset.rows || 0) > n && document.body.dataset.pending === '0'", arg=n)
    assert z() == whole[t - 1]
    asked = [q for q in sent[before:] if "delta_row" in q["fields"]]
    assert len(asked) == 1 and asked[0]["select"]["t"] == t - 1 and "delta" not in asked[0]["fields"], asked
    # detail norms: the table holds no δ vectors, the row is still drawn
    load(page, base, body | {"detail": "norms"}, lang=lang)
    assert z() == whole[page.evaluate("() => window.bptt.state.sel.t")]


def test_csv_export_holds_the_whole_table_the_page_no_longer_carries(page, base):
    """The page's response carries row t of δ only; "δ as CSV" asks for the table when clicked:
    one line per (t, k ≤ t, unit), the API's numbers."""
    from pathlib import Path

    body = {"inputs": [[0.5], [-1.0], [0.25], [1.0]], "targets": [[0.1], [0.2], [0.3], [0.4]], "init": {"seed": 2, "hidden": 2, "outputs": 1}}
    whole = httpx.post(f"{base}/api/v1/bptt", json=body | {"fields": ["delta"]}).json()["delta"]
    load(page, base, body)
    assert "delta" not in page.evaluate("() => window.bptt.response()")
    with page.expect_download() as dl:
        page.click("details.menu > summary")
        page.click("#export-csv")
    lines = Path(dl.value.path()).read_text().splitlines()
    assert lines[0] == "sequence,t,k,unit,delta" and len(lines) == 1 + 10 * 2, len(lines)
    got = {tuple(int(x) for x in ln.split(",")[1:4]): float(ln.split(",")[4]) for ln in lines[1:]}
    assert all(got[(t + 1, k + 1, i + 1)] == whole[t][k][i] for t in range(4) for k in range(t + 1) for i in range(2))
