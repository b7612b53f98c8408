"""Large responses are written in pieces (app/api/stream.py) that join to exactly the bytes of
one orjson call on the whole document, and go through the API bit for bit the same."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings as hsettings, strategies as st

from app.api import respond, stream
from app.api.parse import decode, parse
from app.engine import run
from app.main import create_app
from app.settings import Settings


def document(body: dict) -> dict:
    parsed = parse(decode(orjson.dumps(body)), Settings())
    return respond.build(run(parsed.problem), parsed)


def bodies():
    rng = np.random.default_rng(5)
    for B, T, n, m, p, extra in [
        (None, 7, 3, 4, 2, {}), (3, 9, 2, 5, 3, {}), (2, 12, 1, 1, 2, {"truncation": 3, "clip": {"max_norm": 0.1}}),
        (1, 6, 2, 3, 2, {"detail": "norms", "fields": ["delta", "grads"]}), (2, 5, 2, 2, 2, {"notation": "pytorch"}),
        (2, 8, 2, 3, 2, {"gradient_check": True}),
    ]:
        lead = () if B is None else (B,)
        yield {"inputs": rng.standard_normal(lead + (T, n)).tolist(), "targets": rng.standard_normal(lead + (T, p)).tolist(),
               "init": {"seed": 3, "hidden": m, "outputs": p}} | extra
    # overflow: nulls in arrays, nonfinite, warnings
    yield {"inputs": [[1.0], [1.0]] * 20, "targets": [[0.0]] * 40, "init": {"seed": 0, "hidden": 3, "scale": 1e200}}


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 1000, stream.PIECE_NUMBERS])
@pytest.mark.parametrize("chunk", [1, 100, stream.CHUNK_BYTES])
def test_pieces_join_to_the_bytes_of_one_call(piece, chunk):
    for body in bodies():
        doc = document(body)
        whole = respond.dumps(doc)
        assert b"".join(stream.chunks(doc, chunk=chunk, piece=piece)) == whole


@hsettings(max_examples=200, deadline=None)
@given(st.recursive(
    st.one_of(st.floats(allow_nan=True), st.integers(-10**6, 10**6), st.booleans(), st.none(), st.text(max_size=5),
              st.builds(lambda s, seed: np.random.default_rng(seed).standard_normal(s),
                        st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple), st.integers(0, 9))),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
    max_leaves=30,
), st.integers(1, 9))
def test_pieces_join_to_the_bytes_of_one_call_for_any_document(doc, piece):
    assert b"".join(stream.pieces(doc, piece)) == respond.dumps(doc)


def test_no_piece_writes_more_than_its_share():
    """Each orjson call writes at most piece numbers (one 1-D row at most): no long GIL hold."""
    doc = document(next(bodies()) | {"inputs": np.ones((4, 64, 3)).tolist(), "targets": np.zeros((4, 64, 2)).tolist()})
    parts = list(stream.pieces(doc, 50))
    assert max(p.count(b",") for p in parts) <= 50 + 2
    assert len(parts) > 100


def test_streamed_responses_are_the_same_bits(monkeypatch):
    """Through the API, with every request made large (streamed in pieces, or written whole in
    the worker thread and sent in chunks): the same bytes as the inline answer."""
    import app.api.routes as routes

    bs = list(bodies())
    with TestClient(create_app(Settings())) as c:
        inline = [c.post("/api/v1/bptt", json=b) for b in bs]
        monkeypatch.setattr(routes, "INLINE_WORK", -1)
        sent_whole = [c.post("/api/v1/bptt", json=b) for b in bs]
        monkeypatch.setattr(routes, "STREAM_RESPONSE_BYTES", -1)
        monkeypatch.setattr(stream, "PIECE_NUMBERS", 5)
        monkeypatch.setattr(stream, "CHUNK_BYTES", 300)
        streamed = [c.post("/api/v1/bptt", json=b) for b in bs]
        assert routes.gate(c.app).active == 0  # every slot given back
    for a, b, d in zip(inline, sent_whole, streamed):
        assert a.status_code == b.status_code == d.status_code == 200
        assert a.content == b.content == d.content
        assert "content-length" in a.headers and "content-length" in b.headers
        assert d.headers.get("transfer-encoding") == "chunked" or "content-length" not in d.headers
        assert d.headers["content-type"] == "application/json"


def test_large_bodies_parsed_in_their_own_process_answer_the_same(monkeypatch):
    """A body over INLINE_BODY_BYTES is parsed in the heavy request's process (app/api/heavy.py):
    the same bits as parsed on the event loop, and its errors in the one shape, naming the same field."""
    import app.api.routes as routes
    from app.api import heavy

    rng = np.random.default_rng(4)
    T, n = 400, 200
    X = rng.standard_normal((T, n)).tolist()
    body = {"inputs": X, "targets": rng.standard_normal((T, 1)).tolist(), "init": {"seed": 0, "hidden": 2},
            "fields": ["grads", "dz"]}
    bad = body | {"inputs": X[:-1] + [X[-1][:-1]]}  # the last row one number short
    data = [orjson.dumps(body), orjson.dumps(bad)]
    assert len(data[0]) > routes.INLINE_BODY_BYTES
    commands = []
    real = heavy.Worker.call

    async def recording(self, *msg):
        commands.append(msg[0])
        return await real(self, *msg)

    monkeypatch.setattr(heavy.Worker, "call", recording)
    with TestClient(create_app(Settings())) as c:
        there = [c.post("/api/v1/bptt", content=d, headers={"content-type": "application/json"}) for d in data]
        assert commands == ["parse", "respond", "parse"] and heavy.processes()  # the process was used
        monkeypatch.setattr(routes, "INLINE_BODY_BYTES", 10**9)
        here = [c.post("/api/v1/bptt", content=d, headers={"content-type": "application/json"}) for d in data]
    assert there[0].status_code == here[0].status_code == 200
    assert there[0].content == here[0].content
    assert there[1].status_code == here[1].status_code == 422
    assert there[1].json() == here[1].json() and there[1].json()["error"]["field"] == "inputs"


def _record_where_computed(monkeypatch) -> tuple[list, list]:
    """(the commands sent to the heavy processes, a 1 per run computed in this process), as they come."""
    import app.api.routes as routes
    from app.api import heavy

    commands, here = [], []
    real, real_run = heavy.Worker.call, routes.run

    async def recording(self, *msg):
        commands.append(msg[0])
        return await real(self, *msg)

    monkeypatch.setattr(heavy.Worker, "call", recording)
    monkeypatch.setattr(routes, "run", lambda problem: here.append(1) or real_run(problem))
    return commands, here


def test_a_small_body_with_a_large_answer_is_not_computed_on_the_event_loop(monkeypatch):
    """The issue's 16 KB body asking for B=1, T=830, m=1 (a 23 MB answer, little work) ran on
    the event loop and blocked it ~85 ms: inline is decided by the answer's size too. Heavy
    requests are computed and written in the slot's process, not in this one (the GIL)."""
    import app.api.routes as routes

    commands, here = _record_where_computed(monkeypatch)
    # (two sequences: one of T=830 is now heavy by its work too, each step's numpy calls counted)
    body = {"inputs": [[[0.5]] * 150] * 2, "targets": [[[0.1]] * 150] * 2, "init": {"seed": 0, "hidden": 1}}
    data = orjson.dumps(body)
    assert len(data) < 32 * 1024
    parsed = parse(decode(data), Settings())
    assert parsed.work <= routes.INLINE_WORK and parsed.response_bytes > routes.STREAM_RESPONSE_BYTES
    with TestClient(create_app(Settings())) as c:
        r = c.post("/api/v1/bptt", content=data, headers={"content-type": "application/json"})
        assert r.status_code == 200 and len(r.content) > 1.5e6  # (estimated 2.1 MB: above the bound)
        assert commands[0] == "respond" and set(commands[1:]) == {"next"}  # there, sent in pieces
        assert here == [] and "first chunk" in r.headers["server-timing"]
        commands.clear()
        assert c.post("/api/v1/bptt", json=CLASSROOM_LIKE).status_code == 200
        assert commands == [] and here == [1]  # a classroom request stays on the loop


