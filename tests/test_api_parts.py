"""POST /api/v1/bptt's select / backward_parts and grads_per_copy: what they carry, that asking
for them alone gives the bits of the whole response, their refusals, and the δ bound with
detail norms (the page draws these instead of recomputing them)."""

from __future__ import annotations

import itertools

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.api.parse import RESPONSE_FIELDS
from app.api.schemas import BPTTResponse
from app.engine.cells import CELLS
from app.main import app

J = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as c:
        yield c


def body_of(cell, T=6, n=2, m=3, p=2, B=None, seed=3, **extra):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    return {"cell": cell, "inputs": rng.standard_normal(lead + (T, n)).tolist(),
            "targets": rng.standard_normal(lead + (T, p)).tolist(),
            "init": {"seed": seed, "hidden": m, "outputs": p, "scale": 0.9}} | extra


def post(client, body):
    r = client.post("/api/v1/bptt", content=orjson.dumps(body), headers=J)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("cell,B,detail,truncation,clip", list(itertools.product(
    sorted(CELLS), (None, 2), ("full", "norms"), (None, 3), (None, {"max_norm": 0.3}))))
def test_new_fields_alone_are_the_bits_of_every_field(client, cell, B, detail, truncation, clip):
    body = body_of(cell, B=B, detail=detail, truncation=truncation, clip=clip,
                   select={"t": 5, "k": 2, "b": 0 if B is None else 1})
    eps = ("dh_next_pass", "delta_h_row", "delta_row")  # the generic δ loop: dz differs in the last bit (the ε tables: the fast loop's)
    every = post(client, body | {"fields": [f for f in RESPONSE_FIELDS if f not in eps]})
    for field in ("backward_parts", "grads_per_copy", "diagnostics"):
        alone = post(client, body | {"fields": [field]})
        assert alone[field] == every[field], field
        assert alone[field] is not None
    BPTTResponse.model_validate(every)  # the documented shape


