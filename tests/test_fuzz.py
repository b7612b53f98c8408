"""Generated bodies never produce a 5xx, an invalid JSON answer, or a hang."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-3, 3), st.booleans(),
    st.none(), st.text(max_size=3), st.sampled_from(["\ud800", "x\udfff"]),  # lone surrogates: JSON escapes them
)
arrays = st.recursive(numbers, lambda c: st.lists(c, max_size=4), max_leaves=24)
fields = {
    "notation": st.sampled_from(["canonical", "nndl", "pytorch", "coursera", "goodfellow", "x"]),
    "cell": st.sampled_from(["vanilla", "residual", "lstm"]),
    "activation": st.sampled_from(["tanh", "sigmoid", "relu", "identity", 1]),
    "loss": st.sampled_from(["mse", "softmax_ce", "upstream", None]),
    "inputs": arrays,
    "targets": arrays,
    "upstream": arrays,
    "h0": arrays,
    "params": st.one_of(arrays, st.dictionaries(st.sampled_from(["W_xh", "W_hh", "b_h", "W_hy", "b_y", "U"]), arrays)),
    "init": st.one_of(arrays, st.fixed_dictionaries({}, optional={
        "seed": st.integers(-2, 5), "hidden": st.integers(-1, 4), "outputs": st.integers(-1, 3),
        "scale": st.one_of(st.floats(-1, 2), st.none())})),
    "loss_steps": st.one_of(st.sampled_from(["all", "last"]), st.lists(st.booleans(), max_size=4), arrays),
    "reduction": st.sampled_from(["sum", "mean", 3]),
    "truncation": st.one_of(st.none(), st.integers(-1, 4), st.floats(-1, 3)),
    "clip": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"max_norm": st.floats(-1, 2), "max_value": numbers})),
    "gradient_check": st.one_of(st.booleans(), numbers),
    "detail": st.sampled_from(["full", "norms", None, "x"]),
    "fields": st.one_of(st.none(), st.lists(st.sampled_from(["delta", "grads", "forward", "x"]), max_size=3), numbers),
}
bodies = st.fixed_dictionaries({}, optional=fields)

# A well-formed skeleton with random values in it, so that generated bodies also reach the engine.
wellformed = st.integers(1, 4).flatmap(lambda T: st.integers(1, 3).flatmap(lambda m: st.fixed_dictionaries({
    "inputs": st.lists(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2), min_size=T, max_size=T),
    "targets": st.lists(st.lists(st.floats(-10, 10), min_size=1, max_size=1), min_size=T, max_size=T),
    "init": st.fixed_dictionaries({"seed": st.integers(0, 9), "hidden": st.just(m), "scale": st.floats(0.01, 50)}),
    "cell": st.sampled_from(["vanilla", "residual"]),
    "activation": st.sampled_from(["tanh", "sigmoid", "relu", "identity"]),
    "loss_steps": st.one_of(st.just("all"), st.just("last"), st.lists(st.booleans(), min_size=T, max_size=T)),
    "truncation": st.one_of(st.none(), st.integers(1, 5)),
    "gradient_check": st.booleans(),
    "reduction": st.sampled_from(["sum", "mean"]),
})))


def _check(client, body):
    # ensure_ascii: strings go as \uXXXX escapes, so lone surrogates can be sent at all
    r = client.post("/api/v1/bptt", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code < 500
    orjson.loads(r.content)  # strict: refuses NaN / Infinity tokens and what is not UTF-8
    if r.status_code != 200:
        err = r.json()["error"]
        assert err["message"] and err["status"] == r.status_code
    return r


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_random_bodies_get_a_4xx_or_a_200(client, body):
    _check(client, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=wellformed)
def test_wellformed_bodies_compute(client, body):
    r = _check(client, body)
    assert r.status_code == 200, r.text


@settings(max_examples=3000, deadline=None)
@given(v=st.lists(arrays, max_size=4), depth=st.integers(1, 4))
def test_the_fast_shape_of_float_lists_agrees_with_the_walk(v, depth):
    """parse._float_shape (the C-speed path) answers only for rectangular lists of floats, and
    then with the shape _walk finds."""
    from app.api.parse import _float_shape, _walk

    fast = _float_shape(v, depth)
    if fast is None:
        return
    assert fast == _walk(v, "x", (), depth)


@settings(max_examples=500, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), odd=st.sampled_from([1, True, None, "1", [1.0]]),
       data=st.data())
def test_the_fast_shape_reads_float_arrays_and_leaves_anything_else_to_the_walk(shape, odd, data):
    import numpy as np

    from app.api.parse import _float_shape

    a = np.arange(float(np.prod(shape))).reshape(shape)
    assert _float_shape(a.tolist(), len(shape)) == tuple(shape)
    assert _float_shape(a.tolist(), len(shape) - 1 or 1) is None or len(shape) == 1  # too deep
    spoilt = a.tolist()
    row = spoilt
    for n in shape[:-1]:
        row = row[data.draw(st.integers(0, n - 1))]
    row[data.draw(st.integers(0, shape[-1] - 1))] = odd
    # an integer is a number, as _walk reads it (class indices, or 1 written without a point)
    assert _float_shape(spoilt, len(shape)) == (tuple(shape) if odd == 1 and odd is not True else None)
    row[0] = 10**309  # beyond float64: left to the walk, which names it
    assert _float_shape(spoilt, len(shape)) is None
