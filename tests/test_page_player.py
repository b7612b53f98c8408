"""The backward pass step by step (static/js/player.js) and the projector / print view
(static/js/projector.js, app.css) in headless Chromium against the real app.

One server, one browser and one page for the module (a few seconds). Without Chromium the
tests are skipped, except under CI=true, where that is a failure.

    python -m pytest -q tests/test_page_player.py
"""

from __future__ import annotations

import json

import httpx
import pytest

from browser import VIEWPORT, assert_page_clean, chromium, decode_state, open_page, renders, wait_render, watched_page

PLAYER_FIELDS = ["delta", "delta_h", "eps_tt", "forward", "dz", "dh_next_pass"]


@pytest.fixture(scope="module")
def page(base):
    with chromium() as b:
        _, p = watched_page(b, VIEWPORT)
        yield p
        assert_page_clean(p)


def numbers(text: str) -> list[float]:
    """The numbers of a shown vector "[−0.0181, 6.597e−4]" (the page's real minus sign)."""
    inner = text.strip().strip("[]").replace("−", "-")
    return [float(x) for x in inner.split(",")]


def shown(page) -> dict[str, list[float]]:
    """data-q → the numbers of that row of the player."""
    rows = page.evaluate("""() => [...document.querySelectorAll('#player tr[data-q]')]
        .map((r) => [r.dataset.q, r.querySelector('.pl-num').textContent])""")
    out = {}
    for q, text in rows:
        if q not in ("col",):
            out[q] = numbers(text)
    return out


def close(a: list[float], b: list[float]) -> bool:
    """Equal to the 4 significant digits the page prints."""
    return len(a) == len(b) and all(abs(x - y) <= 6e-4 * abs(y) + 1e-300 for x, y in zip(a, b))


def player_k(page) -> int | None:
    return page.evaluate("() => window.bptt.state.view.player?.k ?? null")


def wait_k(page, k: int) -> None:
    page.wait_for_function("(k) => window.bptt.state.view.player?.k === k && document.querySelector('#player tr[data-q]')"
                           " && document.getElementById('player-pos').textContent.endsWith('k = ' + (k + 1))", arg=k)


def test_stepping_note_003_shows_the_apis_numbers_for_both_routes(page, base):
    """k = 3, 2, 1 with →: route 1's δ_{3,k} (and W_hhᵀ δ_{3,k+1} = ∂L₃/∂h_k), its column sum,
    route 2's ε_{k,k}, dh_next, dh_k, dz_k are the API's numbers; the two dz_k agree; the edge
    lit in the graph is the one the step crosses; a focused dropdown keeps its value."""
    body = httpx.get(f"{base}/api/v1/presets/note-003").json()
    api = httpx.post(f"{base}/api/v1/bptt", json=body | {"fields": PLAYER_FIELDS}).json()
    open_page(page, base, "/?preset=note-003&lang=en")
    assert player_k(page) is None and page.is_visible("#player-start")
    page.click("#player-start")
    wait_k(page, 2)
    P, t = api["dh_next_pass"], 2
    notation = page.input_value("#notation")
    for step, k in enumerate((2, 1, 0)):
        if step:
            if step == 2:
                page.focus("#notation")  # → moves the player, not the dropdown
            page.keyboard.press("ArrowRight")
            wait_k(page, k)
        s = shown(page)
        assert close(s["delta"], api["delta"][t][k]), (k, s)
        assert close(s["dz_table"], api["dz"][k]) and close(s["dz_pass"], P["dz"][k]), (k, s)
        assert close(s["eps"], api["eps_tt"][k]) and close(s["dh_next"], P["dh_next"][k]) and close(s["dh"], P["dh"][k])
        assert close(s["fprime"], api["forward"]["fprime"][k])
        if k == t:
            assert close(s["eps_row"], api["eps_tt"][t])
        else:
            assert close(s["delta_prev"], api["delta"][t][k + 1]) and close(s["carry_row"], api["delta_h"][t][k])
        # both routes: the same dz_k shown, and the API's gap said
        assert s["dz_table"] == s["dz_pass"]
        agree = page.inner_text("#player [data-q=agree]")
        assert f"dz{'₁₂₃'[k]}" in agree and ("identical" in agree or "rounding" in agree), agree
        # the selection follows (k ≤ t) and the graph lights the edge into h_k from copy k + 1
        assert page.evaluate("() => window.bptt.state.sel.k") == k
        halo = page.evaluate("() => document.getElementById('graph').data.find((d) => d.meta === 'player')")
        xs = [x for x in halo["x"] if x is not None]
        assert (k + 1) in xs and (k + 2 in xs) == (k < 2), (k, halo["x"])
    assert page.input_value("#notation") == notation
    assert page.inner_text("#player-pos").endswith("k = 1")
    # ← goes back, and the step is in the URL: a copied link opens at it
    page.keyboard.press("ArrowLeft")
    wait_k(page, 1)
    page.wait_for_function("() => location.href.includes('#s=')")
    page.wait_for_timeout(400)  # the URL is written after the redraw (debounced)
    href = page.evaluate("() => location.href")
    assert decode_state(href)["v"]["player"]["k"] == 1
    page.goto("about:blank")
    open_page(page, base, href.replace(base, ""))
    wait_k(page, 1)
    assert close(shown(page)["delta"], api["delta"][t][1])