def test_backward_parts_are_the_response_numbers(client):
    """step.delta is delta[t][k], the bound diagnostics.delta_bound[t][k], the terms the copy's
    own outer products, the norms those of the vectors, the gradient norms those of grads."""
    d = post(client, body_of("vanilla", T=7, m=4, select={"t": 6, "k": 3}, fields=list(RESPONSE_FIELDS)))
    bp = d["backward_parts"]
    assert (bp["t"], bp["k"], bp["b"], bp["in_loss"], bp["kept"]) == (6, 3, 0, True, True)
    np.testing.assert_allclose(bp["step"]["delta"], d["delta"][6][3], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(bp["step_from"]["delta"], d["delta"][6][4], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(bp["step"]["eps_h"], d["delta_h"][6][3], rtol=1e-14)
    assert bp["bound"] == d["diagnostics"]["delta_bound"][6][3]
    assert bp["jacobian_norms"] == d["diagnostics"]["jacobian_norm"][4:7]
    np.testing.assert_allclose(bp["delta_norm"], d["delta_norm"][6][3], rtol=1e-14)
    np.testing.assert_allclose(bp["step_norms"]["delta"], np.linalg.norm(bp["step"]["delta"]), rtol=1e-15)
    delta, h_prev = np.array(bp["step"]["delta"]), np.array(d["forward"]["h"][2])
    np.testing.assert_allclose(bp["terms"]["W_hh"], np.outer(delta, h_prev), rtol=1e-15)
    np.testing.assert_allclose(bp["vectors"]["h_prev"], h_prev, rtol=0)
    np.testing.assert_allclose(bp["terms"]["W_hy"], np.outer(d["e"][6], d["forward"]["h"][6]), rtol=1e-15)
    for name, g in d["grads"].items():
        if name in bp["grad_norms"]:
            np.testing.assert_allclose(bp["grad_norms"][name], np.linalg.norm(g), rtol=1e-14)
    assert bp["grad_unclipped_norms"] is None  # no clipping
    # the per-copy terms sum to the gradient
    for name, g in d["grads_per_copy"].items():
        np.testing.assert_allclose(np.sum(g, axis=0), d["grads"][name], rtol=1e-12, atol=1e-15)


def test_pytorch_names_two_biases_and_gru_parts(client):
    d = post(client, body_of("gru", notation="pytorch", select={"t": 4, "k": 4}, fields=["grads_per_copy"]))
    bp = d["backward_parts"]
    assert set(bp["terms"]) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "linear.weight", "linear.bias"}
    assert list(bp["step"]) == list(CELLS["gru"].parts) and bp["step_from"] is None
    assert set(d["grads_per_copy"]) == set(bp["terms"])
    m = 3  # b_hn takes δ^n ⊙ r, b_in takes δ^n
    assert bp["terms"]["bias_hh_l0"][2 * m :] == bp["step"]["delta_n_r"]
    assert bp["terms"]["bias_ih_l0"][2 * m :] == bp["step"]["delta_n"]


def test_a_dropped_term_and_a_step_without_loss(client):
    d = post(client, body_of("lstm", truncation=2, loss_steps=[True] * 5 + [False], select={"t": 4, "k": 1}))
    bp = d["backward_parts"]
    assert bp["kept"] is False and bp["step"] is None and bp["delta_norm"] is None
    assert np.all(np.array(bp["terms"]["W_hh"]) == 0)
    d = post(client, body_of("lstm", loss_steps=[True] * 5 + [False], select={"t": 5, "k": 4}))
    bp = d["backward_parts"]
    assert bp["in_loss"] is False and bp["kept"] is True and bp["delta_norm"] == 0


def test_detail_norms_sends_the_bound_and_the_parts(client):
    d = post(client, body_of("vanilla", detail="norms", select={"t": 5, "k": 0}))
    assert d["delta"] is None and d["diagnostics"]["delta_bound"] is not None
    assert d["backward_parts"]["bound"] == d["diagnostics"]["delta_bound"][5][0]
    assert len(d["backward_parts"]["step"]["delta"]) == 3


def test_rtrl_has_no_parts_and_says_why(client):
    d = post(client, body_of("gru", method="rtrl", select={"t": 1, "k": 0}, fields=["grads_per_copy", "grads"]))
    assert d["backward_parts"] is None and d["grads_per_copy"] is None
    assert any("backward_parts" in w for w in d["warnings"])


def test_default_fields_leave_the_new_fields_out(client):
    d = post(client, body_of("vanilla"))
    assert "backward_parts" not in d and "grads_per_copy" not in d
    d = post(client, body_of("vanilla", select={"t": 0, "k": 0}))  # select asks for backward_parts
    assert d["backward_parts"]["t"] == 0 and "grads" in d and "grads_per_copy" not in d


@pytest.mark.parametrize("select,field,code", [
    ({"t": 1}, "select.k", "missing"),
    ({"k": 0}, "select.t", "missing"),
    ({"t": 6, "k": 0}, "select.t", "out_of_range"),
    ({"t": 2, "k": 3}, "select.k", "out_of_range"),
    ({"t": -1, "k": 0}, "select.t", "out_of_range"),
    ({"t": "1", "k": 0}, "select.t", "wrong_type"),
    ({"t": 1, "k": 0, "b": 1}, "select.b", "out_of_range"),
    ({"t": 1, "k": 0, "s": 1}, "select.s", "unknown_field"),
    ([1, 0], "select", "wrong_type"),
])
def test_bad_select_is_a_422_naming_the_field(client, select, field, code):
    r = client.post("/api/v1/bptt", content=orjson.dumps(body_of("vanilla", select=select)), headers=J)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == (field, code), err


def test_backward_parts_without_select_is_refused(client):
    r = client.post("/api/v1/bptt", content=orjson.dumps(body_of("vanilla", fields=["backward_parts"])), headers=J)
    assert r.status_code == 422 and r.json()["error"]["field"] == "select"
    assert r.json()["error"]["code"] == "missing"


def test_cells_route_lists_each_cells_parts(client):
    d = client.get("/api/v1/cells").json()
    for name, cell in CELLS.items():
        assert d[name]["parts"] == list(cell.parts)
        assert {"delta", "eps_h", "eps_h_prev"} <= set(cell.parts)
    assert {"c_hat", "delta_i", "delta_f", "delta_g", "delta_o", "eps_c", "eps_c_prev"} <= set(d["lstm"]["parts"])
    assert {"r", "u", "n", "hn", "delta_n_r", "eps_h_direct", "eps_h_through"} <= set(d["gru"]["parts"])
