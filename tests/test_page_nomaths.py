"""The page does no maths (issue 11 §1): what the formula panel and the plots show, the API
computes. A guard over the page's JavaScript: formula.js has no arithmetic on numbers at all
(only index arithmetic + and −), no norms, products, transposes or reductions; plots.js no
longer forms the per-copy terms or the bound, and reads the API's fields for them."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "static" / "js"


def code_of(name: str) -> str:
    """The file without its comments and the text of its string literals (the words of the
    panel may say "c / ‖g‖"); the project's style writes binary operators with spaces."""
    src = (JS / name).read_text(encoding="utf-8")
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"(?m)^\s*//.*$|\s//[^\n\"'`]*$", "", src)
    src = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', src)
    src = re.sub(r"'(?:\\.|[^'\\\n])*'", "''", src)
    src = re.sub(r"`(?:\\.|[^`\\])*`", "``", src, flags=re.S)
    return src


#: what forming a number from others looks like in this code base
MATHS = {
    "a product or a quotient": re.compile(r"[\w\])] [*/] [\w(\[]|\*=|/=|\*\*"),
    "a norm, root, power, exponential or logarithm": re.compile(r"Math\.(sqrt|pow|exp|log\w*|hypot|cbrt|abs)\b"),
    "a reduction (sum, product)": re.compile(r"\.reduce\("),
    "a transpose or a matrix product": re.compile(r"\b(transpose|matTvec|matvec|outer|vnorm|fnorm)\b"),
}


def test_the_formula_panel_computes_nothing():
    code = code_of("formula.js")
    found = {what: sorted(set(m.group(0) for m in rx.finditer(code))) for what, rx in MATHS.items()}
    assert not any(found.values()), f"formula.js computes: {found}"


def test_the_guard_sees_maths():
    """The guard is not blind: the maths the panel used to do is caught."""
    old = "const vnorm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));"
    assert all(rx.search(old) for what, rx in MATHS.items() if what != "a transpose or a matrix product")
    assert MATHS["a transpose or a matrix product"].search("const WtD = matTvec(W, dNext);")
    assert not any(rx.search('note(sec, "", fill(S.clip_norm, { s: numText(clip.scale, S) }));') for rx in MATHS.values())


def test_the_plots_draw_the_apis_terms_and_bound():
    code = code_of("plots.js")
    for gone in ("perCopy", "Math.sqrt", "eps_tt", "fprime", "jacobian_norm", "resp.dz", "outer("):
        assert gone not in code, gone
    assert "grads_per_copy" in code and "delta_bound" in code


def test_the_page_asks_for_the_fields_it_draws():
    code = (JS / "main.js").read_text(encoding="utf-8")
    assert '"grads_per_copy"' in code and "backward_parts" in code and "select" in code


def function_of(name: str, fn: str) -> str:
    """The body of the top-level function fn of the file (comments and strings dropped), up to
    the next top-level declaration."""
    code = code_of(name)
    start = re.search(rf"(?m)^(export )?function {fn}\(", code)
    assert start, f"{fn} not in {name}"
    end = re.search(r"(?m)^(export |function |const |let |/\*\*)", code[start.end():])
    return code[start.start(): start.end() + (end.start() if end else len(code))]


def test_the_vanishing_reading_reads_the_apis_verdict():
    """vanishReading fitted log ‖δ‖ against t − k and decided the verdict itself; the API's
    ``vanish`` does that now, and the page picks the sentence and formats the numbers."""
    code = function_of("plots.js", "vanishReading")
    found = {what: sorted(set(m.group(0) for m in rx.finditer(code))) for what, rx in MATHS.items()}
    assert not any(found.values()), f"vanishReading computes: {found}"
    assert "delta_norm" not in code and "resp.vanish" in code
    # thresholds are the engine's: no comparison of a factor with a number in the page
    assert not re.search(r"[<>]=? ?\d", code), code


def test_the_steps_panel_computes_nothing():
    code = code_of("steps.js")
    found = {what: sorted(set(m.group(0) for m in rx.finditer(code))) for what, rx in MATHS.items()}
    assert not any(found.values()), f"steps.js computes: {found}"


def test_the_page_asks_for_the_reading():
    code = (JS / "main.js").read_text(encoding="utf-8")
    assert re.search(r'new Set\(\[[^\]]*"vanish"', code), "neededFields does not ask for vanish"


def test_the_vanishing_stats_read_the_apis_median():
    """renderVanishText sorted the ‖J_k‖ and picked the middle one; the API sends the median."""
    code = function_of("main.js", "renderVanishText")
    assert ".sort(" not in code and "Math." not in code and "jacobian_norm_median" in code, code
