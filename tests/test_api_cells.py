"""The API with every cell of the registry: LSTM/GRU requests (canonical and PyTorch names, c0,
forward.c and gates, delta_h/delta_c when asked), method rtrl, GET /api/v1/cells, and the
refusals that name their field."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.cells import CELLS

INPUTS = [[1.0, 0.5], [0.2, -1.0], [0.3, 0.1], [-0.4, 0.8]]
TARGETS = [[0.5], [0.2], [-0.1], [0.3]]


def body(cell, **extra):
    return {"cell": cell, "inputs": INPUTS, "targets": TARGETS, "init": {"seed": 3, "hidden": 3}} | extra


def test_cells_endpoint_is_the_registry(client):
    d = client.get("/api/v1/cells").json()
    assert list(d) == list(CELLS)
    assert d["lstm"]["states"] == ["h", "c"] and d["lstm"]["gates"] == ["i", "f", "g", "o"]
    assert d["gru"]["gates"] == ["r", "u", "n"] and d["gru"]["activations"] == ["tanh"]
    W_ih = d["lstm"]["params"][0]
    assert W_ih["shape"] == ["4m", "n"] and W_ih["names"]["pytorch"] == ["weight_ih_l0"]
    assert d["vanilla"]["params"][2]["names"]["pytorch"] == ["bias_ih_l0", "bias_hh_l0"]
    assert client.get("/openapi.json").json()["components"]["schemas"]["BPTTRequest"]["properties"]["cell"]["enum"] == list(CELLS)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_request_and_rtrl_give_the_same_grads(client, cell):
    d = client.post("/api/v1/bptt", json=body(cell, notation="pytorch")).json()
    assert d["cell"] == cell and d["method"] == "bptt" and d["nonfinite"] == []
    assert set(d["grads"]) >= {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "linear.weight", "h0", "inputs"}
    assert ("c0" in d["grads"]) == (cell == "lstm")
    assert list(d["forward"]["gates"]) == list(CELLS[cell].gates)
    assert (d["forward"]["c"] is not None) == (cell == "lstm") and d["forward"]["fprime"] is None
    assert np.array(d["delta"][3]).shape == (4, CELLS[cell].G * 3)  # δ_{t,k} = ∂L_t/∂a_k, G·m entries
    assert "delta_h" not in d  # only when named in fields
    r = client.post("/api/v1/bptt", json=body(cell, notation="pytorch", method="rtrl")).json()
    assert r["method"] == "rtrl" and r["delta"] is None and r["grads"]["inputs"] is None
    assert any(w.startswith("method: rtrl") for w in r["warnings"])
    for name, g in d["grads"].items():
        if name != "inputs":
            np.testing.assert_allclose(r["grads"][name], g, rtol=1e-10, atol=1e-15, err_msg=name)


def test_delta_h_and_delta_c_when_asked(client):
    d = client.post("/api/v1/bptt", json=body("lstm", fields=["delta_h", "delta_h_norm", "delta_c", "dc", "dh"])).json()
    assert set(d) >= {"delta_h", "delta_h_norm", "delta_c", "dc", "dh"}
    assert len(d["delta_h"][3]) == 4 and len(d["delta_h"][0]) == 1  # ragged: k ≤ t
    dh = np.array(d["dh"])
    for k in range(4):  # dh_k = Σ_t ∂L_t/∂h_k
        np.testing.assert_allclose(sum(np.array(d["delta_h"][t][k]) for t in range(k, 4)), dh[k], rtol=1e-13)
    norms = np.array(d["delta_h_norm"], dtype=float)
    assert np.isnan(norms[0, 1]) and norms[3, 0] == pytest.approx(np.linalg.norm(d["delta_h"][3][0]))
    v = client.post("/api/v1/bptt", json=body("vanilla", fields=["delta_h", "delta", "forward"])).json()
    fprime = np.array(v["forward"]["fprime"])
    for t in range(4):  # vanilla: δ_{t,k} = f'(z_k) ⊙ ∂L_t/∂h_k
        for k in range(t + 1):
            np.testing.assert_allclose(v["delta"][t][k], fprime[k] * np.array(v["delta_h"][t][k]), rtol=1e-14)


@pytest.mark.parametrize("extra,field", [
    ({"cell": "lstm", "activation": "relu"}, "activation"),
    ({"cell": "gru", "method": "rtrl", "truncation": 2}, "truncation"),
    ({"cell": "gru", "c0": [0.0, 0.0, 0.0]}, "c0"),
    ({"cell": "lstm", "c0": [0.0, 0.0]}, "c0"),
    ({"cell": "lstm", "method": "forward"}, "method"),
])
def test_refusals_name_their_field(client, extra, field):
    r = client.post("/api/v1/bptt", json=body("vanilla") | extra)
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_gated_params_of_the_wrong_shape(client):
    params = {"W_ih": [[1.0, 0.0]] * 12, "W_hh": [[0.1] * 3] * 3, "b_ih": [0.0] * 12, "b_hh": [0.0] * 12,
              "W_hy": [[1.0] * 3], "b_y": [0.0]}
    r = client.post("/api/v1/bptt", json={"cell": "lstm", "inputs": INPUTS, "targets": TARGETS, "params": params})
    assert r.status_code == 422 and r.json()["error"]["field"] == "params.W_hh"
    assert "4m×m" in r.json()["error"]["expected"]


def test_rtrl_memory_is_refused_naming_its_setting(client):
    big = {"cell": "lstm", "method": "rtrl", "inputs": [[0.0] * 256], "targets": [[0.0]],
           "init": {"seed": 0, "hidden": 256}}
    r = client.post("/api/v1/bptt", json=big)
    assert r.status_code == 422 and r.json()["error"]["field"] == "method"
    assert "BPTT_MAX_NORM_FLOATS" in r.json()["error"]["expected"]
