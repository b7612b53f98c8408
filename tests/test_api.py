"""POST /api/v1/bptt, the presets, and the one error shape."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import orjson
import pytest

from app.api.parse import FIELDS, OPT_IN_FIELDS, RESPONSE_FIELDS
from app.api.schemas import BPTTRequest


def small(**over):
    body = {
        "inputs": [[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]],
        "targets": [[0.1], [0.2], [0.3]],
        "params": {
            "W_xh": [[0.1, 0.2], [0.3, -0.1], [0.0, 0.5], [0.2, 0.2]],
            "W_hh": [[0.1, 0.0, 0.2, 0.0], [0.0, 0.3, 0.0, 0.1], [0.2, 0.1, 0.0, 0.0], [0.0, 0.0, 0.1, 0.4]],
            "b_h": [0.0, 0.1, 0.0, -0.1],
            "W_hy": [[1.0, -1.0, 0.5, 0.2]],
            "b_y": [0.0],
        },
    }
    body.update(over)
    return body


def strict_json(text: str):
    def refuse(c):
        raise AssertionError(f"non-RFC-8259 token {c}")

    return json.loads(text, parse_constant=refuse)


def test_contract_fields(client):
    r = client.post("/api/v1/bptt", json=small())
    assert r.status_code == 200
    d = strict_json(r.text)
    for key in ("notation", "names", "shapes", "params", "forward", "delta", "delta_norm", "dz", "dh", "grads",
                "grads_per_step", "clip", "diagnostics", "gradient_check", "nonfinite"):
        assert key in d, key
    assert d["shapes"] == {"T": 3, "n": 2, "m": 4, "p": 1, "batch": None}
    assert [len(row) for row in d["delta"]] == [1, 2, 3]  # delta[t][k], k ≤ t
    assert all(len(v) == 4 for row in d["delta"] for v in row)
    assert d["delta_norm"][0][1] is None and d["delta_norm"][2][0] is not None
    assert set(d["grads"]) == {"W_xh", "W_hh", "b_h", "W_hy", "b_y", "h0", "inputs"}
    assert np.array(d["grads_per_step"]["W_hh"]).shape == (3, 4, 4)
    assert d["nonfinite"] == [] and d["detail"] == "full"
    np.testing.assert_allclose(np.sum(d["grads_per_step"]["W_hh"], axis=0), d["grads"]["W_hh"], rtol=1e-12)
    assert "compute;dur=" in r.headers["server-timing"]


def test_schema_model_and_parser_know_the_same_fields():
    assert set(BPTTRequest.model_fields) == set(FIELDS)


def test_notations_name_the_same_matrices(client):
    base = client.post("/api/v1/bptt", json=small()).json()
    P = small()["params"]
    nndl = {"W": P["W_xh"], "U": P["W_hh"], "b": P["b_h"], "V": P["W_hy"], "c": P["b_y"]}
    good = {"U": P["W_xh"], "W": P["W_hh"], "b": P["b_h"], "V": P["W_hy"], "c": P["b_y"]}
    d1 = client.post("/api/v1/bptt", json=small(notation="nndl", params=nndl)).json()
    d2 = client.post("/api/v1/bptt", json=small(notation="goodfellow", params=good)).json()
    assert d1["names"]["W_hh"] == "U" and d2["names"]["W_hh"] == "W"
    assert d1["grads"]["U"] == base["grads"]["W_hh"] == d2["grads"]["W"]
    assert d1["grads"]["W"] == base["grads"]["W_xh"] == d2["grads"]["U"]
    # PyTorch: two biases that add up to b_h, each gets the b_h gradient
    half = [v / 2 for v in P["b_h"]]
    pt = {"weight_ih_l0": P["W_xh"], "weight_hh_l0": P["W_hh"], "bias_ih_l0": half, "bias_hh_l0": half,
          "linear.weight": P["W_hy"], "linear.bias": P["b_y"]}
    d3 = client.post("/api/v1/bptt", json=small(notation="pytorch", params=pt)).json()
    assert d3["grads"]["bias_ih_l0"] == d3["grads"]["bias_hh_l0"] == base["grads"]["b_h"]
    assert d3["forward"]["loss"] == pytest.approx(base["forward"]["loss"], rel=1e-15)
    assert d3["names"]["b_h"] == "bias_ih_l0 + bias_hh_l0"


def test_course_notebook_preset_reproduces_the_published_values(client):
    req = client.get("/api/v1/presets/course-notebook").json()
    g = client.post("/api/v1/bptt", json=req).json()["grads"]
    # rnn_backward's printed values in the course notebook (np.random.seed(1))
    assert g["Wax"][3][1] == pytest.approx(11.2641044965, rel=1e-10)
    assert g["Waa"][1][2] == pytest.approx(2.30333312658, rel=1e-10)
    assert g["ba"][4] == pytest.approx(-0.74747722, rel=1e-7)
    assert g["h0"][3][2] == pytest.approx(-0.314942375127, rel=1e-10)  # da0[2][3]: unit 2, sequence 3
    np.testing.assert_allclose([g["inputs"][2][t][1] for t in range(4)],
                               [-2.07101689, -0.59255627, 0.02466855, 0.01483317], atol=6e-9)


def test_presets_list_and_every_preset_runs(client):
    items = client.get("/api/v1/presets").json()
    ids = [p["id"] for p in items]
    for needed in ("note-003", "many-to-one", "vanishing", "exploding", "residual-6-3", "course-notebook", "pytorch-rnn"):
        assert needed in ids
    for p in items:
        assert p["title"]["en"] and p["title"]["zh"] and p["description"]["zh"]
        r = client.post("/api/v1/bptt", json=client.get(f"/api/v1/presets/{p['id']}").json())
        assert r.status_code == 200, (p["id"], r.text[:300])
        strict_json(r.text)
    nb = client.get("/api/v1/presets/course-notebook").json()
    assert np.array(nb["inputs"]).shape == (10, 4, 3) and nb["notation"] == "coursera"
    assert client.post("/api/v1/bptt", json=nb).json()["shapes"] == {"T": 4, "n": 3, "m": 5, "p": None, "batch": 10}


def test_unknown_preset_is_a_404_in_the_error_shape(client):
    r = client.get("/api/v1/presets/nope")
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "preset_id"


def test_vanishing_and_exploding_presets_show_what_they_say(client):
    van = client.post("/api/v1/bptt", json=client.get("/api/v1/presets/vanishing").json()).json()
    row = van["delta_norm"][-1]
    assert row[0] < 1e-6 * row[-1]
    exp = client.post("/api/v1/bptt", json=client.get("/api/v1/presets/exploding").json()).json()
    row = exp["delta_norm"][-1]
    assert row[0] > 100 * row[-1]
    assert exp["clip"]["clipped"] and exp["clip"]["norm_after"] == pytest.approx(5.0)


def test_overflow_is_valid_json_with_nonfinite_flagged(client):
    r = client.post("/api/v1/bptt", json=client.get("/api/v1/presets/overflow").json())
    assert r.status_code == 200
    d = strict_json(r.text)
    assert "forward.h" in d["nonfinite"] and "grads.W_hh" in d["nonfinite"]
    assert d["forward"]["loss"] is None
    assert any("overflow" in w for w in d["warnings"])


def test_batch_gains_a_leading_axis(client):
    one = small()
    batch = small(inputs=[one["inputs"]] * 2, targets=[one["targets"]] * 2)
    d1 = client.post("/api/v1/bptt", json=one).json()
    d2 = client.post("/api/v1/bptt", json=batch).json()
    assert d2["shapes"]["batch"] == 2
    assert d2["delta"][1] == d1["delta"] and d2["forward"]["h"][0] == d1["forward"]["h"]
    np.testing.assert_allclose(d2["grads"]["W_hh"], 2 * np.array(d1["grads"]["W_hh"]), rtol=1e-14)
    assert np.array(d2["grads"]["h0"]).shape == (2, 4)


def test_init_is_seeded_and_echoed(client):
    body = {"inputs": [[1.0], [2.0]], "targets": [0, 2], "loss": "softmax_ce",
            "init": {"seed": 3, "hidden": 5, "outputs": 3}}
    a = client.post("/api/v1/bptt", json=body).json()
    b = client.post("/api/v1/bptt", json=body).json()
    assert a["params"] == b["params"] and np.array(a["params"]["W_hh"]).shape == (5, 5)
    # the echoed params reproduce the same numbers
    c = client.post("/api/v1/bptt", json={**{k: v for k, v in body.items() if k != "init"}, "params": a["params"]}).json()
    assert c["grads"] == a["grads"]


def test_targets_for_the_loss_steps_only(client):
    full = client.post("/api/v1/bptt", json=small(loss_steps="last")).json()
    short = client.post("/api/v1/bptt", json=small(loss_steps="last", targets=[[0.3]])).json()
    assert full["grads"] == short["grads"]
    assert full["forward"]["loss_t"][:2] == [0.0, 0.0]


def test_softmax_targets_indices_onehot_and_probabilities_agree(client):
    base = small(loss="softmax_ce")
    base["params"]["W_hy"] = [[1.0, -1.0, 0.5, 0.2], [0.0, 0.3, -0.2, 0.1]]
    base["params"]["b_y"] = [0.0, 0.1]
    a = client.post("/api/v1/bptt", json={**base, "targets": [1, 0, 1]}).json()
    b = client.post("/api/v1/bptt", json={**base, "targets": [[0, 1], [1, 0], [0, 1]]}).json()
    assert a["grads"] == b["grads"]
    c = client.post("/api/v1/bptt", json={**base, "targets": [[0.3, 0.7], [1, 0], [0.5, 0.5]]})
    assert c.status_code == 200


def test_detail_falls_back_to_norms_over_the_budget_and_says_so(client):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(max_full_floats=50))) as c:
        for detail in (None, "full"):  # the default as well as full asked for: never silently
            d = c.post("/api/v1/bptt", json=small() | ({} if detail is None else {"detail": detail})).json()
            assert d["detail"] == "norms" and d["delta"] is None and d["grads_per_step"] is None
            assert d["delta_norm"][2][0] is not None
            assert [w for w in d["warnings"] if "BPTT_MAX_FULL_FLOATS" in w] == [
                "detail: the full δ table and the per-step gradients would hold 123 numbers, over the "
                "budget of 50 (BPTT_MAX_FULL_FLOATS); answered with norms"]
        d = c.post("/api/v1/bptt", json=small(detail="norms")).json()
        assert d["detail"] == "norms" and d["warnings"] == []


def test_gradient_check_in_the_response(client):
    d = client.post("/api/v1/bptt", json=small(gradient_check=True)).json()
    gc = d["gradient_check"]
    assert gc["ok"] and gc["max_rel_error"] < 1e-6
    assert set(gc["arrays"]) == {"W_xh", "W_hh", "b_h", "W_hy", "b_y", "h0", "inputs"}


def test_truncation_and_clip_in_the_response(client):
    d = client.post("/api/v1/bptt", json=small(truncation=1, clip={"max_value": 0.01})).json()
    assert d["truncation"] == 1
    assert all(all(x == 0 for x in v) for v in d["delta"][2][:2])  # t − k ≥ 1 dropped
    assert d["clip"]["method"] == "value"
    assert max(abs(x) for row in d["grads"]["W_hh"] for x in row) <= 0.01


# ---- bad input: one error shape, the field named, what was expected and what came ----

BAD = [
    # (body, status, field, fragment of the message)
    (small(params={**small()["params"], "W_hh": [[0.1, 0.2, 0.3]] * 4}), 422, "params.W_hh", "expected a square m×m array (hidden×hidden), got 4×3"),
    (small(params={**small()["params"], "W_xh": [[0.1, 0.2, 0.3]] * 4}), 422, "params.W_xh", "expected 4×2 (hidden×inputs), got 4×3"),
    (small(params={**small()["params"], "b_h": [0.0]}), 422, "params.b_h", "expected length 4 (hidden), got length 1"),
    (small(inputs=[[1.0, 0.0], [0.5], [0.0, 2.0]]), 422, "inputs", "ragged"),
    (small(inputs=[[1.0, "x"], [0.5, 1.0], [0.0, 2.0]]), 422, "inputs[0][1]", 'expected a number, got the string "x"'),
    (small(inputs=[[1.0, True], [0.5, 1.0], [0.0, 2.0]]), 422, "inputs[0][1]", "got true"),
    (small(inputs=[[1.0, None], [0.5, 1.0], [0.0, 2.0]]), 422, "inputs[0][1]", "got null"),
    (small(inputs=[]), 422, "inputs", "empty"),
    (small(inputs=[[]]), 422, "inputs", "empty"),
    (small(inputs=5), 422, "inputs", "got 5"),
    (small(foo=1), 422, "foo", "unknown field"),
    (small(notation="bishop"), 422, "notation", "expected one of canonical, goodfellow, nndl, coursera, pytorch"),
    (small(activation="gelu"), 422, "activation", "one of tanh, sigmoid, relu, identity"),
    (small(params={**small()["params"], "U": [[0.0]]}), 422, "params.U", "U is W_xh in notation goodfellow; W_hh in notation nndl"),
    (small(notation="nndl"), 422, "params.W_xh", "W_xh is W_xh in notation canonical; in notation nndl it is W"),
    (small(loss="softmax_ce", targets=[0, 0, 5]), 422, "targets[2]", "expected a class index in 0…0 (p = 1 outputs), got 5"),
    (small(loss="softmax_ce", targets=[[0.5], [0.2], [1.0]]), 422, "targets[0]", "probability row"),
    (small(loss_steps=[True, False]), 422, "loss_steps", "T = 3 booleans, got 2 entries"),
    (small(loss_steps="first"), 422, "loss_steps", '"all", "last"'),
    (small(truncation=0), 422, "truncation", "≥ 1"),
    (small(truncation=1.5), 422, "truncation", "got 1.5"),
    (small(truncation="2"), 422, "truncation", "string"),
    (small(clip={"max_norm": -1}), 422, "clip.max_norm", "> 0"),
    (small(clip={"max_norm": 1, "max_value": 1}), 422, "clip", "max_norm"),
    (small(targets=[[0.1], [0.2]]), 422, "targets", "expected (3)×1"),
    (small(h0=[0.0, 0.0]), 422, "h0", "length 4 (hidden)"),
    (small(loss="upstream"), 422, "params.W_hy", "no output layer"),
    (small(upstream=[[0.0] * 4] * 3), 422, "upstream", "loss upstream"),
    (small(upstream=0), 422, "upstream", "got 0"),
    (small(loss="upstream", params=None, init={"seed": 0, "hidden": 4}, targets={}), 422, "targets", "got an object"),
    (small(init={"seed": 0, "hidden": 4}), 422, "init", "params or init, not both"),
    (small(params=None), 422, "params", "got nothing"),
    (small(gradient_check="yes"), 422, "gradient_check", "true or false"),
    (small(detail="some"), 422, "detail", "full or norms"),
    (small(fields="delta"), 422, "fields", "an array of response field names: params, forward"),
    (small(fields=["delta", "grad"]), 422, "fields[1]", 'one of params, forward, e, eps_tt, delta, delta_norm, dz, dh, grads, grads_unclipped, grads_per_step, clip, diagnostics, vanish, gradient_check, delta_h, delta_h_norm, delta_c, dc, delta_c_norm, methods, grads_per_copy, backward_parts, dh_next_pass, delta_h_row, delta_row, got the string "grad"'),
    (small(fields=[None]), 422, "fields[0]", "got null"),
    ({"inputs": [[1.0]]}, 422, "params", "init"),
    ({"inputs": [[1.0]], "loss": "softmax_ce", "targets": [0], "init": {"seed": 1, "hidden": 2}}, 422, "init.outputs", "class-index"),
    ({"inputs": [[1.0]], "targets": [[0.0]], "init": {"hidden": 0}}, 422, "init.hidden", "≥ 1"),
    ({"inputs": [[1.0]], "targets": [[0.0]], "init": {"hidden": 2, "sead": 1}}, 422, "init.sead", "unknown field"),
    ([1, 2], 422, "body", "expected a JSON object, got an array of 2"),
    # numbers that fit JSON but not the computation (were 500s)
    (small(truncation=1e20), 422, "truncation", "≤ 1024"),
    (small(truncation=18446744073709551616), 422, "truncation", "≤ 1024"),
    (small(clip={"max_norm": 10**309}), 422, "clip.max_norm", "a finite number > 0"),
    ({"inputs": [[1.0]], "targets": [[0.0]], "init": {"hidden": 2, "scale": 1e308}}, 422, "init.scale", "≤ 1e+300"),
    ({"loss": "softmax_ce", "inputs": [[[1.0], [0.5], [0.2]]], "init": {"hidden": 2}, "targets": [[1.0, 0.0, 1.0]]},
     422, "init.outputs", "class-index"),
    (small(params={**small()["params"], "W_hh": [[[0.1]] * 4] * 4}), 422, "params.W_hh[0][0]", "expected a number, got an array of 1"),
    ({"inputs": [[[1.0]] * 1024] * 5, "targets": [[[0.0]] * 1024] * 5, "init": {"hidden": 1}}, 422, "inputs", "BPTT_MAX_NORM_FLOATS"),
]


@pytest.mark.parametrize("body,status,field,fragment", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_4xx_naming_the_field(client, body, status, field, fragment):
    r = client.post("/api/v1/bptt", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field, err
    assert fragment in err["message"], err["message"]
    assert set(err) == {"status", "code", "params", "field", "expected", "got", "message"}
    assert err["expected"] and err["got"], err  # what was expected and what came, as fields too


@pytest.mark.parametrize("text,field,fragment", [
    ('{"inputs": [[NaN]], "targets": [[0]], "init": {"hidden": 2}}', "inputs[0][0]", "expected a finite number, got NaN"),
    ('{"inputs": [[Infinity]], "targets": [[0]], "init": {"hidden": 2}}', "inputs[0][0]", "Infinity"),
    ('{"inputs": [[1e400]], "targets": [[0]], "init": {"hidden": 2}}', "inputs[0][0]", "got 1e400"),
    ('{"inputs": [[1]], "targets": [[0]], "init": {"hidden": 2, "scale": -Infinity}}', "init.scale", "-Infinity"),
    ('{"inputs": [[1, 2]', "body", "invalid JSON"),
    ("not json", "body", "invalid JSON"),
    ("", "body", "empty body"),
    ("[" * 100000 + "]" * 100000, "body", ("a JSON object", "depth")),  # refused by the parser or as not an object
], ids=["nan", "infinity", "1e400", "minus-infinity", "truncated", "text", "empty", "deep"])
def test_non_json_and_non_finite_numbers(client, text, field, fragment):
    r = client.post("/api/v1/bptt", content=text.encode(), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    err = r.json()["error"]
    fragments = fragment if isinstance(fragment, tuple) else (fragment,)
    assert err["field"] == field and any(f in err["message"] for f in fragments), err


def test_limits_come_from_settings_and_are_named():
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    s = Settings(max_t=5, max_m=3, max_body_bytes=2048, max_work=1e5)
    with TestClient(create_app(s)) as c:
        r = c.post("/api/v1/bptt", json={"inputs": [[1.0]] * 6, "targets": [[0.0]] * 6, "init": {"hidden": 2}})
        assert r.status_code == 422 and "BPTT_MAX_T" in r.json()["error"]["message"]
        r = c.post("/api/v1/bptt", json={"inputs": [[1.0]], "targets": [[0.0]], "init": {"hidden": 10**9}})
        assert r.status_code == 422 and "BPTT_MAX_M" in r.json()["error"]["message"]
        r = c.post("/api/v1/bptt", content=b"[" + b"1," * 2000 + b"1]", headers={"content-type": "application/json"})
        assert r.status_code == 413 and "BPTT_MAX_BODY_BYTES" in r.json()["error"]["message"]
    with TestClient(create_app(Settings(max_work=1e4))) as c:
        r = c.post("/api/v1/bptt", json={"inputs": [[1.0]] * 50, "targets": [[0.0]] * 50, "init": {"hidden": 3}})
        assert r.status_code == 422 and "BPTT_MAX_WORK" in r.json()["error"]["message"]


def test_unknown_routes_and_methods_use_the_error_shape(client):
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] | {"message": None} == {
        "status": 404, "code": "not_found", "params": {}, "field": "path",
        "expected": "a route of this app (listed at /docs)", "got": "/api/v1/nothing", "message": None}
    r = client.get("/api/v1/bptt")
    assert r.status_code == 405 and r.json()["error"] | {"message": None} == {
        "status": 405, "code": "method_not_allowed", "params": {}, "field": "method", "expected": "POST",
        "got": "GET", "message": None}


@pytest.mark.parametrize("text,field", [
    (r'{"notation": "\ud800"}', "notation"),
    (r'{"inputs": [[1.0], ["\udfff"]], "targets": [[0.0], [0.0]], "init": {"hidden": 2}}', "inputs[1][0]"),
    (r'{"inputs": [[1.0]], "targets": [[0.0]], "init": {"hidden": 2}, "fields": ["\ud800"]}', "fields[0]"),
    (r'{"\ud800x": 1}', r"\ud800x"),
], ids=["enum", "number", "fields", "key"])
def test_lone_surrogates_are_a_4xx_in_valid_json(client, text, field):
    r"""JSON may escape half a surrogate pair ("\ud800"); orjson refuses the body, the lenient
    read takes it, and the error (which quotes it, as the text \ud800) must still be UTF-8 JSON."""
    r = client.post("/api/v1/bptt", content=text.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    err = orjson.loads(r.content)["error"]  # orjson refuses what UTF-8 cannot hold
    assert err["field"] == field, err
    assert r"\ud800" in err["message"] or r"\udfff" in err["message"], err


def test_a_defect_is_a_500_in_the_error_shape(monkeypatch):
    """Never expected; if it happens, the client still gets the one error shape as JSON."""
    from fastapi.testclient import TestClient

    from app.api import routes
    from app.main import create_app

    def broken(parsed):
        raise RuntimeError("a bug")

    monkeypatch.setattr(routes, "_run", broken)
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        r = c.post("/api/v1/bptt", json=small())
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["status"] == 500 and "bug" in r.json()["error"]["message"]


def test_openapi_documents_the_request_with_examples(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/bptt"]["post"]["requestBody"]["content"]["application/json"]
    assert "note-003" in body["examples"]
    assert "BPTTRequest" in spec["components"]["schemas"]
    d = client.post("/api/v1/bptt", json=body["examples"]["fields"]["value"]).json()
    assert set(d) == HEADER | {"delta", "grads"}
    assert client.get("/docs").status_code == 200


def test_health_and_version(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/version").json()["api"] == "v1"


def test_loss_steps_mask_all_false_is_a_zero_loss(client):
    d = client.post("/api/v1/bptt", json=small(loss_steps=[False] * 3, reduction="mean")).json()
    assert d["forward"]["loss"] == 0.0 and not math.isnan(d["grads"]["W_hh"][0][0])


def test_clipping_by_norm_counts_pytorchs_two_biases(client):
    """torch.nn.utils.clip_grad_norm_ runs over every parameter tensor: both biases count."""
    req = client.get("/api/v1/presets/pytorch-rnn").json()
    raw = client.post("/api/v1/bptt", json=req).json()["grads"]
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    norm = float(np.sqrt(sum((np.array(raw[k]) ** 2).sum() for k in names)))
    d = client.post("/api/v1/bptt", json={**req, "clip": {"max_norm": norm / 3}}).json()
    assert d["clip"]["norm_before"] == pytest.approx(norm, rel=1e-12)
    after = float(np.sqrt(sum((np.array(d["grads"][k]) ** 2).sum() for k in names)))
    assert after == pytest.approx(norm / 3, rel=1e-12) == pytest.approx(d["clip"]["norm_after"], rel=1e-12)


def test_overflow_in_full_detail_flags_the_delta_table(client):
    body = {"activation": "identity", "inputs": [[1.0]] * 60, "targets": [[0.0]] * 60,
            "params": {"W_xh": [[1.0]], "W_hh": [[1e7]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}}
    r = client.post("/api/v1/bptt", json=body)
    d = strict_json(r.text)
    assert d["detail"] == "full" and {"delta", "delta_norm", "grads_per_step.W_hh"} <= set(d["nonfinite"])
    assert d["delta"][59][0] == [None] and d["delta"][0][0][0] is not None


HEADER = {"version", "notation", "names", "cell", "method", "activation", "loss", "reduction", "loss_steps",
          "truncation", "detail", "warnings", "shapes", "nonfinite"}


def test_fields_choose_what_is_computed_and_sent(client):
    full = client.post("/api/v1/bptt", json=small()).json()
    d = client.post("/api/v1/bptt", json=small(fields=["delta", "grads"])).json()
    assert set(d) == HEADER | {"delta", "grads"}
    assert d["delta"] == full["delta"] and d["grads"] == full["grads"]
    d = client.post("/api/v1/bptt", json=small(fields=["delta_norm", "dz", "diagnostics"])).json()
    assert set(d) == HEADER | {"delta_norm", "dz", "diagnostics"}
    assert d["delta_norm"] == full["delta_norm"] and d["diagnostics"] == full["diagnostics"]
    assert set(client.post("/api/v1/bptt", json=small(fields=[])).json()) == HEADER
    # the gradient check's report comes whenever the check is asked for
    d = client.post("/api/v1/bptt", json=small(fields=["grads"], gradient_check=True)).json()
    assert set(d) == HEADER | {"grads", "gradient_check"} and d["gradient_check"]["ok"]


def test_fields_leave_out_the_work_they_do_not_need(client):
    from app.api.parse import parse
    from app.engine import run
    from app.settings import Settings

    s = Settings(max_full_floats=50)  # the δ table of small() holds 24 numbers, its per-step gradients 75
    r = run(parse(small(fields=["delta", "grads"]), s).problem)
    assert r.problem.detail == "full" and r.table.delta is not None
    assert r.per_step is None and r.diagnostics is None and r.table.delta_norm is None
    r = run(parse(small(fields=["grads_per_step"]), Settings()).problem)
    assert r.per_step is not None and r.diagnostics is None
    p = parse(small(fields=["grads", "dz"]), Settings()).problem
    assert not p.keeps_table and run(p).table.delta is None
    # the budget counts what is asked for: per-step gradients alone are over it, the table is not
    assert parse(small(fields=["grads_per_step"]), s).problem.detail == "norms"


def test_overflow_outside_the_fields_sent_is_still_said(client):
    body = client.get("/api/v1/presets/overflow").json() | {"fields": ["params"]}
    d = strict_json(client.post("/api/v1/bptt", json=body).text)
    assert d["nonfinite"] == [] and any("overflow" in w and "not asked for" in w for w in d["warnings"])


def test_nonfinite_lists_the_fields_sent(client):
    body = client.get("/api/v1/presets/overflow").json() | {"fields": ["grads"]}
    d = strict_json(client.post("/api/v1/bptt", json=body).text)
    assert "grads.W_hh" in d["nonfinite"] and not any(p.startswith("forward") for p in d["nonfinite"])
    assert any("overflow" in w for w in d["warnings"])


def test_null_is_not_given_for_params_init_targets_and_upstream(client):
    """null means "not given" here as for h0, clip, truncation, detail and fields."""
    want = client.post("/api/v1/bptt", json=small()).json()["grads"]
    for extra in ({"upstream": None}, {"init": None}):
        assert client.post("/api/v1/bptt", json=small(**extra)).json()["grads"] == want
    up = {"loss": "upstream", "upstream": [[1.0, 0.0, 0.0, 0.0]] * 3, "init": {"seed": 0, "hidden": 4}}
    want = client.post("/api/v1/bptt", json=small(params=None, targets=None) | up).json()["grads"]
    body = small(**up)
    del body["params"], body["targets"]
    assert client.post("/api/v1/bptt", json=body).json()["grads"] == want


def test_a_compressed_body_is_415_naming_the_coding(client):
    import gzip

    raw = orjson.dumps(small())
    for coding, body in (("gzip", gzip.compress(raw)), ("br", raw)):
        r = client.post("/api/v1/bptt", content=body, headers={"content-type": "application/json",
                                                               "content-encoding": coding})
        err = r.json()["error"]
        assert r.status_code == 415 and err["field"] == "content-encoding" and coding in err["got"], err
    r = client.post("/api/v1/bptt", content=raw, headers={"content-type": "application/json", "content-encoding": "identity"})
    assert r.status_code == 200


def test_fields_delta_over_the_budget_sends_its_norms():
    """Asked for delta alone and answered with norms (over BPTT_MAX_FULL_FLOATS), the response
    carries delta_norm in its place, not a response with no numbers at all."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(max_full_floats=10))) as c:
        d = c.post("/api/v1/bptt", json=small(fields=["delta"])).json()
        assert d["detail"] == "norms" and d["delta"] is None and len(d["delta_norm"]) == 3
        assert any("delta_norm is sent in its place" in w for w in d["warnings"]), d["warnings"]
        d = c.post("/api/v1/bptt", json=small(fields=["grads"])).json()
        assert "delta_norm" not in d and not any("in its place" in w for w in d["warnings"])


