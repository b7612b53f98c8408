"""The JSON routes besides /bptt that compute (compare-cells, radius-sweep, check-answer,
compare-gradients) are held to what /bptt is: their work estimated from the sizes and checked
against BPTT_MAX_WORK before any of it, charged to the client's work budget, and above
classroom size computed in one of the worker's heavy slots (BPTT_MAX_CONCURRENT, 503 with
Retry-After), in the slot's own process (app/api/heavy.py, ``routes.planned_response``)."""

from __future__ import annotations

import threading

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from app.api import heavy, labs, quiz, train
from app.main import create_app
from app.settings import Settings
from server import running_server

#: about 2 s of work each on this machine (1 BLAS thread), estimated 2.1e10 and 2.8e10
T_BIG, M_BIG = 700, 64
SEQ_BIG = {"inputs": [[0.5]] * T_BIG, "targets": [[0.1]] * T_BIG, "init": {"seed": 0, "hidden": M_BIG}}
SEQ_SMALL = {"inputs": [[0.5], [-0.2], [0.1]], "targets": [[0.1], [0.0], [0.2]], "init": {"seed": 0, "hidden": 3}}
HEAVY = {
    "compare-cells": SEQ_BIG,
    "radius-sweep": SEQ_BIG | {"radii": [0.5, 1.0, 1.5, 2.0]},
    "task": {"task": {"name": "sum", "N": 64, "T": 1024, "n": 60}},  # 153 MB of JSON, ~1.2 s
}
#: a radius sweep whose /bptt runs are tiny (T = 1) and whose eigenvalues are not: 13 of an
#: m = 256 W_hh, ~0.3 s, estimated 4.4e9 (the runs' own estimate: 2e6)
EIGEN_HEAVY = {"inputs": [[0.5]], "targets": [[0.1]], "init": {"seed": 0, "hidden": 256}, "radii": [1.0] * 12}


PLANS = {"compare-cells": labs.compare_cells_plan, "radius-sweep": labs.radius_sweep_plan,
         "check-answer": quiz.check_plan, "task": train.task_plan}


def _error_shape(r: httpx.Response) -> dict:
    assert r.headers["content-type"] == "application/json", r.headers
    doc = r.json()
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    assert {"field", "expected", "got", "message", "code"} <= set(err), err
    return err


@pytest.fixture(scope="module")
def one_slot():
    env = {"BPTT_MAX_CONCURRENT": "1", "BPTT_QUEUE_TIMEOUT": "0.3", "BPTT_MAX_WORK": "5e10",
           "OPENBLAS_NUM_THREADS": "1"}
    with running_server(env=env) as base:
        yield base


@pytest.mark.parametrize("route", list(HEAVY))
def test_two_heavy_lab_requests_at_once_one_is_answered_503(one_slot, route):
    """compare-cells, radius-sweep and task ran in Starlette's thread pool with no gate: any
    number computed at once. With one slot, the second waits BPTT_QUEUE_TIMEOUT, then 503 +
    Retry-After."""
    got: list[httpx.Response] = []

    def post():
        got.append(httpx.post(f"{one_slot}/api/v1/{route}", json=HEAVY[route], timeout=120))

    threads = [threading.Thread(target=post) for _ in range(3)]  # (three: two may not overlap on a busy machine)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in got)
    assert 200 in codes and 503 in codes and set(codes) == {200, 503}, [(r.status_code, r.text[:200]) for r in got]
    busy = next(r for r in got if r.status_code == 503)
    err = _error_shape(busy)
    assert err["code"] == "busy" and err["params"]["setting"] == "BPTT_MAX_CONCURRENT", err
    assert busy.headers["retry-after"].isdigit() and int(busy.headers["retry-after"]) >= 1
    ok = next(r for r in got if r.status_code == 200)
    doc = orjson.loads(ok.content)
    assert int(ok.headers["content-length"]) == len(ok.content)
    assert doc["T"] == T_BIG if route != "task" else len(doc["inputs"]) == 64


