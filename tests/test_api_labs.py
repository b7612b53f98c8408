"""The labs' endpoints: POST /api/v1/compare-cells and /api/v1/radius-sweep (app/api/labs.py,
app/engine/labs.py). Their numbers are /api/v1/bptt's for the same model, read as the labs
draw them; refusals name their field and setting."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.engine import labs as L
from app.main import create_app
from app.settings import Settings

SEQ = {"task": {"name": "recall", "delay": 29, "seed": 2}, "init": {"seed": 3, "hidden": 6}}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Settings()))


def bptt(client, body):
    r = client.post("/api/v1/bptt", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def arr(x):
    return np.array([[np.nan if v is None else v for v in row] for row in x]) if isinstance(x[0], list) else np.array(
        [np.nan if v is None else v for v in x])


# ------------------------------------------------------------------------- engine


def test_trend_reads_the_factor_of_a_geometric_norm():
    t = np.arange(30)
    for q, verdict in ((0.7, "vanishing"), (1.3, "exploding"), (1.01, "steady")):
        tr = L.trend(2.0 * q**t)
        assert tr.rate == pytest.approx(q, rel=1e-12) and tr.factor == pytest.approx(q**29, rel=1e-10)
        assert tr.verdict == verdict
    assert L.trend(np.array([0.0, np.nan, 3.0])).verdict == "none"


def test_reach_is_the_last_row_by_lag_over_its_diagonal():
    eps = np.tril(np.arange(1.0, 17.0).reshape(4, 4))
    r = L.reach(eps)
    np.testing.assert_array_equal(r.lag, [0, 1, 2, 3])
    np.testing.assert_array_equal(r.norm, [16.0, 15.0, 14.0, 13.0])
    np.testing.assert_allclose(r.kept, np.array([16.0, 15.0, 14.0, 13.0]) / 16.0)
    assert np.isnan(L.reach(np.zeros((3, 3))).kept).all()  # no loss at T: nothing kept, not 0/0 = 0


def test_keep_bias_sets_exactly_the_keep_gates_block():
    m = 3
    theta = {"W_hh": np.zeros((4 * m, m)), "b_ih": np.arange(4.0 * m), "b_hh": np.ones(4 * m)}
    out = L.set_keep_bias("lstm", theta, 2.5)
    np.testing.assert_array_equal(out["b_ih"], np.r_[0, 1, 2, 2.5, 2.5, 2.5, 6, 7, 8, 9, 10, 11])
    np.testing.assert_array_equal(out["b_hh"], np.r_[1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(theta["b_ih"], np.arange(4.0 * m))  # the input is not changed


# ------------------------------------------------------------------ compare-cells


def test_compare_cells_equals_bptt_for_each_cell(client):
    r = client.post("/api/v1/compare-cells", json=SEQ | {"keep_bias": 2.0})
    assert r.status_code == 200, r.text
    d = r.json()
    assert list(d["cells"]) == ["vanilla", "residual", "lstm", "gru"] and d["T"] == 30
    assert d["lag"] == list(range(30)) and d["t"] == list(range(1, 31))
    lo, hi = np.inf, -np.inf
    for cell, c in d["cells"].items():
        # the same model through /bptt: its params as the lab used them (keep gate set)
        body = _bptt_body(cell, c["params"])
        ref = bptt(client, body | {"fields": ["delta_h_norm", "forward"]})
        eps = arr(ref["delta_h_norm"])
        np.testing.assert_array_equal(arr(c["delta_h_norm"]), eps)
        np.testing.assert_array_equal(arr(c["reach"]), eps[-1][::-1])
        np.testing.assert_allclose(arr(c["kept"]), eps[-1][::-1] / eps[-1][-1], rtol=1e-15)
        good = eps[np.isfinite(eps) & (eps > 0)]
        lo, hi = min(lo, good.min()), max(hi, good.max())
        if cell in ("lstm", "gru"):
            gate = "f" if cell == "lstm" else "u"
            assert c["gate"]["name"] == gate
            g = np.array(ref["forward"]["gates"][gate])
            np.testing.assert_array_equal(np.array(c["gate"]["values"]), g)
            np.testing.assert_allclose(c["gate"]["mean"], g.mean(axis=1), rtol=1e-15)
            assert c["gate"]["mean_all"] == pytest.approx(g.mean(), rel=1e-14)
            m = 6
            b_ih = np.array(c["params"]["b_ih"])
            assert (b_ih[m:2 * m] == 2.0).all() and (np.array(c["params"]["b_hh"])[m:2 * m] == 0).all()
        else:
            assert c["gate"] is None
    assert d["scale"] == {"min": lo, "max": hi}


def _bptt_body(cell, params):
    from app.engine.train.tasks import make

    t = make("recall", delay=29, seed=2, N=1)
    return {"cell": cell, "params": params, "inputs": t.inputs[0].tolist(), "targets": t.targets[0].tolist(),
            "loss": t.loss, "loss_steps": t.loss_steps}


def test_the_lstm_keeps_more_of_the_gradient_than_vanilla_with_a_forget_bias(client):
    """The lesson of the compare view: a forget gate near 1 carries ‖∂L_T/∂h_k‖ far back."""
    d = client.post("/api/v1/compare-cells", json={"task": {"name": "recall", "delay": 49}, "init": {"seed": 0, "hidden": 16},
                                                   "keep_bias": 3, "cells": ["vanilla", "lstm"]}).json()
    assert d["cells"]["lstm"]["kept"][49] > 1e-3 > 1e-6 > d["cells"]["vanilla"]["kept"][49]
    assert min(d["cells"]["lstm"]["gate"]["mean"]) > 0.9


def test_keep_bias_per_cell(client):
    d = client.post("/api/v1/compare-cells", json=SEQ | {"cells": ["lstm", "gru"], "keep_bias": {"lstm": 1.5}}).json()
    assert d["cells"]["lstm"]["params"]["b_ih"][6:12] == [1.5] * 6
    drawn = client.post("/api/v1/compare-cells", json=SEQ | {"cells": ["gru"]}).json()
    assert d["cells"]["gru"]["params"] == drawn["cells"]["gru"]["params"]  # null: as init drew it


def test_init_forget_bias_is_the_lstms_and_keep_bias_its_deprecated_alias(client):
    """One name for the LSTM's forget-gate bias, as /bptt and /train take it; the old keep_bias
    gives the same numbers and says it is deprecated."""
    init = SEQ["init"] | {"forget_bias": 2.0}
    new = client.post("/api/v1/compare-cells", json=SEQ | {"init": init})
    assert new.status_code == 200, new.text
    new = new.json()
    old = client.post("/api/v1/compare-cells", json=SEQ | {"keep_bias": {"lstm": 2.0}}).json()
    assert "deprecated" not in new and old["deprecated"] == ["keep_bias for the LSTM: use init.forget_bias (the same numbers)"]
    assert new["forget_bias"] == old["forget_bias"] == 2.0
    for c in ("vanilla", "residual", "lstm", "gru"):  # the other cells draw as without it
        for k in ("params", "delta_h_norm", "reach", "kept", "gate", "loss"):
            assert new["cells"][c][k] == old["cells"][c][k], (c, k)
    drawn = client.post("/api/v1/compare-cells", json=SEQ).json()
    for c in ("vanilla", "residual", "gru"):
        assert new["cells"][c]["params"] == drawn["cells"][c]["params"]
    assert new["cells"]["lstm"]["params"] != drawn["cells"]["lstm"]["params"]
    # and the LSTM's numbers are /bptt's with the same init
    body = {k: v for k, v in _bptt_body("lstm", None).items() if k != "params"}
    ref = bptt(client, body | {"init": init, "fields": ["delta_h_norm"]})
    np.testing.assert_array_equal(arr(new["cells"]["lstm"]["delta_h_norm"]), arr(ref["delta_h_norm"]))
    # a number in keep_bias still sets both gated cells: the LSTM's through init.forget_bias
    both = client.post("/api/v1/compare-cells", json=SEQ | {"keep_bias": 2.0}).json()
    mixed = client.post("/api/v1/compare-cells", json=SEQ | {"init": init, "keep_bias": {"gru": 2.0}}).json()
    assert both["cells"] == mixed["cells"] and "deprecated" in both and "deprecated" not in mixed
    # keep_bias for the LSTM with cells without it: ignored, as before
    assert client.post("/api/v1/compare-cells", json=SEQ | {"cells": ["gru"], "keep_bias": 1.0}).status_code == 200


@pytest.mark.parametrize("body, field, code", [
    (SEQ | {"init": SEQ["init"] | {"forget_bias": 1}, "keep_bias": {"lstm": 1}}, "keep_bias", "conflict"),
    (SEQ | {"init": SEQ["init"] | {"forget_bias": 1}, "cells": ["vanilla", "gru"]}, "init.forget_bias", "conflict"),
    (SEQ | {"init": SEQ["init"] | {"forget_bias": "high"}}, "init.forget_bias", "wrong_type"),
    (SEQ | {"init": SEQ["init"] | {"forget_bias": 1e4}}, "init.forget_bias", "out_of_range"),
    (SEQ | {"cells": ["lstm", "tree"]}, "cells[1]", "not_one_of"),
    (SEQ | {"cells": []}, "cells", "wrong_type"),
    (SEQ | {"cells": ["gru", "gru"]}, "cells", "invalid_value"),
    (SEQ | {"keep_bias": "high"}, "keep_bias", "out_of_range"),
    (SEQ | {"keep_bias": {"vanilla": 1}}, "keep_bias.vanilla", "unknown_field"),
    (SEQ | {"keep_bias": {"gru": 1e9}}, "keep_bias.gru", "out_of_range"),
    (SEQ | {"params": {}}, "params", "unknown_field"),
    ({"task": {"name": "recall", "delay": 5}}, "init", "missing"),
    (SEQ | {"task": {"name": "recall", "delay": 5, "N": 3}}, "inputs", "wrong_shape"),
    (SEQ | {"inputs": [[1.0]]}, "inputs", "conflict"),
    (SEQ | {"task": {"name": "recall", "delay": 5000}}, "task.delay", "over_limit"),
])
def test_compare_cells_refusals_name_the_field(client, body, field, code):
    r = client.post("/api/v1/compare-cells", json=body)
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert (e["field"], e["code"]) == (field, code)


def test_all_the_computations_together_are_checked_against_the_work_limit():
    c = TestClient(create_app(Settings(max_work=6e6)))
    assert c.post("/api/v1/compare-cells", json=SEQ | {"cells": ["lstm"]}).status_code == 200  # each alone fits
    r = c.post("/api/v1/compare-cells", json=SEQ)
    e = r.json()["error"]
    assert r.status_code == 422 and e["field"] == "cells" and e["params"]["setting"] == "BPTT_MAX_WORK"
    r = c.post("/api/v1/radius-sweep", json=SEQ | {"radii": [1.0] * 12})
    e = r.json()["error"]
    assert r.status_code == 422 and e["field"] == "radii" and e["params"]["setting"] == "BPTT_MAX_WORK"


# ------------------------------------------------------------------- radius-sweep


def test_radius_sweep_equals_bptt_with_w_hh_rescaled(client):
    body = {"task": {"name": "sum", "T": 25, "seed": 1}, "init": {"seed": 4, "hidden": 5}, "activation": "identity",
            "radii": [0.5, 1.0, 1.5]}
    r = client.post("/api/v1/radius-sweep", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["t"] == list(range(1, 26)) and [x["radius"] for x in d["runs"]] == [0.5, 1.0, 1.5]
    from app.engine.train.tasks import make

    t = make("sum", T=25, seed=1, N=1)
    data = {"inputs": t.inputs[0].tolist(), "targets": t.targets[0].tolist(), "loss": "mse", "activation": "identity"}
    drawn = bptt(client, data | {"init": {"seed": 4, "hidden": 5}, "fields": ["params"]})["params"]
    W = np.array(drawn["W_hh"])
    rho0 = np.abs(np.linalg.eigvals(W)).max()
    assert d["spectral_radius_drawn"] == pytest.approx(rho0, rel=1e-14)
    for run in d["runs"]:
        params = drawn | {"W_hh": (W * (run["radius"] / rho0)).tolist()}
        ref = bptt(client, data | {"params": params, "fields": ["delta_norm", "diagnostics"]})
        np.testing.assert_allclose(run["delta_t1"], arr(ref["delta_norm"])[:, 0], rtol=1e-12)
        assert run["spectral_radius"] == pytest.approx(ref["diagnostics"]["spectral_radius"], rel=1e-12)
        assert run["spectral_radius"] == pytest.approx(run["radius"], rel=1e-12)
    # a linear RNN: ‖δ_{t,1}‖ shrinks below ρ = 1 and grows above it
    assert [x["verdict"] for x in d["runs"]] == ["vanishing", "steady", "exploding"]


@pytest.mark.parametrize("body, field, code", [
    (SEQ | {"cell": "lstm"}, "cell", "not_one_of"),
    (SEQ | {"radii": []}, "radii", "wrong_type"),
    (SEQ | {"radii": [1.0] * 13}, "radii", "over_limit"),
    (SEQ | {"radii": [1.0, -2]}, "radii[1]", "out_of_range"),
    (SEQ | {"activation": "cosh"}, "activation", "not_one_of"),
    (SEQ | {"truncation": 3}, "truncation", "unknown_field"),
])
def test_radius_sweep_refusals_name_the_field(client, body, field, code):
    r = client.post("/api/v1/radius-sweep", json=body)
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert (e["field"], e["code"]) == (field, code)


def test_a_run_read_to_its_end_leaves_its_place_free_for_the_next():
    """The labs start their next run as soon as one ends: with BPTT_TRAIN_MAX_RUNS = 1 that run
    must get its place, not a 503 (the place was freed only after the last line had gone)."""
    import httpx
    from server import running_server

    body = {"cell": "vanilla", "init": {"seed": 0, "hidden": 2}, "task": {"name": "echo", "T": 3, "delay": 1, "N": 2},
            "updates": 3}
    with running_server(env={"BPTT_TRAIN_MAX_RUNS": "1"}) as base, httpx.Client(timeout=30) as c:
        codes = []
        for _ in range(40):
            with c.stream("POST", base + "/api/v1/train", json=body) as r:
                codes.append(r.status_code)
                for _ in r.iter_lines():  # to the end of the stream; then the next at once, as the page does
                    pass
    assert codes == [200] * 40, codes


#: names given as a list or an object where a string is expected: each was a TypeError
#: (unhashable, a dict lookup) and a 500 (found by a student-attack helper)
UNHASHABLE = [
    ("/api/v1/compare-cells", {"cells": [[]], "task": {"name": "echo"}, "init": {"seed": 0, "hidden": 2}}, "cells[0]"),
    ("/api/v1/compare-cells", {"cells": [{}], "task": {"name": "echo"}, "init": {"seed": 0, "hidden": 2}}, "cells[0]"),
    ("/api/v1/train", {"inputs": [[0.1]] * 5, "targets": [[0.1]] * 5, "init": {"seed": 0, "hidden": 2},
                       "optimizer": {"name": []}}, "optimizer.name"),
    ("/api/v1/train", {"inputs": [[0.1]] * 5, "targets": [[0.1]] * 5, "init": {"seed": 0, "hidden": 2},
                       "optimizer": {"name": {"a": 1}}}, "optimizer.name"),
    ("/api/v1/train", {"task": {"name": "chars", "text": []}, "init": {"seed": 0, "hidden": 2}}, "task.text"),
    ("/api/v1/task", {"task": {"name": "chars", "text": {}}}, "task.text"),
]


@pytest.mark.parametrize("url,body,field", UNHASHABLE)
def test_a_name_that_is_not_a_string_is_a_422_naming_it(url, body, field):
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as c:
        r = c.post(url, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, r.json()
