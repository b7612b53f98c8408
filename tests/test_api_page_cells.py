"""What the page's cell views read from the API: every cell's names in /api/v1/notations (the same
as the registry's), the opt-in ``methods`` field (BPTT beside RTRL: their largest relative
difference and their costs, times in Server-Timing) and ``delta_c_norm`` (the LSTM's rail)."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import rtrl
from app.engine.cells import CELLS

INPUTS = [[1.0, 0.5], [0.2, -1.0], [0.3, 0.1], [-0.4, 0.8], [0.6, 0.2]]
TARGETS = [[0.5], [0.2], [-0.1], [0.3], [0.0]]


def body(cell, **extra):
    return {"cell": cell, "inputs": INPUTS, "targets": TARGETS, "init": {"seed": 3, "hidden": 3}} | extra


def test_notations_name_every_cells_parameters_as_the_registry_does(client):
    notations = client.get("/api/v1/notations").json()
    cells = client.get("/api/v1/cells").json()
    checked = 0
    for cell, d in cells.items():
        for p in d["params"]:
            for notation, names in p["names"].items():
                shown = notations[notation][p["canonical"]]
                assert (shown if isinstance(shown, list) else [shown]) == names, (cell, p["canonical"], notation)
                checked += 1
    assert checked == 5 * (3 + 3 + 4 + 4)
    # and the names a response uses for each cell are the same
    for cell in CELLS:
        for notation in notations:
            names = client.post("/api/v1/bptt", json=body(cell, notation=notation, fields=["grads"])).json()["names"]
            for canon, shown in names.items():
                listed = notations[notation][canon]
                assert shown == (" + ".join(listed) if isinstance(listed, list) else listed), (cell, notation, canon)


def _timing(r) -> dict[str, float]:
    out = {}
    for part in r.headers["server-timing"].split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("notation", ["canonical", "pytorch"])
def test_methods_shows_bptt_and_rtrl_give_the_same_gradient(client, cell, notation):
    h0 = {"h0": [0.3, -0.2, 0.1]} | ({"c0": [0.5, 0.1, -0.4]} if cell == "lstm" else {})
    r = client.post("/api/v1/bptt", json=body(cell, notation=notation, fields=["methods", "grads"], **h0))
    assert r.status_code == 200, r.text
    d = r.json()["methods"]
    names = {n for p in client.get("/api/v1/cells").json()[cell]["params"] for n in p["names"][notation]}
    assert set(d["arrays"]) == names | {f"{s}0" for s in CELLS[cell].states}
    assert 0 <= d["max_rel_diff"] < 1e-10 and d["max_rel_diff"] == max(d["arrays"].values())
    S = len(CELLS[cell].states) * 3
    assert d["state_size"] == S and d["n_params"] == rtrl.n_params(CELLS[cell], 2, 3)
    assert d["rtrl"]["floats"] == S * (d["n_params"] + S)  # P_t and Q_t
    assert d["bptt"]["floats"] == 5 * (S + CELLS[cell].G * 3) + S  # every step's trace and dh_next
    assert d["rtrl"]["time"] == "O(T·S²·|θ|)" and d["bptt"]["memory"] == "O(T·S)"
    t = _timing(r)
    assert t["bptt"] > 0 and t["rtrl"] > 0


def test_methods_measure_the_difference(client, monkeypatch):
    """Not a constant: an RTRL that were off by 1e-6 in W_hh (and 2e-6 in h0) is reported so."""
    from app.engine import methods

    true = methods.rtrl.gradients

    def off(*a, **k):
        g, s0 = true(*a, **k)
        return g | {"W_hh": g["W_hh"] * (1 + 1e-6)}, s0 | {"h": s0["h"] * (1 - 2e-6)}

    monkeypatch.setattr(methods.rtrl, "gradients", off)
    d = client.post("/api/v1/bptt", json=body("gru", h0=[0.3, -0.2, 0.1], fields=["methods"])).json()["methods"]
    assert d["arrays"]["W_hh"] == pytest.approx(1e-6, rel=1e-6) and d["arrays"]["h0"] == pytest.approx(2e-6, rel=1e-6)
    assert d["max_rel_diff"] == d["arrays"]["h0"] and d["arrays"]["W_ih"] < 1e-12


def test_methods_compare_the_exact_gradients_under_truncation_and_clipping(client):
    d = client.post("/api/v1/bptt", json=body("lstm", truncation=2, clip={"max_norm": 1e-3},
                                               fields=["methods", "grads"])).json()
    assert d["methods"]["max_rel_diff"] < 1e-10


def test_methods_rtrl_memory_does_not_grow_with_T_and_bptt_does(client):
    a = client.post("/api/v1/bptt", json=body("lstm", fields=["methods"])).json()["methods"]
    long = body("lstm", fields=["methods"], inputs=INPUTS * 4, targets=TARGETS * 4)
    b = client.post("/api/v1/bptt", json=long).json()["methods"]
    assert a["rtrl"]["floats"] == b["rtrl"]["floats"] and b["bptt"]["floats"] > 3 * a["bptt"]["floats"]
    assert b["rtrl"]["work"] == pytest.approx(4 * a["rtrl"]["work"]) and b["rtrl"]["work"] > 10 * b["bptt"]["work"]


def test_methods_only_when_named(client):
    r = client.post("/api/v1/bptt", json=body("lstm"))
    assert "methods" not in r.json() and "rtrl" not in _timing(r)


def test_methods_priced_before_the_work(client, monkeypatch):
    import app.api.routes as routes

    monkeypatch.setattr(routes, "run", lambda *a: (_ for _ in ()).throw(AssertionError("computed")))
    big = {"cell": "lstm", "inputs": [[0.1] * 8] * 4, "targets": [[0.0]] * 4, "init": {"seed": 0, "hidden": 256},
           "fields": ["methods"]}
    r = client.post("/api/v1/bptt", json=big)
    assert r.status_code == 422 and r.json()["error"]["code"] == "over_limit"
    assert r.json()["error"]["field"] == "fields" and "BPTT_MAX_NORM_FLOATS" in r.json()["error"]["expected"]


def test_delta_c_norm_is_the_norm_of_delta_c(client):
    d = client.post("/api/v1/bptt", json=body("lstm", fields=["delta_c", "delta_c_norm"])).json()
    T = len(INPUTS)
    for t in range(T):
        for k in range(T):
            if k <= t:
                assert d["delta_c_norm"][t][k] == pytest.approx(np.linalg.norm(d["delta_c"][t][k]), rel=1e-14, abs=1e-300)
            else:
                assert d["delta_c_norm"][t][k] is None
    assert any(v for row in d["delta_c_norm"] for v in row if v)  # not all zeros
    assert client.post("/api/v1/bptt", json=body("gru", fields=["delta_c_norm"])).json()["delta_c_norm"] is None


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("truncation", [None, 2])
def test_delta_h_norm_comes_with_detail_norms_too_and_is_the_same(client, cell, truncation):
    """The norms ‖∂L_t/∂h_k‖ (and ‖∂L_t/∂c_k‖) are formed without the ε tables: with detail norms
    (where no T×T×m table is held) and alone they are bit for bit those of the ε vectors."""
    b = body(cell, truncation=truncation, h0=[0.3, -0.2, 0.1])
    vectors = client.post("/api/v1/bptt", json=b | {"fields": ["delta_h", "delta_c", "delta_h_norm", "delta_c_norm"]}).json()
    for detail in ("full", "norms"):
        alone = client.post("/api/v1/bptt", json=b | {"detail": detail, "fields": ["delta_h_norm", "delta_c_norm"]}).json()
        assert alone["detail"] == detail
        assert alone["delta_h_norm"] == vectors["delta_h_norm"]
        assert alone["delta_c_norm"] == vectors["delta_c_norm"]
    T = len(INPUTS)
    want = [[np.linalg.norm(vectors["delta_h"][t][k]) if k <= t else None for k in range(T)] for t in range(T)]
    assert np.allclose(np.array(vectors["delta_h_norm"], dtype=float), np.array(want, dtype=float), rtol=1e-14, equal_nan=True)
    assert any(v for row in vectors["delta_h_norm"] for v in row if v)


def test_the_long_span_presets_are_one_task_and_say_true_numbers(client):
    """The same sequence, target and loss step for the vanilla RNN, the LSTM and the GRU; the share
    of ‖∂L₅₀/∂h₅₀‖ that reaches h₁ is what their descriptions say (5e−16, 2e−2, 6e−2)."""
    reqs = {c: client.get(f"/api/v1/presets/long-span-{c}").json() for c in ("vanilla", "lstm", "gru")}
    listed = {p["id"]: p for p in client.get("/api/v1/presets").json()}
    for key in ("inputs", "targets", "loss_steps", "loss"):
        assert reqs["vanilla"][key] == reqs["lstm"][key] == reqs["gru"][key], key
    assert len(reqs["vanilla"]["inputs"]) == 50 and reqs["vanilla"]["loss_steps"] == "last"
    said = {"vanilla": (1e-16, 1e-15, "5e−16"), "lstm": (1.5e-2, 2.5e-2, "2e−2"), "gru": (5.5e-2, 7.5e-2, "6e−2")}
    for cell, req in reqs.items():
        assert req["cell"] == cell
        d = client.post("/api/v1/bptt", json=req | {"fields": ["delta_h_norm"]}).json()
        row = d["delta_h_norm"][49]
        lo, hi, words = said[cell]
        assert lo < row[0] / row[49] < hi, (cell, row[0] / row[49])
        p = listed[f"long-span-{cell}"]
        assert words in p["description"]["en"] and words in p["description"]["zh"]