def test_a_lab_request_over_the_work_limit_is_refused_naming_it(one_slot):
    """The radius sweep's eigenvalues (m³ each, 1 + one per radius) were not in its estimate:
    13 eigenvalue problems of m = 256 passed as 2e6 of work. Now counted, and refused above
    BPTT_MAX_WORK before any of it."""
    r = httpx.post(f"{one_slot}/api/v1/radius-sweep", json=EIGEN_HEAVY | {"radii": [1.0] * 12}, timeout=60)
    assert r.status_code == 200, r.text  # 4.4e9 < 5e10
    plan, work = labs.radius_sweep_plan(EIGEN_HEAVY, Settings(max_work=1e12))
    assert work > 13 * 20 * 256**3 > 1e3 * plan["parsed"].work
    with running_server(env={"BPTT_MAX_WORK": "1e9"}) as base:
        r = httpx.post(f"{base}/api/v1/radius-sweep", json=EIGEN_HEAVY, timeout=60)
        err = _error_shape(r)
        assert r.status_code == 422 and err["field"] == "radii" and err["code"] == "over_limit", err
        assert err["params"]["setting"] == "BPTT_MAX_WORK" and "BPTT_MAX_WORK" in err["expected"], err
        # and the cells compared, together
        r = httpx.post(f"{base}/api/v1/compare-cells", json=SEQ_BIG | {"cells": ["vanilla", "gru"]}, timeout=60)
        err = _error_shape(r)
        assert r.status_code == 422 and err["params"]["setting"] == "BPTT_MAX_WORK", err
        # a task's arrays: made and written, ~0.2 µs a number (here 1.05e9 of work, 126 MB)
        r = httpx.post(f"{base}/api/v1/task", json={"task": {"name": "echo", "N": 64, "T": 1024, "n": 40}}, timeout=60)
        err = _error_shape(r)
        assert r.status_code == 422 and err["field"] == "task" and err["params"]["setting"] == "BPTT_MAX_WORK", err


def test_a_task_over_the_response_limit_is_refused_before_it_is_made():
    """POST /api/v1/task had no bound on its answer: echo with N = 64, T = 1024, n = 512 wrote
    810 MB of JSON (sum 1.3 GB, 11 s) in a thread of the worker. Its size is estimated from
    one sequence (T, n, p do not depend on N) and refused above BPTT_MAX_RESPONSE_MB, saying
    how to ask for less; fewer sequences fit."""
    body = {"task": {"name": "sum", "N": 64, "T": 200, "n": 20}}  # ~5.4 MB of JSON
    with running_server(env={"BPTT_MAX_RESPONSE_MB": "5"}) as base:
        r = httpx.post(f"{base}/api/v1/task", json=body, timeout=60)
        err = _error_shape(r)
        assert r.status_code == 422 and err["field"] == "sequences" and err["code"] == "over_limit", err
        assert err["params"]["setting"] == "BPTT_MAX_RESPONSE_MB" and "sequences" in err["message"], err
        r = httpx.post(f"{base}/api/v1/task", json=body | {"sequences": 8}, timeout=60)
        assert r.status_code == 200 and len(r.json()["inputs"]) == 8 and r.json()["options"]["N"] == 64


def test_cells_compared_over_the_response_limit_together_are_refused():
    """Each cell's /bptt request was checked against BPTT_MAX_RESPONSE_MB alone, but
    compare-cells answers all of them: four cells at T = 400 are 8.6 MB (estimated 9.9)."""
    seq = {"inputs": [[0.5]] * 400, "targets": [[0.1]] * 400, "init": {"seed": 0, "hidden": 6}}
    with running_server(env={"BPTT_MAX_RESPONSE_MB": "5"}) as base:
        r = httpx.post(f"{base}/api/v1/compare-cells", json=seq, timeout=60)
        err = _error_shape(r)
        assert r.status_code == 422 and err["field"] == "cells" and err["code"] == "over_limit", err
        assert err["params"]["setting"] == "BPTT_MAX_RESPONSE_MB" and "fewer cells" in err["message"], err
        r = httpx.post(f"{base}/api/v1/compare-cells", json=seq | {"cells": ["vanilla", "gru"]}, timeout=60)
        assert r.status_code == 200 and len(r.content) < 5e6 and set(r.json()["cells"]) == {"vanilla", "gru"}