def test_a_long_small_gated_request_is_not_light(monkeypatch):
    """An LSTM or GRU of m=1 over T=450 (5 KB of body, fields grads) was priced at 7–9e6, under
    INLINE_WORK, and held the event loop 24–32 ms (35–200 ms under load): each step of the loops
    costs its numpy calls whatever the sizes, and the estimate now counts them (STEP_WORK). It is
    computed in the slot's process; the classroom's LSTM (T=10) stays light."""
    import app.api.routes as routes

    commands, here = _record_where_computed(monkeypatch)
    with TestClient(create_app(Settings())) as c:
        for cell in ("lstm", "gru"):
            body = {"cell": cell, "inputs": [[0.1]] * 450, "targets": [[0.1]] * 450, "init": {"seed": 0, "hidden": 1},
                    "fields": ["grads"]}
            assert parse(decode(orjson.dumps(body)), Settings()).work > routes.INLINE_WORK
            r = c.post("/api/v1/bptt", json=body)
            assert r.status_code == 200 and commands == ["respond"] and here == [], (cell, commands, here)
            commands.clear()
            small = {**CLASSROOM_LIKE, "cell": cell}
            assert c.post("/api/v1/bptt", json=small).status_code == 200
            assert commands == [] and here == [1], (cell, commands, here)  # on the loop
            here.clear()


CLASSROOM_LIKE = {"inputs": [[0.1, -0.2]] * 10, "targets": [[0.5]] * 10, "init": {"seed": 1, "hidden": 4}}


def test_heavy_quiz_answers_give_their_process_back():
    """check-answer took a slot with its process and gave back the slot without it: the next
    heavy /bptt started a new process, and 8 rounds left one worker with 13 (+700 MB; found by
    a student-attack helper). Alternating heavy quiz answers and heavy requests make no new ones."""
    from app.api import heavy

    q = {"request": {"cell": "lstm", "inputs": [[0.1]] * 700, "targets": [[0.1]] * 700, "init": {"seed": 0, "hidden": 3},
                     "gradient_check": True}, "ask": "grads.W_hh[0][0]", "reveal": True}
    b = {"inputs": [[0.1]] * 1024, "targets": [[0.1]] * 1024, "init": {"seed": 0, "hidden": 8}, "fields": ["delta_norm"]}
    with TestClient(create_app(Settings())) as c:
        assert c.post("/api/v1/check-answer", json=q).status_code == 200
        assert c.post("/api/v1/bptt", json=b).status_code == 200
        made = len(heavy._every)
        for _ in range(3):
            assert c.post("/api/v1/check-answer", json=q).status_code == 200
            assert c.post("/api/v1/bptt", json=b).status_code == 200
        assert len(heavy._every) == made
