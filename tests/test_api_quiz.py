"""POST /api/v1/check-answer: the quiz's number is /bptt's own, compared to the stated tolerance,
and never sent before the student answered right or asked for it."""

from __future__ import annotations

import pytest

from app.engine.answer import ABS_TOL, REL_TOL, is_close

NOTE_003 = {"inputs": [[1.0], [2.0], [3.0]], "targets": [[0.5], [0.8], [0.9]], "h0": [0.0],
            "params": {"W_xh": [[0.5]], "W_hh": [[0.8]], "b_h": [0.0], "W_hy": [[1.0]], "b_y": [0.0]}}


def small(**over):
    body = {
        "inputs": [[1.0, 0.0], [0.5, -1.0], [0.0, 2.0], [1.0, 1.0]],
        "targets": [[0.1], [0.2], [0.3], [-0.4]],
        "init": {"seed": 3, "hidden": 3, "outputs": 1, "scale": 1.2},
    }
    return body | over


def test_the_tolerance_is_absolute_1e_4_or_relative_1e_3():
    assert (ABS_TOL, REL_TOL) == (1e-4, 1e-3)
    assert is_close(-0.3149, -0.314925) and is_close(11.26, 11.2641044965)  # four significant digits
    assert is_close(0.0012, 0.001234) and not is_close(0.0012, 0.00135)     # four decimals near 0
    assert not is_close(0.3149, -0.314925)                                  # a sign error
    assert not is_close(11.2, 11.2641) and not is_close(-0.3139, -0.314925)
    assert not is_close(1.0, float("inf")) and not is_close(float("nan"), 1.0)


def check(client, **body):
    r = client.post("/api/v1/check-answer", json=body)
    return r.status_code, r.json()


@pytest.mark.parametrize("request_body, ask, pick", [
    (NOTE_003, "delta[2][1][0]", lambda d: d["delta"][2][1][0]),
    (small(), "delta[3][0][2]", lambda d: d["delta"][3][0][2]),
    (small(), "grads.W_hh[1][2]", lambda d: d["grads"]["W_hh"][1][2]),
    (small(notation="nndl"), "grads.U[0][1]", lambda d: d["grads"]["U"][0][1]),  # U is NNDL's W_hh
    (small(notation="pytorch"), "grads.linear.weight[0][2]", lambda d: d["grads"]["linear.weight"][0][2]),
    (small(inputs=[[[1.0, 0.0], [0.5, 1.0]], [[0.0, 1.0], [2.0, -1.0]]], targets=[[[0.1], [0.2]], [[0.3], [0.4]]]),
     "delta[1][1][0][2]", lambda d: d["delta"][1][1][0][2]),  # batched: delta[b][t][k][i]
    (small(), "dz[1][0]", lambda d: d["dz"][1][0]),
    (small(clip={"max_norm": 0.01}), "grads.W_xh[2][1]", lambda d: d["grads"]["W_xh"][2][1]),  # after clipping
])
def test_the_value_is_the_bptt_responses_own_number(client, request_body, ask, pick):
    value = pick(client.post("/api/v1/bptt", json=request_body).json())
    status, out = check(client, request=request_body, ask=ask, answer=value + 0.9 * max(ABS_TOL, REL_TOL * abs(value)))
    assert status == 200 and out["correct"] is True and out["value"] == value, out
    status, out = check(client, request=request_body, ask=ask, answer=value + 3 * ABS_TOL + 2 * REL_TOL * abs(value))
    assert status == 200 and out["correct"] is False and "value" not in out, out   # wrong: not told the number
    status, out = check(client, request=request_body, ask=ask, reveal=True)
    assert out == {"ask": ask, "correct": None, "tolerance": {"abs": 1e-4, "rel": 1e-3}, "value": value}
    status, out = check(client, request=request_body, ask=ask)
    assert status == 200 and out["correct"] is None and "value" not in out


@pytest.mark.parametrize("body, field, code", [
    ({"request": NOTE_003, "ask": "delta[1][2][0]", "answer": 1}, "ask", "out_of_range"),  # k > t
    ({"request": NOTE_003, "ask": "delta[2][1]", "answer": 1}, "ask", "wrong_shape"),     # a vector, not a number
    ({"request": NOTE_003, "ask": "grads.U[0][0]", "answer": 1}, "ask", "unknown_field"),  # U is not canonical
    ({"request": NOTE_003, "ask": "nope[0]", "answer": 1}, "ask", "invalid_value"),
    ({"request": NOTE_003, "ask": 3, "answer": 1}, "ask", "invalid_value"),
    ({"request": NOTE_003, "ask": "delta[0][0][0]", "answer": "0.5"}, "answer", "wrong_type"),
    ({"request": NOTE_003, "ask": "delta[0][0][0]", "reveal": "yes"}, "reveal", "wrong_type"),
    ({"request": NOTE_003 | {"inputs": "x"}, "ask": "delta[0][0][0]"}, "request.inputs", "wrong_type"),
    ({"request": NOTE_003 | {"detail": "norms"}, "ask": "delta[0][0][0]"}, "ask", "wrong_shape"),
    ({"request": [], "ask": "delta[0][0][0]"}, "request", "wrong_type"),
    ({"ask": "delta[0][0][0]"}, "request", "missing"),
    ({"request": NOTE_003, "ask": "delta[0][0][0]", "answr": 1}, "answr", "unknown_field"),
])
def test_bad_questions_are_refused_naming_the_field(client, body, field, code):
    status, out = check(client, **body)
    assert status == 422 and out["error"]["field"] == field and out["error"]["code"] == code, out


def test_a_model_over_the_limits_is_refused_before_the_work(client):
    body = {"inputs": [[0.0]] * 5000, "targets": [[0.0]] * 5000, "init": {"seed": 0, "hidden": 2}}
    status, out = check(client, request=body, ask="delta[0][0][0]", answer=0)
    assert status == 422 and out["error"]["code"] == "over_limit" and out["error"]["field"] == "request.inputs", out
    assert out["error"]["params"]["setting"] == "BPTT_MAX_T"


def test_a_path_to_a_boolean_says_it_is_one(client):
    """gradient_check.ok is true: the refusal said "got null" (found by a student-attack helper)."""
    status, out = check(client, request=NOTE_003 | {"gradient_check": True}, ask="gradient_check.ok")
    assert status == 422 and out["error"]["code"] == "wrong_shape", out
    assert out["error"]["got"] == "gradient_check.ok: the boolean true", out