@pytest.mark.parametrize("route, body", [
    ("compare-cells", SEQ_SMALL),
    ("radius-sweep", SEQ_SMALL | {"radii": [0.5, 1.0]}),
    ("check-answer", {"request": SEQ_SMALL, "ask": "delta_norm[2][1]", "answer": 0.0}),
    ("task", {"task": {"name": "parity", "N": 4}}),
])
def test_the_work_budget_counts_lab_and_quiz_requests(route, body):
    """compare-cells and radius-sweep were never charged to BPTT_RATE_LIMIT_WORK_PER_MINUTE: a
    client could send as many as the request limit allows. Charged their estimated work before
    it: the second of two, with 1.5 requests' work a minute, is refused 429 naming the setting."""
    plan_of = PLANS[route]
    work = plan_of(body, Settings())[1]
    with running_server(env={"BPTT_RATE_LIMIT_WORK_PER_MINUTE": repr(1.5 * work)}) as base:
        first = httpx.post(f"{base}/api/v1/{route}", json=body, timeout=30)
        assert first.status_code == 200, first.text
        r = httpx.post(f"{base}/api/v1/{route}", json=body, timeout=30)
        err = _error_shape(r)
        assert r.status_code == 429 and err["code"] == "rate_limited", err
        assert err["params"]["setting"] == "BPTT_RATE_LIMIT_WORK_PER_MINUTE" and err["params"]["got"] == pytest.approx(work)
        assert int(r.headers["retry-after"]) >= 1


class _Shared:
    """One app (and its heavy processes, spawned once) for the in-process tests."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __enter__(self) -> TestClient:
        return self.client

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture(scope="module")
def app_client():
    with TestClient(create_app(Settings())) as c:
        yield _Shared(c)


def _recording(monkeypatch) -> list[str]:
    commands: list[str] = []
    real = heavy.Worker.call

    async def recording(self, *msg):
        commands.append(msg[0] if msg[0] not in ("plan", "answer") else f"{msg[0]} {msg[1]}")
        return await real(self, *msg)

    monkeypatch.setattr(heavy.Worker, "call", recording)
    return commands


def test_heavy_requests_are_computed_in_the_slots_process_not_a_thread(monkeypatch, app_client):
    """Above classroom size, the labs computed in the worker's thread pool and the quiz in a
    thread of the worker: their numpy and orjson calls held the GIL the event loop needs.
    Now each is computed and written in the heavy slot's process; classroom ones stay here."""
    import app.api.routes as routes

    commands = _recording(monkeypatch)
    med = {"inputs": [[0.5]] * 120, "targets": [[0.1]] * 120, "init": {"seed": 0, "hidden": 16}}
    quiz_body = {"request": med | {"init": {"seed": 0, "hidden": 32}}, "ask": "grads.W_hh[0][1]", "reveal": True}
    with app_client as c:
        for route, body in [("compare-cells", med), ("radius-sweep", med), ("check-answer", quiz_body),
                            ("task", {"task": {"name": "sum", "N": 8, "T": 200, "n": 40}})]:
            work = PLANS[route](body, Settings())[1]
            assert work > routes.INLINE_WORK, (route, work)
            there = c.post(f"/api/v1/{route}", json=body)
            assert there.status_code == 200, there.text
            assert commands == [f"answer {route.replace('-', '_')}"], commands
            commands.clear()
            monkeypatch.setattr(routes, "INLINE_WORK", 1e15)  # the same request in a thread here
            here = c.post(f"/api/v1/{route}", json=body)
            monkeypatch.setattr(routes, "INLINE_WORK", 1e7)
            assert commands == [] and here.content == there.content, route
        assert routes.gate(c.app).active == 0  # every slot given back
        # a classroom question: here, no process
        r = c.post("/api/v1/check-answer", json={"request": SEQ_SMALL, "ask": "delta_norm[2][1]", "answer": 0.0})
        assert r.status_code == 200 and commands == []


def test_a_quiz_question_with_a_large_answer_is_not_computed_in_the_worker(monkeypatch, app_client):
    """Little work, a large field (B=1, T=830, m=1: the ‖δ‖ table's 23 MB, as /bptt's issue
    measured): built in the slot's process, as /bptt decides by the response's size too."""
    commands = _recording(monkeypatch)
    B, T = 32, 100  # (a batch: one sequence of T=830 is now heavy by its work too, each step's numpy calls counted)
    body = {"request": {"inputs": [[[0.5]] * T] * B, "targets": [[[0.1]] * T] * B, "init": {"seed": 0, "hidden": 1}},
            "ask": "delta_norm[31][99][99]", "reveal": True}
    plan, work = quiz.check_plan(body, Settings())
    import app.api.routes as routes

    assert work <= routes.INLINE_WORK and plan.parsed.response_bytes > routes.INLINE_RESPONSE_BYTES
    with app_client as c:
        r = c.post("/api/v1/check-answer", json=body)
    assert r.status_code == 200 and r.json()["value"] > 0, r.text
    assert commands == ["answer check_answer"], commands