def test_space_plays_to_k_1_and_the_chinese_page_says_it_in_chinese(page, base):
    open_page(page, base, "/?preset=note-003&lang=zh")
    page.select_option("#player-speed", "4")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Space")  # starts the player at k = T and plays
    page.wait_for_function("() => window.bptt.state.view.player?.k === 0 && document.getElementById('player-play').getAttribute('aria-pressed') === 'false'",
                           timeout=20_000)
    wait_k(page, 0)
    text = page.inner_text("#panel-player")
    assert "路线一" in text and "路线二" in text and "两条路线给出相同的 dz₁" in text, text
    assert page.inner_text("#player-play") == "▶ 播放"
    # Space on the player's own step button plays too (it does not press the button again)
    page.click("#player-first")
    wait_k(page, 2)
    page.focus("#player-step")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('player-play').getAttribute('aria-pressed') === 'true'")
    page.keyboard.press("Space")
    assert page.get_attribute("#player-play", "aria-pressed") == "false"
    page.keyboard.press("Escape")
    page.wait_for_function("() => window.bptt.state.view.player?.k === null")
    # hidden by ?hide=player: Space does nothing, the arrows move (t, k) as before
    open_page(page, base, "/?preset=note-003&hide=player")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    n = renders(page)
    page.keyboard.press("Space")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => window.bptt.state.sel.k === 0")
    assert player_k(page) is None and renders(page) == n


def test_the_player_follows_the_graph_window_of_a_long_sequence(page, base):
    """T = 100 (the graph shows 40 steps from T = 61): the window holds the player's step at
    k = T and at k = 1; with truncation the routes differ by what truncation drops."""
    import random
    r = random.Random(3)
    T = 100
    body = {"inputs": [[round(r.gauss(0, 1), 3)] for _ in range(T)], "targets": [[round(r.gauss(0, 1), 3)] for _ in range(T)],
            "init": {"seed": 2, "hidden": 3, "outputs": 1}, "truncation": 5}
    open_page(page, base, "/?preset=note-003")
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n, timeout=30_000)
    page.click("#player-start")
    wait_k(page, T - 1)
    rng = lambda: page.evaluate("() => document.getElementById('graph').layout.xaxis.range")  # noqa: E731
    lo, hi = rng()
    assert lo < T <= hi and hi - lo < 45, (lo, hi)
    page.keyboard.press("End")
    wait_k(page, 0)
    lo, hi = rng()
    assert lo < 1 <= hi and hi < 45, (lo, hi)
    agree = page.inner_text("#player [data-q=agree]")
    assert "K = 5" in agree and "truncated BPTT drops" in agree, agree
    # the δ route of row t = T at k = 1 is beyond the window K: dropped
    assert "drops this δ" in page.inner_text("#player")