def test_requests_whose_gradients_are_all_zero_say_why(client):
    d = client.post("/api/v1/bptt", json=small(loss_steps=[False] * 3, reduction="mean")).json()
    assert d["forward"]["loss"] == 0 and any("no step carries a loss" in w for w in d["warnings"])
    assert not any(map(math.isnan, np.ravel(d["grads"]["W_hh"])))
    d = client.post("/api/v1/bptt", json=small(loss="softmax_ce", targets=[0, 0, 0])).json()
    assert np.all(np.array(d["grads"]["W_hh"]) == 0) and any("p = 1" in w for w in d["warnings"])
    d = client.post("/api/v1/bptt", json=small()).json()
    assert d["warnings"] == []


@pytest.mark.parametrize("shape", [(9, 3, 5, 2, None), (7, 2, 1, 1, 3), (6, 2, 4, 3, 2)], ids=["one", "m=1,B=3", "B=2"])
def test_a_field_alone_is_the_same_bits_as_in_the_whole_response(client, shape):
    """Choosing fields chooses what is computed (the δ table kept or not, norms, per-step
    gradients), never the arithmetic: each field asked for alone is bit for bit the field of
    the whole response, for both cells, truncated or not, clipped or not, in either detail."""
    T, n, m, p, B = shape
    rng = np.random.default_rng(sum(shape[:4]))
    lead = () if B is None else (B,)
    s = 0.9
    base = {
        "inputs": rng.standard_normal(lead + (T, n)).tolist(), "targets": rng.standard_normal(lead + (T, p)).tolist(),
        "params": {"W_xh": rng.uniform(-s, s, (m, n)).tolist(), "W_hh": rng.uniform(-s, s, (m, m)).tolist(),
                   "b_h": rng.uniform(-s, s, m).tolist(), "W_hy": rng.uniform(-s, s, (p, m)).tolist(),
                   "b_y": rng.uniform(-s, s, p).tolist()},
    }
    checked = 0
    for cell, truncation, detail, clip in itertools.product(
            ("vanilla", "residual"), (None, 3), ("full", "norms"), (None, {"max_norm": 0.5})):
        body = base | {"cell": cell, "truncation": truncation, "detail": detail, "clip": clip,
                       "select": {"t": T - 1, "k": 1, "b": 0 if B is None else B - 1}}  # backward_parts
        J = {"content-type": "application/json"}
        whole = client.post("/api/v1/bptt", content=orjson.dumps(body), headers=J).json()
        # the fields sent only when named: against a response that names every field
        every = client.post("/api/v1/bptt", content=orjson.dumps(body | {"fields": list(RESPONSE_FIELDS)}), headers=J).json()
        # (the dh_next pass runs the generic δ loop, whose dz differs from the fast loop's in the
        # last bit: the fields formed from dz are compared with every field but it; the ε tables
        # and their norms come from the fast loop too, so they are compared with the fast fields)
        eps_tables = ("dh_next_pass", "delta_h_row", "delta_row")  # (and the rows: the generic loop)
        every_fast = client.post("/api/v1/bptt", content=orjson.dumps(
            body | {"fields": [f for f in RESPONSE_FIELDS if f not in eps_tables]}), headers=J).json()
        for field in RESPONSE_FIELDS:
            alone = client.post("/api/v1/bptt", content=orjson.dumps(body | {"fields": [field]}), headers=J).json()
            want = (every if field in eps_tables else every_fast) if field in OPT_IN_FIELDS else whole
            assert alone[field] == want[field], (cell, truncation, detail, clip, field)
            checked += want[field] is not None
    assert checked > 150  # the fields compared were there, not null on both sides