@pytest.mark.parametrize("route, body", [
    ("compare-cells", {"cells": ["vanilla"]}),
    ("radius-sweep", {"radii": [1.0]}),
    ("check-answer", {"ask": "delta_norm[2][1]", "reveal": True}),
    ("compare-gradients", {"draws": 2}),
])
def test_large_bodies_are_decoded_and_planned_in_the_slots_process(monkeypatch, app_client, route, body):
    """A body over INLINE_BODY_BYTES was decoded on the event loop (compare-gradients, the
    labs: orjson.loads holds the GIL for the whole body) or in a thread of the worker (the
    quiz). Now decoded and planned in the slot's process; its refusals are the same."""
    import app.api.routes as routes

    commands = _recording(monkeypatch)
    T, n = 60, 400  # 120 KB of inputs, little work
    rows = [[0.25] * n for _ in range(T)]
    data = {"inputs": rows, "targets": [[0.1]] * T, "init": {"seed": 0, "hidden": 2}}
    doc = (body | {"request": data}) if route == "check-answer" else (data | body)
    raw = orjson.dumps(doc)
    bad = orjson.dumps({**doc, "nope": 1})
    assert len(raw) > routes.INLINE_BODY_BYTES
    key = route.replace("-", "_")
    with app_client as c:
        there = c.post(f"/api/v1/{route}", content=raw, headers={"content-type": "application/json"})
        assert there.status_code == 200, there.text
        assert commands == [f"plan {key}", f"answer {key}"], commands
        refused = c.post(f"/api/v1/{route}", content=bad, headers={"content-type": "application/json"})
        monkeypatch.setattr(routes, "INLINE_BODY_BYTES", 10**9)
        commands.clear()
        here = c.post(f"/api/v1/{route}", content=raw, headers={"content-type": "application/json"})
        refused_here = c.post(f"/api/v1/{route}", content=bad, headers={"content-type": "application/json"})
        assert commands == [] and routes.gate(c.app).active == 0
    assert here.status_code == 200 and here.content == there.content
    assert refused.status_code == refused_here.status_code == 422
    assert refused.json() == refused_here.json() and refused.json()["error"]["field"] == "nope"