def test_the_player_asks_for_one_row_of_dL_dh_and_another_when_t_moves(page, base):
    """The player draws ∂L_t/∂h_k of the selected row t only: its requests name delta_h_row
    (with select), never the T×T×m delta_h; stepping needs no request; ↑ to another loss row asks
    for that row alone (fields ["delta_h_row"], select.t the new t) and the carry row shows it."""
    import random
    r = random.Random(7)
    T = 6
    body = {"inputs": [[round(r.gauss(0, 1), 3)] for _ in range(T)], "targets": [[round(r.gauss(0, 1), 3)] for _ in range(T)],
            "init": {"seed": 4, "hidden": 3, "outputs": 1}}
    api = httpx.post(f"{base}/api/v1/bptt", json=body | {"fields": PLAYER_FIELDS}).json()
    sent = []
    page.on("request", lambda q: q.url.endswith("/api/v1/bptt") and sent.append(json.loads(q.post_data)))
    open_page(page, base, "/?preset=note-003&lang=en")
    page.click("#box-json summary")
    page.fill("#json-box", json.dumps(body))
    n = renders(page)
    page.click("#json-apply")
    wait_render(page, n)
    page.click("#player-start")
    wait_k(page, T - 1)
    t = page.evaluate("() => window.bptt.state.sel.t")
    assert t == T - 1
    for k in (T - 2, T - 3):
        page.keyboard.press("ArrowRight")
        wait_k(page, k)
        assert close(shown(page)["carry_row"], api["delta_h"][t][k]), k
    before = len(sent)
    page.keyboard.press("ArrowUp")  # the loss row t − 1, the same step k
    page.wait_for_function("(t) => window.bptt.state.sel.t === t", arg=t - 1)
    k = T - 3
    page.wait_for_function("() => document.querySelector('#player tr[data-q=carry_row] .pl-num')?.textContent.startsWith('[')")
    assert close(shown(page)["carry_row"], api["delta_h"][t - 1][k])
    asked = [q for q in sent[before:] if "delta_h_row" in q["fields"]]  # (the formula panel asks for its backward_parts)
    # (with the δ-row heatmap's row: the rows of a loss are asked for together, rows.js)
    assert [sorted(q["fields"]) for q in asked] == [["delta_h_row", "delta_row"]] and asked[0]["select"]["t"] == t - 1, asked
    assert all("delta_h" not in q.get("fields", ()) for q in sent), [q.get("fields") for q in sent]
    player = [q for q in sent if "dh_next_pass" in q.get("fields", ())]
    assert player and all("delta_h_row" in q["fields"] and q["select"]["t"] == t for q in player), player
    page.keyboard.press("Escape")
    page.wait_for_function("() => window.bptt.state.view.player?.k === null")


def test_projector_view_fits_1280x720_and_prints(page, base):
    """?view=projector: no editor, large type, no horizontal overflow at 1280×720, every
    formula row wrapped inside its panel (none scrolls), plots as wide as their panels; the
    toggle leaves it. Print media: no controls, the formulas and plots laid out for paper."""
    page.set_viewport_size({"width": 1280, "height": 720})
    try:
        for lang in ("en", "zh"):
            open_page(page, base, f"/?preset=classroom&view=projector&lang={lang}")
            page.wait_for_timeout(300)
            assert page.evaluate("() => document.body.classList.contains('projector')")
            assert not page.is_visible("#editor")
            sw, cw = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert sw <= cw, (lang, sw, cw)
            cut = page.evaluate("""() => [...document.querySelectorAll('.fx-row, .fx-g > summary')]
                .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).length""")
            assert cut == 0, (lang, cut)
            assert float(page.evaluate("() => getComputedStyle(document.querySelector('.fx-panel')).fontSize")[:-2]) >= 18
            widths = page.evaluate("""() => [...document.querySelectorAll('.plot')].filter((e) => e.offsetParent !== null)
                .map((e) => [e.getBoundingClientRect().width, e.querySelector('.main-svg')?.getBoundingClientRect().width])""")
            assert widths and all(w > 1000 and abs(w - s) <= 2 for w, s in widths), widths
            font = page.evaluate("() => document.getElementById('heat-delta')._fullLayout.font.size")
            assert font >= 16, font
        page.click("#projector")
        page.wait_for_function("() => !document.body.classList.contains('projector') && !location.search.includes('view=')")
        assert page.is_visible("#editor")
        page.click("#projector")
        page.wait_for_function("() => location.search.includes('view=projector')")
        page.emulate_media(media="print")
        page.wait_for_timeout(400)
        hidden = page.evaluate("() => ['topbar', 'editor'].map((id) => getComputedStyle(document.getElementById(id)).display)")
        assert hidden == ["none", "none"], hidden
        assert page.is_visible("#formula") and page.is_visible("#heat-delta .main-svg")
        cut = page.evaluate("""() => [...document.querySelectorAll('.fx-row')].filter((e) => e.offsetParent !== null
            && e.scrollWidth > e.clientWidth + 1).length""")
        assert cut == 0
        # the plots drawn at the paper's 17 cm (642 px), inside their boxes
        svg = "() => [...document.querySelectorAll('.plot .main-svg')].map((e) => Math.round(e.getBoundingClientRect().width))"
        paper = page.evaluate(svg)
        assert paper and all(w == 642 for w in paper), paper
        pdf = page.pdf(format="A4")
        assert pdf[:4] == b"%PDF" and len(pdf) > 50_000
        page.emulate_media(media="screen")
        page.wait_for_function("() => document.querySelector('#heat-delta .main-svg').getBoundingClientRect().width > 1000")
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size(VIEWPORT)
