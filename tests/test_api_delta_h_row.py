"""POST /api/v1/bptt's delta_h_row: row t = select.t of delta_h (∂L_t/∂h_k, k ≤ t) for the
sequence select.b, what the step-by-step player draws, without the T×T×m ε tables (at T = 256,
m = 16 delta_h is ~12 MB of JSON; the row is ~50 KB). It must be the whole field's row bit for
bit, in either detail, with truncation, for every cell, in JSON and in the npz archive."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from test_api_parts import body_of as parts_body_of

from app.api import npz
from app.api.schemas import BPTTResponse
from app.engine.cells import CELLS
from app.main import app

J = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as c:
        yield c


def body_of(cell, T=7, seed=5, **kw):
    """test_api_parts' model, at this module's T and seed."""
    return parts_body_of(cell, T=T, seed=seed, **kw)


def post(client, body, status=200):
    r = client.post("/api/v1/bptt", content=orjson.dumps(body), headers=J)
    assert r.status_code == status, r.text
    return r.json()


@pytest.mark.parametrize("cell,B,truncation", list(itertools.product(sorted(CELLS), (None, 3), (None, 2))))
def test_the_row_is_the_whole_fields_row_bit_for_bit(client, cell, B, truncation):
    """Every (t, b) of a small run: delta_h_row == delta_h[t] (delta_h[b][t] with a batch), the
    JSON lists compared with == (the same floats written the same way), with either detail of the
    row's own request; beside dh_next_pass and delta (the player's other fields) it is the same."""
    T = 7
    base = body_of(cell, T=T, B=B, truncation=truncation)
    whole = post(client, base | {"fields": ["delta_h"]})["delta_h"]
    for t, b in itertools.product(range(T), range(B or 1)):
        sel = {"t": t, "k": 0} | ({} if B is None else {"b": b})
        want = whole[t] if B is None else whole[b][t]
        for detail in ("full", "norms"):
            d = post(client, base | {"select": sel, "detail": detail, "fields": ["delta_h_row"]})
            assert d["delta_h_row"] == want, (t, b, detail)
            assert len(d["delta_h_row"]) == t + 1 and "delta_h" not in d
        both = post(client, base | {"select": sel, "fields": ["delta_h_row", "delta", "dh_next_pass", "eps_tt"]})
        assert both["delta_h_row"] == want
    BPTTResponse.model_validate(d)


def test_a_row_that_overflows_is_null_where_the_table_is(client):
    """W_hh large and linear: the ε^h grow past float64; the row writes null where delta_h does,
    and nonfinite names it."""
    T, m = 40, 2
    body = {"inputs": [[1.0]] * T, "targets": [[0.0]] * T, "activation": "identity",
            "params": {"W_xh": [[1.0], [1.0]], "W_hh": [[1e20, 0.0], [0.0, 1e20]], "b_h": [0.0, 0.0],
                       "W_hy": [[1.0, 1.0]], "b_y": [0.0]}}
    whole = post(client, body | {"fields": ["delta_h"]})
    d = post(client, body | {"select": {"t": T - 1, "k": 0}, "fields": ["delta_h_row"]})
    assert d["delta_h_row"] == whole["delta_h"][T - 1]
    assert any(v is None for row in d["delta_h_row"] for v in row)
    assert "delta_h_row" in d["nonfinite"]


def test_the_row_is_small_and_the_table_is_not_computed_in_full(client):
    """At T = 256, m = 16 (the bench's size) the row is what a player step needs: under 1/100 of
    delta_h's bytes."""
    body = body_of("vanilla", T=256, n=4, m=16, p=4, seed=1)
    sel = {"t": 200, "k": 10}
    row = client.post("/api/v1/bptt", content=orjson.dumps(body | {"select": sel, "fields": ["delta_h_row"]}), headers=J)
    table = client.post("/api/v1/bptt", content=orjson.dumps(body | {"fields": ["delta_h"]}), headers=J)
    assert row.status_code == table.status_code == 200
    assert len(table.content) > 10e6 and len(row.content) < len(table.content) / 100, (len(row.content), len(table.content))
    assert row.json()["delta_h_row"] == table.json()["delta_h"][200]


def test_refusals_and_rtrl(client):
    """Without select it is refused with the one error shape (field select, code missing); with
    method rtrl (no backward pass) it is null."""
    r = client.post("/api/v1/bptt", json=body_of("vanilla", fields=["delta_h_row"]))
    assert r.status_code == 422
    e = r.json()["error"]
    assert e["field"] == "select" and e["code"] == "missing", e
    d = post(client, body_of("vanilla", method="rtrl", select={"t": 3, "k": 1}, fields=["delta_h_row"]))
    assert d["delta_h_row"] is None


def test_npz_row_is_the_dense_tables_row(client):
    body = body_of("lstm", B=2, select={"t": 5, "k": 2, "b": 1})
    rz = client.post("/api/v1/bptt", json=body | {"fields": ["delta_h_row"]}, headers={"accept": npz.MEDIA_TYPE})
    whole = client.post("/api/v1/bptt", json=body | {"fields": ["delta_h"]}, headers={"accept": npz.MEDIA_TYPE})
    assert rz.status_code == whole.status_code == 200
    z = np.load(io.BytesIO(rz.content), allow_pickle=False)
    w = np.load(io.BytesIO(whole.content), allow_pickle=False)
    assert z["delta_h_row"].shape == (6, 3)
    assert np.array_equal(z["delta_h_row"], w["delta_h"][1, 5, :6])
    assert "delta_h_row" not in json.loads(z[npz.META].item())


@pytest.mark.parametrize("cell,B,truncation", list(itertools.product(sorted(CELLS), (None, 2), (None, 3))))
def test_delta_row_is_the_tables_row_bit_for_bit(client, cell, B, truncation):
    """delta_row (what the δ-row heatmap draws) == delta[t] (delta[b][t]) of the generic δ loop's
    table (the one every row field runs), with either detail: at T = 256, m = 16 the table is
    ~12 MB of JSON, the row ~50 KB; 0 where truncation drops δ_{t,k}."""
    T = 7
    base = body_of(cell, T=T, B=B, truncation=truncation)
    whole = post(client, base | {"select": {"t": 0, "k": 0}, "fields": ["delta", "delta_h_row"]})["delta"]
    for t, b in itertools.product(range(T), range(B or 1)):
        sel = {"t": t, "k": 0} | ({} if B is None else {"b": b})
        want = whole[t] if B is None else whole[b][t]
        for detail in ("full", "norms"):
            d = post(client, base | {"select": sel, "detail": detail, "fields": ["delta_row"]})
            assert d["delta_row"] == want, (t, b, detail)
            assert "delta" not in d
        if truncation:
            assert all(v == 0 for k in range(t + 1) if t - k >= truncation for v in d["delta_row"][k])
    BPTTResponse.model_validate(d)