@pytest.mark.parametrize("accept", ["application/json", "application/x-npz"])
def test_a_heavy_bptt_answer_written_whole_carries_its_content_length(one_slot, accept):
    """A heavy /bptt answer the slot's process hands back whole (estimated up to
    STREAM_RESPONSE_BYTES) is sent with its Content-Length, over a real server; larger ones are
    written while they are sent (their length is not known when the headers go) and chunked."""
    import app.api.routes as routes
    from app.api.parse import parse

    body = {"inputs": [[0.5] * 8] * 200, "targets": [[0.1]] * 200, "init": {"seed": 0, "hidden": 64}, "fields": ["grads"]}
    parsed = parse(body, Settings(), "npz" if accept.endswith("npz") else "json")
    assert parsed.work > routes.INLINE_WORK and parsed.response_bytes <= routes.STREAM_RESPONSE_BYTES
    r = httpx.post(f"{one_slot}/api/v1/bptt", json=body, headers={"accept": accept}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == accept
    assert "transfer-encoding" not in r.headers and int(r.headers["content-length"]) == len(r.content) > 0
    assert "first chunk" not in r.headers["server-timing"]
    big = {"inputs": [[0.5]] * 400, "targets": [[0.1]] * 400, "init": {"seed": 0, "hidden": 4}}
    assert parse(big, Settings()).response_bytes > routes.STREAM_RESPONSE_BYTES
    r = httpx.post(f"{one_slot}/api/v1/bptt", json=big, headers={"accept": accept}, timeout=60)
    assert r.status_code == 200 and r.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.headers
    assert "first chunk (streamed)" in r.headers["server-timing"]


def test_a_training_run_with_a_large_body_is_decoded_and_built_in_the_slots_process(monkeypatch, app_client):
    """POST /api/v1/train decoded its body on the event loop and built the run in a thread of
    the worker (an 8 MB body: 54–144 ms of orjson.loads holding the GIL). A body over
    INLINE_BODY_BYTES is now decoded and built in the slot's process, the run kept there: the
    same lines as built here, the slot given back after."""
    import app.api.routes as routes

    commands = _recording(monkeypatch)
    T, n = 40, 300
    body = {"inputs": [[[0.25] * n] * T] * 2, "targets": [[[0.1]] * T] * 2, "init": {"seed": 0, "hidden": 2},
            "updates": 3, "optimizer": {"name": "sgd", "lr": 0.1}}
    raw = orjson.dumps(body)
    assert len(raw) > routes.INLINE_BODY_BYTES
    head = {"content-type": "application/json"}
    with app_client as c:
        there = c.post("/api/v1/train", content=raw, headers=head)
        assert there.status_code == 200, there.text
        assert commands[:1] == ["train_body"] and set(commands[1:]) == {"slice"}, commands
        bad = c.post("/api/v1/train", content=orjson.dumps(body | {"updates": 0}), headers=head)
        commands.clear()
        monkeypatch.setattr(routes, "INLINE_BODY_BYTES", 10**9)
        import app.api.train as train_mod

        monkeypatch.setattr(train_mod, "INLINE_BODY_BYTES", 10**9)
        here = c.post("/api/v1/train", content=raw, headers=head)
        bad_here = c.post("/api/v1/train", content=orjson.dumps(body | {"updates": 0}), headers=head)
        assert commands == [] and routes.gate(c.app).active == 0
    assert here.status_code == 200 and here.content == there.content and b'"done":true' in here.content
    assert bad.status_code == bad_here.status_code == 422 and bad.json() == bad_here.json()
    assert bad.json()["error"]["field"] == "updates"


@pytest.mark.parametrize("route, task, field, setting", [
    ("train", {"name": "echo", "N": 64, "T": 1024, "n": 200}, "task.N", "BPTT_MAX_NORM_FLOATS"),
    ("compare-gradients", {"name": "sum", "N": 64, "T": 1024, "n": 200}, "task.N", "BPTT_MAX_NORM_FLOATS"),
    ("train", {"name": "echo", "N": 64, "T": 256, "n": 512}, "task", "BPTT_MAX_P"),
    ("compare-cells", {"name": "echo", "N": 64, "T": 1024, "n": 512}, "inputs", None),
    ("radius-sweep", {"name": "sum", "N": 64, "T": 1024, "n": 512}, "inputs", None),
])
def test_a_task_too_large_is_refused_before_its_sequences_are_made(monkeypatch, route, task, field, setting):
    """A 100-byte body naming a task made all its N sequences, turned them into lists and
    handed them to /bptt's parser, which only then refused them: echo at N = 64, T = 1024,
    n = 512 cost 7–23 s and 3.2 GB of a worker thread (ungated, uncharged) per request. The
    sizes are now checked from one sequence first, and the N sequences never made."""
    from app.engine.train import tasks as TK

    made = []
    real = TK.make
    monkeypatch.setattr(TK, "make", lambda name, **o: made.append(o.get("N")) or real(name, **o))
    body = {"task": task, "init": {"seed": 0, "hidden": 4}}
    with TestClient(create_app(Settings())) as c:
        r = c.post(f"/api/v1/{route}", json=body)
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == field, err
    if setting:
        assert err["params"]["setting"] == setting and setting in err["expected"], err
    assert all(n in (None, 1) for n in made), made  # never the N = 64 sequences


@pytest.mark.parametrize("route, task", [
    ("train", {"name": "echo", "N": 64, "T": 64, "n": 100}),
    ("compare-gradients", {"name": "echo", "N": 64, "T": 64, "n": 100}),
    ("compare-cells", {"name": "echo", "T": 800, "n": 250}),
])
def test_a_task_that_makes_many_numbers_is_planned_in_the_slots_process(monkeypatch, app_client, route, task):
    """A small body whose task makes many numbers (here 0.8M: made, listed and parsed by the
    plan, 0.3–0.8 s of a worker thread and 200–360 MB at 2M) is planned in the slot's
    process, as a large body is; a classroom task stays here."""
    from app.api import train as T

    commands = _recording(monkeypatch)
    body = {"task": task, "init": {"seed": 0, "hidden": 2}} | ({"updates": 2} if route == "train" else {})
    if route == "compare-gradients":
        body["draws"] = 1
    default_n = 1 if route == "compare-cells" else None
    assert T.task_numbers(body, default_n) > T.INLINE_TASK_NUMBERS
    with app_client as c:
        r = c.post(f"/api/v1/{route}", json=body)
        assert r.status_code == 200, r.text
        first = {"train": "train_body", "compare-gradients": "plan compare_gradients",
                 "compare-cells": "plan compare_cells"}[route]
        assert commands[:1] == [first], commands
        commands.clear()
        small = {"task": {"name": "echo", "N": 4, "T": 10}, "init": {"seed": 0, "hidden": 2}}
        assert T.task_numbers(small, default_n) < 1000
        extra = {"train": {"updates": 2}, "compare-gradients": {"draws": 1}}.get(route, {})
        r = c.post(f"/api/v1/{route}", json=small | extra)
        assert r.status_code == (200 if route != "compare-cells" else 422) and commands == [], (r.text, commands)
        assert routes_gate(c).active == 0


def routes_gate(c):
    import app.api.routes as routes

    return routes.gate(c.app)


def test_a_client_that_leaves_mid_computation_gives_its_slot_back(one_slot):
    """A heavy lab request whose client leaves while its process computes: the process cannot be
    interrupted, but once it answers the slot is given back (not leaked), so the next heavy
    request gets it; classroom requests are answered meanwhile."""
    import time

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{one_slot}/api/v1/compare-cells", json=SEQ_BIG, timeout=httpx.Timeout(30, read=0.5))
    small = httpx.post(f"{one_slot}/api/v1/compare-cells", json=SEQ_SMALL, timeout=10)
    assert small.status_code == 200, small.text  # below classroom size: no slot needed
    deadline = time.monotonic() + 60
    while True:
        r = httpx.post(f"{one_slot}/api/v1/radius-sweep", json=HEAVY["radius-sweep"], timeout=60)
        if r.status_code == 200:
            break
        assert r.status_code == 503 and time.monotonic() < deadline, r.text[:300]
        time.sleep(0.5)


def test_a_client_that_does_not_read_a_large_lab_answer_is_dropped():
    """The labs' and the task's answers were one Response: a client that never read a 28 MB
    compare-cells answer held it in the worker for as long as the connection lived. Sent a
    chunk at a time like /bptt's, each send bounded by BPTT_SEND_TIMEOUT, then the connection
    is reset and the answer freed."""
    import socket
    import time

    env = {"BPTT_SEND_TIMEOUT": "1", "BPTT_MAX_WORK": "5e10", "OPENBLAS_NUM_THREADS": "1"}
    log: list[str] = []
    with running_server(env=env, log=log) as base:
        port = int(base.rsplit(":", 1)[1])
        body = orjson.dumps(SEQ_BIG)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /api/v1/compare-cells HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                  b"content-length: %d\r\n\r\n" % len(body) + body)
        head = s.recv(200)
        assert b"200 OK" in head and b"content-length" in head.lower(), head
        time.sleep(4)  # (computed: the head came) its first chunks sent, then nothing read for 1 s
        got, reset = 0, False
        try:
            while True:
                part = s.recv(1 << 20)
                if not part:
                    break
                got += len(part)
        except ConnectionResetError:
            reset = True
        s.close()
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    assert reset or got < 28e6, got
    assert "BPTT_SEND_TIMEOUT" in log[0], log[0][-2000:]


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_radius_sweep_that_cannot_rescale_is_a_422_here_and_in_the_process(monkeypatch, app_client, where):
    """init.scale 1e-323 draws a W_hh of subnormal radius: ρ/ρ(W_hh) overflowed to inf, W_hh·inf
    held NaN and LAPACK raised (a 500). Refused 422 naming init, from a thread or from the
    slot's process alike, the slot given back."""
    import app.api.routes as routes

    if where == "process":
        monkeypatch.setattr(routes, "INLINE_WORK", -1)
    commands = _recording(monkeypatch)
    body = {"inputs": [[0.5]] * 3, "targets": [[0.1]] * 3, "init": {"seed": 0, "hidden": 3, "scale": 1e-323}}
    with app_client as c:
        r = c.post("/api/v1/radius-sweep", json=body)
        assert routes.gate(c.app).active == 0
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "init" and err["code"] == "invalid_value", r.text
    assert commands == ([] if where == "thread" else ["answer radius_sweep"]), commands
