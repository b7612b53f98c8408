"""The reading of ‖δ_{t,k}‖ along the last loss row (``diagnostics.vanish_reading``, the API's
``vanish``): the geometric-mean factor per step back f (exp of the least-squares slope of
log ‖δ_{t,k}‖ against t − k), F = f^d over the span, the verdict from both (f < 0.8 or F < 0.2
vanish; f > 1.25 or F > 5 explode), or why there is no trend. It was computed by the page
(plots.js vanishReading) until issue 11 §1 "No maths in the page"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.diagnostics import vanish_reading


def table(T: int, factor: float, scale: float = 1.0) -> np.ndarray:
    """(T, T) ‖δ_{t,k}‖ = scale · factor^(t − k) for k ≤ t, 0 above the diagonal."""
    t, k = np.ogrid[:T, :T]
    with np.errstate(over="ignore"):
        return np.where(k <= t, scale * factor ** (t - k).astype(float), 0.0)


ALL = lambda T: np.ones(T, dtype=bool)  # noqa: E731


@pytest.mark.parametrize("factor, verdict", [(0.5, "vanish"), (2.0, "explode"), (1.0, "stable"), (0.97, "stable")])
def test_an_exact_geometric_row_reads_its_factor(factor, verdict):
    v = vanish_reading(table(6, factor), ALL(6), None, False)
    assert v.t == 5 and v.span == 5 and v.verdict == verdict and v.reason is None
    assert v.factor_per_step == pytest.approx(factor, rel=1e-13)
    assert v.factor_over_span == pytest.approx(factor ** 5, rel=1e-12)
    assert v.overflowed == v.zero == 0 and v.truncation is None and not v.long


def test_the_verdict_reads_the_whole_span():
    """×0.81 a step is not below 0.8, but over 9 steps it is 0.15 < 0.2: vanishing (the
    classroom preset's case); ×1.2 a step over 9 steps is 5.2 > 5: exploding."""
    v = vanish_reading(table(10, 0.81), ALL(10), None, False)
    assert v.verdict == "vanish" and v.factor_over_span == pytest.approx(0.81 ** 9) and not v.long
    assert vanish_reading(table(10, 1.2), ALL(10), None, False).verdict == "explode"
    assert vanish_reading(table(4, 1.2), ALL(4), None, False).verdict == "stable"  # 1.2³ = 1.7


def test_long_spans_that_vanish_are_named():
    """d ≥ 8 and F < 1e-3: the loss at the end barely reaches the first steps."""
    assert vanish_reading(table(9, 0.4), ALL(9), None, False).long  # d = 8, F = 6.6e-4
    assert not vanish_reading(table(8, 0.3), ALL(8), None, False).long  # d = 7
    assert not vanish_reading(table(12, 0.6), ALL(12), None, False).long  # F = 3.6e-3


def test_the_fit_is_least_squares_over_the_last_loss_row():
    """A row that is not geometric: the slope of the least-squares line of log ‖δ‖ against t − k,
    computed here by numpy's polyfit; rows before the last loss step are not read."""
    T = 7
    rng = np.random.default_rng(3)
    dn = table(T, 0.6) * np.exp(rng.normal(0, 0.3, (T, T)))
    mask = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)  # last loss step: index 4
    v = vanish_reading(dn, mask, None, False)
    d = np.arange(4, -1, -1)
    slope = np.polyfit(d, np.log(dn[4, :5]), 1)[0]
    assert v.t == 4 and v.span == 4 and v.factor_per_step == pytest.approx(math.exp(slope), rel=1e-12)


def test_truncation_reads_only_the_kept_terms():
    """K = 4 keeps t − k = 0 … 3: the dropped terms (zero in the table) are neither read as 0
    nor counted, and the reading says which K cut the row."""
    T, K = 10, 4
    dn = table(T, 0.5)
    t, k = np.ogrid[:T, :T]
    dn[t - k >= K] = 0.0  # what the truncated table holds
    v = vanish_reading(dn, ALL(T), K, False)
    assert v.verdict == "vanish" and v.span == K - 1 and v.zero == 0 and v.truncation == K
    assert v.factor_per_step == pytest.approx(0.5, rel=1e-13)
    # a window as long as the row drops nothing of it: no note
    assert vanish_reading(table(T, 0.5), ALL(T), T, False).truncation is None


@pytest.mark.parametrize("K", [1, 2])
def test_a_window_below_three_has_no_trend(K):
    v = vanish_reading(table(10, 0.5), ALL(10), K, False)
    assert v.reason == "truncation" and v.verdict is None and v.factor_per_step is None and v.truncation == K


@pytest.mark.parametrize("mask", [np.zeros(6, bool), np.array([1, 1, 1, 0, 0, 0], bool)])
def test_a_last_loss_step_before_the_fourth_has_no_trend(mask):
    v = vanish_reading(table(6, 0.5), mask, None, False)
    assert v.reason == "short" and v.verdict is None and v.t == (None if not mask.any() else 2)


def test_overflow_is_named_and_where_it_began():
    """Norms that overflowed (inf, or NaN from inf − inf) leave too few numbers: the reason says
    whether the forward pass itself overflowed (then clipping the gradient cannot help)."""
    dn = table(6, 1e200)  # inf beyond two steps back
    dn[5, 0] = np.nan
    v = vanish_reading(dn, ALL(6), None, False)
    assert v.reason == "overflow" and v.overflowed == 4 and v.verdict is None
    assert vanish_reading(dn, ALL(6), None, True).reason == "overflow_forward"
    # enough finite numbers beside the overflowed ones: a trend, and the count still said
    dn = table(8, 10.0)
    dn[7, :2] = np.inf
    v = vanish_reading(dn, ALL(8), None, False)
    assert v.verdict == "explode" and v.overflowed == 2 and v.span == 5


