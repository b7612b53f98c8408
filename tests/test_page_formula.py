"""The formula panel shows the API's numbers (backward_parts) for each cell's own backward
step: vanilla, LSTM (ĉ, δ^i … δ^o, ε^h and ε^c passed to k − 1) and GRU (δ^n ⊙ r, ε^h passed
on directly and through W_hh), a new selection asks for its numbers and draws them, in both
languages, without page errors. One page for all of it (headless Chromium, as test_page_e2e)."""

from __future__ import annotations

import numpy as np
import pytest
from test_page_e2e import _load_json, assert_clean, watched  # noqa: F401  (fixtures; base and browser come from conftest)

from browser import open_page, response


def body(cell: str, T: int = 5, m: int = 3) -> dict:
    rng = np.random.default_rng(4)
    return {"cell": cell, "inputs": rng.standard_normal((T, 2)).round(3).tolist(),
            "targets": rng.standard_normal((T, 2)).round(3).tolist(),
            "init": {"seed": 5, "hidden": m, "outputs": 2}}


#: (cell, the rows that must carry the API's vector, part names) for the default selection
ROWS = {
    "vanilla": [("delta", "step", "delta"), ("step", "step", "delta"), ("carry", "step_from", "eps_h_prev"), ("step", "step", "fprime")],
    "lstm": [("c_hat", "step", "c_hat"), ("c_hat", "step", "eps_c"), ("delta_i", "step", "delta_i"), ("delta_f", "step", "delta_f"),
             ("delta_g", "step", "delta_g"), ("delta_o", "step", "delta_o"), ("pass-h", "step", "eps_h_prev"),
             ("pass-c", "step", "eps_c_prev"), ("carry-c", "step_from", "eps_c_prev")],
    "gru": [("delta_n", "step", "delta_n"), ("delta_u", "step", "delta_u"), ("delta_r", "step", "delta_r"),
            ("delta_r", "step", "hn"), ("delta_n_r", "step", "delta_n_r"), ("pass-h", "step", "eps_h_direct"),
            ("pass-h", "step", "eps_h_through"), ("pass-h", "step", "eps_h_prev"),
            # what step k + 1 passed back: ε^h_{t,k} = ε^h_{t,k+1} ⊙ u_{k+1} + W_hhᵀ [δ^r; δ^u; δ^n ⊙ r]
            # (it was written W_hhᵀ δ_{t,k+1}, the LSTM's, beside the GRU's whole number)
            ("carry", "step_from", "eps_h_direct"), ("carry", "step_from", "eps_h_through"),
            ("carry", "step_from", "eps_h_prev")],
}

#: the numbers a row shows, at full precision (each number's hover title is String(x))
TITLES = "(row) => [...document.querySelectorAll(`#formula [data-fx-row='${row}'] span[title]`)].map((s) => s.title)"


def shows(page, row: str, values) -> None:
    titles = page.evaluate(TITLES, row)
    shown = {float(x) for x in titles}  # String(x) round-trips: the same float64
    missing = [v for v in values if v not in shown]
    assert not missing, (row, missing, titles)


def test_each_cell_shows_its_own_step_with_the_apis_numbers(watched, base):  # noqa: F811
    page, watch = watched
    open_page(page, base, "/")
    for cell, rows in ROWS.items():
        _load_json(page, body(cell))
        d = response(page)
        bp = d["backward_parts"]  # asked for with the computation: no second request
        sel = page.evaluate("() => window.bptt.state.sel")
        assert (bp["t"], bp["k"]) == (sel["t"], sel["k"]) and bp["k"] < bp["t"], (bp["t"], bp["k"])
        for row, group, name in rows:
            shows(page, row, bp[group][name])
        shows(page, "bound", [bp["bound"], bp["delta_norm"]])
        assert "overflow" not in page.inner_text("#formula")
        if cell == "lstm":
            text = page.inner_text("#formula")
            assert "additive path" in text and "all of ∂Lₜ/∂cₖ" in text
        if cell == "gru":
            assert "PyTorch's z" in page.inner_text("#formula")
    assert_clean(watch)


def test_a_new_selection_asks_for_its_numbers(watched, base):  # noqa: F811
    """An arrow key moves k: the panel asks the API for that δ_{t,k}'s parts alone and draws
    them; going back uses the numbers it has (no request); the zh panel says the same."""
    page, watch = watched
    open_page(page, base, "/?lang=zh")
    _load_json(page, body("lstm"))
    bp0 = response(page)["backward_parts"]
    asked = []
    page.on("request", lambda r: asked.append(r.post_data or "") if r.url.endswith("/api/v1/bptt") else None)
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("ArrowLeft")
    k = bp0["k"] - 1
    page.wait_for_function("(k) => document.getElementById('formula').innerText.includes(`回传到时刻 k = ${k + 1}`)"
                           " && !document.getElementById('formula').classList.contains('fx-waiting')", arg=k)
    assert len(asked) == 1 and '"fields":["backward_parts"]' in asked[0] and f'"k":{k}' in asked[0], asked
    sent = page.evaluate("""async (k) => {
        const r = window.bptt.response();
        const { fields, ...req } = JSON.parse(JSON.stringify(window.bptt.state.req));
        const res = await fetch('/api/v1/bptt', { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...req, select: { t: window.bptt.state.sel.t, k }, fields: ['backward_parts'] }) });
        return (await res.json()).backward_parts; }""", k)
    shows(page, "c_hat", sent["step"]["c_hat"])
    shows(page, "pass-c", sent["step"]["eps_c_prev"])
    assert "记忆单元的加法通路" in page.inner_text("#formula")
    page.keyboard.press("ArrowRight")  # back: from the cache
    page.wait_for_function("(k) => document.getElementById('formula').innerText.includes(`回传到时刻 k = ${k + 1}`)", arg=bp0["k"])
    shows(page, "c_hat", bp0["step"]["c_hat"])
    assert len([a for a in asked if '"backward_parts"' in a]) == 2  # ours above, and the page's first
    assert_clean(watch)


@pytest.mark.parametrize("width", [360])
def test_formulas_wrap_in_a_narrow_panel(watched, base, width):  # noqa: F811
    """In a narrow panel the rows wrap before their relations instead of running off the side."""
    page, watch = watched
    page.set_viewport_size({"width": width, "height": 900})
    open_page(page, base, "/")
    _load_json(page, body("gru"))
    wrapped = page.evaluate("""() => [...document.querySelectorAll('#formula .fx-row')].filter((r) => {
        const tops = new Set([...r.children].map((c) => Math.round(c.getBoundingClientRect().top)));
        return tops.size > 1; }).length""")
    assert wrapped >= 3, wrapped
    assert_clean(watch)