def test_exact_zeros_are_named():
    dn = table(6, 0.5)
    dn[5, :4] = 0.0  # f'(z) rounded to 0: the path is cut
    v = vanish_reading(dn, ALL(6), None, False)
    assert v.reason == "zero" and v.zero == 4
    assert vanish_reading(np.zeros((6, 6)), ALL(6), None, False).reason == "zero"


def test_three_kept_terms_are_enough_and_few_is_what_is_left():
    """A window K = 3 reads three terms, enough for a line. With t ≥ 3 and K ≥ 3 a row of
    norms has at least three entries, each a positive number, 0 or overflowed, so "few" (fewer
    than three positive norms, none 0 or overflowed) is left for what is not a norm."""
    v = vanish_reading(table(6, 0.5), ALL(6), 3, False)
    assert v.verdict == "vanish" and v.span == 2 and v.factor_per_step == pytest.approx(0.5, rel=1e-13)
    assert vanish_reading(-table(6, 0.5), ALL(6), None, False).reason == "few"


# ---- the API field ---------------------------------------------------------------------------

def body(T=10, W_hh=0.9, act="tanh", **extra):
    return {"activation": act, "inputs": [[1.0]] * T, "targets": [[0.5]] * T, "h0": [0.0],
            "params": {"W_xh": [[0.5]], "W_hh": [[W_hh]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}} | extra


def test_the_api_sends_the_reading_of_its_own_delta_norm(client):
    d = client.post("/api/v1/bptt", json=body()).json()
    v, dn = d["vanish"], np.array(d["delta_norm"], dtype=float)
    want = vanish_reading(np.nan_to_num(dn), np.array(d["loss_steps"]), None, False)
    assert v == {"t": 9, "factor_per_step": want.factor_per_step, "span": 9, "factor_over_span": want.factor_over_span,
                 "verdict": "vanish", "reason": None, "overflowed": 0, "zero": 0, "truncation": None, "long": want.long}
    # asked for alone: the same object (the norms are computed for it, and not sent)
    alone = client.post("/api/v1/bptt", json=body(fields=["vanish"])).json()
    assert alone["vanish"] == v and "delta_norm" not in alone
    # with truncation, with rtrl, with a batch
    assert client.post("/api/v1/bptt", json=body(truncation=2)).json()["vanish"]["reason"] == "truncation"
    rt = client.post("/api/v1/bptt", json=body(method="rtrl")).json()
    assert rt["vanish"] is None and any("vanish" in w for w in rt["warnings"])
    two = body(inputs=[[[1.0]] * 10, [[0.0]] * 10], targets=[[[0.5]] * 10] * 2, h0=[[0.0], [0.0]], fields=["vanish"])
    b = client.post("/api/v1/bptt", json=two).json()["vanish"]
    assert len(b) == 2 and b[0] == v and b[1]["verdict"] is not None


def test_the_api_says_the_forward_pass_overflowed_only_for_that_sequence(client):
    """h itself overflows (identity, W_hh = 1e10): the reason is overflow_forward; beside it a
    sequence whose forward pass is finite keeps its own reading."""
    d = client.post("/api/v1/bptt", json=body(T=40, W_hh=1e10, act="identity")).json()
    assert d["vanish"]["reason"] == "overflow_forward" and d["vanish"]["overflowed"] > 0
    sat = client.post("/api/v1/bptt", json=body(T=60, W_hh=50.0)).json()["vanish"]  # tanh saturated: f' = 0
    assert sat["reason"] == "zero" and sat["zero"] > 0


def test_the_reading_is_in_the_schema_and_the_npz(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "vanish" in schema["BPTTResponse"]["properties"] and "verdict" in schema["Vanish"]["properties"]
    import io
    r = client.post("/api/v1/bptt", json=body(fields=["vanish"]), headers={"accept": "application/x-npz"})
    z = np.load(io.BytesIO(r.content))
    d = client.post("/api/v1/bptt", json=body(fields=["vanish"])).json()["vanish"]
    assert float(z["vanish/factor_per_step"]) == d["factor_per_step"] and int(z["vanish/t"]) == 9


def test_the_api_sends_the_median_of_the_finite_jacobian_norms(client):
    d = client.post("/api/v1/bptt", json=body(T=9)).json()["diagnostics"]
    assert d["jacobian_norm_median"] == pytest.approx(np.median(d["jacobian_norm"]), rel=1e-15)
    two = body(inputs=[[[1.0]] * 9, [[0.0]] * 9], targets=[[[0.5]] * 9] * 2, h0=[[0.0], [0.0]], fields=["diagnostics"])
    b = client.post("/api/v1/bptt", json=two).json()["diagnostics"]
    assert [x == pytest.approx(np.median(j)) for x, j in zip(b["jacobian_norm_median"], b["jacobian_norm"])] == [True, True]
    # every J_k overflowed: no median, and null is no overflow of its own
    o = client.post("/api/v1/bptt", json=body(T=40, W_hh=1e200, act="identity", fields=["diagnostics"])).json()
    med = o["diagnostics"]["jacobian_norm_median"]
    assert med is None or np.isfinite(med)
    assert "diagnostics.jacobian_norm_median" not in o["nonfinite"]
