"""POST /api/v1/train and /api/v1/compare-gradients: the stream's contract and names, the same
bytes for the same request, the run equal to the engine's, refusals naming their field and
setting, and against a real server: lines arrive while it runs, a client that leaves stops the
work (the server's CPU drops, its place in flight is free again), runs in flight → 503."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from server import ROOT, free_port

from app.engine.train import loop as TL
from app.main import create_app
from app.settings import Settings

BODY = {
    "cell": "gru", "init": {"seed": 0, "hidden": 8}, "task": {"name": "recall", "delay": 5, "seed": 1},
    "optimizer": {"name": "adam", "lr": 0.05}, "updates": 30, "report_every": 5, "checkpoint_every": 10,
    "reduction": "mean", "truncation": {"kind": "chunked", "K": 3}, "clip": {"max_norm": 0.05},
    "batch_size": 8, "seed": 3,
}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Settings()))


def lines(r):
    return [orjson.loads(x) for x in r.content.splitlines()]


def test_the_stream_has_the_issues_names(client):
    r = client.post("/api/v1/train", json=BODY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    out = lines(r)
    reports, done = out[:-1], out[-1]
    assert [d["update"] for d in reports] == [1, 6, 11, 16, 21, 26, 30]
    for d in reports:
        assert {"update", "loss", "grad_norm", "clipped"} <= set(d)
        assert isinstance(d["loss"], float) and isinstance(d["clipped"], bool)
    checkpoints = [d for d in reports if "params" in d]
    assert [d["update"] for d in checkpoints] == [1, 11, 21, 30]
    T = 6
    assert [len(row) for row in checkpoints[0]["delta_norm"]] == list(range(1, T + 1))  # lower triangle
    assert set(checkpoints[0]["params"]) == {"W_ih", "W_hh", "b_ih", "b_hh", "W_hy", "b_y"}
    assert done["done"] is True and done["updates"] == 30 and set(done["params"]) == set(checkpoints[0]["params"])
    assert any(d["clipped"] for d in reports)
    assert done["loss"] < reports[0]["loss"]


def test_the_same_request_gives_the_same_bytes_and_the_engines_run(client):
    a = client.post("/api/v1/train", json=BODY).content
    assert a == client.post("/api/v1/train", json=BODY).content
    assert a != client.post("/api/v1/train", json=BODY | {"seed": 4}).content
    # the run is the engine's with the parameters init gives and the task's arrays
    from app.engine.init import init_params
    from app.engine.train import tasks as TK

    task = TK.make("recall", delay=5, seed=1)
    theta = init_params("canonical", 0, 4, 8, 4, None, __import__("app.engine.cells", fromlist=["CELLS"]).CELLS["gru"])
    spec = TL.TrainSpec("gru", "tanh", theta, TL.Data(task.inputs, task.targets, task.mask, task.loss, "mean"),
                        "adam", {"lr": 0.05}, 30, 8, 3, TL.Truncation("chunked", K=3), "bptt", ("norm", 0.05), 5, 10)
    done = list(TL.train(spec))[-1]
    got = lines(type("R", (), {"content": a})())[-1]
    for k, v in done.params.items():
        assert np.array_equal(np.array(got["params"][k]), v), k


def test_own_data_window_truncation_and_rtrl(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 6, 2)).tolist()
    Y = rng.normal(size=(4, 6, 1)).tolist()
    base = {"cell": "vanilla", "init": {"seed": 1, "hidden": 5}, "inputs": X, "targets": Y, "updates": 5,
            "optimizer": {"name": "sgd", "lr": 0.1}}
    w = lines(client.post("/api/v1/train", json=base | {"truncation": 2}))
    full = lines(client.post("/api/v1/train", json=base))
    rtrl = lines(client.post("/api/v1/train", json=base | {"method": "rtrl"}))
    assert w[0]["loss"] == full[0]["loss"] and w[0]["grad_norm"] != full[0]["grad_norm"]
    assert rtrl[0]["grad_norm"] == pytest.approx(full[0]["grad_norm"], rel=1e-12)
    assert rtrl[-1]["loss"] == pytest.approx(full[-1]["loss"], rel=1e-10)


@pytest.mark.parametrize("change,field,words", [
    ({"updates": 10**6}, "updates", "BPTT_TRAIN_MAX_UPDATES"),
    ({"updates": 9000, "batch_size": None, "init": {"seed": 0, "hidden": 256}}, "updates", "BPTT_TRAIN_MAX_WORK"),
    ({"task": {"name": "recall", "delay": 5000}}, "task.delay", "BPTT_MAX_T"),
    ({"task": {"name": "echo", "N": 10**9}}, "task.N", "BPTT_MAX_BATCH"),
    ({"task": {"name": "echo", "colour": 1}}, "task.colour", "one of"),
    ({"task": {"name": "tetris"}}, "task.name", "one of"),
    ({"optimizer": {"name": "adam", "betas": [2, 1]}}, "optimizer.betas", "[0, 1)"),
    ({"optimizer": {"name": "lbfgs"}}, "optimizer.name", "adam"),
    ({"optimizer": {"name": "sgd", "lr": 0.1, "beta": 1}}, "optimizer.beta", "one of"),
    ({"truncation": {"kind": "randomized", "p": 1.5}}, "truncation.p", "≤ 1"),
    ({"truncation": {"kind": "chunked", "K": 0}}, "truncation.K", "≥ 1"),
    ({"truncation": {"kind": "sideways", "K": 2}}, "truncation", "chunked"),
    ({"method": "rtrl"}, "truncation", "rtrl"),
    ({"method": "rtrl", "truncation": {"kind": "randomized", "p": 0.5}}, "truncation", "rtrl"),
    ({"batch_size": 40}, "batch_size", "32"),
    ({"loss": "mse"}, "loss", "task"),
    ({"h0": [0.0]}, "h0", "one of the fields"),
    ({"report_every": 0}, "report_every", "≥ 1"),
])
def test_refusals_name_their_field_and_setting(client, change, field, words):
    body = {k: v for k, v in (BODY | change).items() if v is not None}
    r = client.post("/api/v1/train", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and words in err["expected"] + err["message"], err


def test_compare_gradients(client):
    r = client.post("/api/v1/compare-gradients", json={
        "cell": "lstm", "init": {"seed": 0, "hidden": 6}, "task": {"name": "echo", "T": 12},
        "truncation": {"kind": "chunked", "K": 4}, "draws": 200, "seed": 2})
    assert r.status_code == 200, r.text
    v = r.json()["variants"]
    assert set(v) == {"full", "window", "chunked", "randomized", "randomized_mean", "rtrl"}
    assert v["full"]["cosine"] == pytest.approx(1) and v["rtrl"]["cosine"] == pytest.approx(1, abs=1e-12)
    assert v["chunked"]["cosine"] < 1 - 1e-6 and v["window"]["cosine"] < 1 - 1e-6
    assert abs(v["randomized_mean"]["norm_ratio"] - 1) < abs(v["randomized"]["norm_ratio"] - 1) + 1e-3
    assert set(v["full"]["grads"]) == {"W_ih", "W_hh", "b_ih", "b_hh", "W_hy", "b_y"}


def _h0_case(cell, batched):
    rng = np.random.default_rng(5)
    N, T, n, m = (3 if batched else 1), 7, 2, 4
    body = {"cell": cell, "init": {"seed": 1, "hidden": m}, "reduction": "sum",
            "inputs": rng.normal(size=(N, T, n)).tolist() if batched else rng.normal(size=(T, n)).tolist(),
            "targets": rng.normal(size=(N, T, 1)).tolist() if batched else rng.normal(size=(T, 1)).tolist()}
    body["h0"] = rng.normal(size=(N, m)).tolist() if batched else rng.normal(size=m).tolist()
    if cell == "lstm":
        body["c0"] = rng.normal(size=(N, m)).tolist() if batched else rng.normal(size=m).tolist()
    return body, T


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * (1 + np.abs(b).max()), err_msg=what)


@pytest.mark.parametrize("cell, batched", [("vanilla", True), ("lstm", True), ("lstm", False), ("gru", False)])
def test_compare_gradients_starts_every_variant_from_h0_and_c0(client, cell, batched):
    """h0 / c0 as /bptt takes them (m or B×m; c0 the LSTM's): the full variant's gradient is
    /bptt's with the same states; window K and chunked K with K = T, randomized with π = 1 and
    RTRL are the full gradient again, so each of them started from those states too."""
    body, T = _h0_case(cell, batched)
    ref = client.post("/api/v1/bptt", json=body)
    assert ref.status_code == 200, ref.text
    ref = {k: g for k, g in ref.json()["grads"].items() if k not in ("inputs", "h0", "c0")}  # the parameters'
    r = client.post("/api/v1/compare-gradients", json=body | {"truncation": {"kind": "chunked", "K": T}})
    assert r.status_code == 200, r.text
    v = r.json()["variants"]
    for name in ("full", "window", "chunked", "rtrl"):
        assert set(v[name]["grads"]) == set(ref)
        for k in ref:
            _close(v[name]["grads"][k], ref[k], f"{name} {k}")
    v = client.post("/api/v1/compare-gradients", json=body | {"truncation": {"kind": "randomized", "p": 1}, "draws": 2}).json()["variants"]
    for name in ("randomized", "randomized_mean"):
        for k in ref:
            _close(v[name]["grads"][k], ref[k], f"{name} {k}")
    # and the states matter: without them every variant's gradient is another
    zero = {k: x for k, x in body.items() if k not in ("h0", "c0")}
    z = client.post("/api/v1/compare-gradients", json=zero | {"truncation": {"kind": "chunked", "K": 3}}).json()["variants"]
    w = client.post("/api/v1/compare-gradients", json=body | {"truncation": {"kind": "chunked", "K": 3}}).json()["variants"]
    for name in ("full", "window", "chunked", "randomized", "randomized_mean", "rtrl"):
        assert z[name]["grads"]["W_hh"] != w[name]["grads"]["W_hh"], name


@pytest.mark.parametrize("cell, extra, field, code", [
    ("vanilla", {"h0": [0.1, 0.2]}, "h0", "wrong_shape"),
    ("vanilla", {"h0": [[0.1] * 4] * 2}, "h0", "wrong_shape"),  # 2 rows for a batch of 3
    ("vanilla", {"c0": [0.0] * 4}, "c0", "conflict"),
    ("gru", {"c0": [0.0] * 4}, "c0", "conflict"),
    ("lstm", {"c0": [0.0] * 5}, "c0", "wrong_shape"),
    ("lstm", {"h0": "zeros"}, "h0", "wrong_type"),
])
def test_compare_gradients_refuses_a_wrong_h0_or_c0_naming_it(client, cell, extra, field, code):
    body, _ = _h0_case(cell, True)
    body = {k: x for k, x in body.items() if k not in ("h0", "c0")} | extra
    r = client.post("/api/v1/compare-gradients", json=body)
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert (e["field"], e["code"]) == (field, code), e


def test_train_still_refuses_h0(client):
    """A run starts from h_0 = 0 (the loop's contract): h0 is a field of one backward pass."""
    body, _ = _h0_case("vanilla", True)
    r = client.post("/api/v1/train", json=body | {"updates": 2})
    assert r.status_code == 422 and r.json()["error"]["field"] == "h0", r.text


# ---------------------------------------------------------------- a real server


class Server:
    def __init__(self, env):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"], cwd=ROOT, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def cpu_seconds(self) -> float:
        """CPU of the server and of its processes (a heavy run computes in one, app/api/heavy.py)."""
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        total = 0.0
        for pid in [self.proc.pid, *map(int, kids)]:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server():
    # the run's process at the server's own priority: at BPTT_HEAVY_NICE's 10, other test runs
    # on 2 cores (load 8) left it under 1 % of a core, and the CPU rates below said nothing
    s = Server({"BPTT_TRAIN_MAX_RUNS": "1", "BPTT_HEAVY_NICE": "0"})
    yield s
    s.stop()


LONG = BODY | {"updates": 3000, "report_every": 50, "checkpoint_every": 0, "truncation": None, "clip": None,
               "cell": "vanilla", "init": {"seed": 0, "hidden": 16}, "batch_size": None,
               "task": {"name": "echo", "T": 20}}
LONG = {k: v for k, v in LONG.items() if v is not None}


def test_lines_arrive_while_it_runs_and_leaving_stops_the_work(server):
    """Waited on events as test_leaving_a_quiet_run_stops_it (see there), with a line every 50
    updates: the first line comes while the run still holds its place (a line as it runs, not
    at the end), the run is seen working, the client leaves, the place is seen free."""
    with httpx.stream("POST", server.base + "/api/v1/train", json=LONG, timeout=120) as r:
        assert r.status_code == 200
        it = r.iter_lines()
        first = orjson.loads(next(it))
        assert first["update"] == 1
        # another run meanwhile: this worker's one place is taken → 503 naming the setting
        busy = httpx.post(server.base + "/api/v1/train", json=BODY, timeout=60)
        assert busy.status_code == 503 and busy.headers["retry-after"].isdigit()
        assert "BPTT_TRAIN_MAX_RUNS" in busy.json()["error"]["expected"]
        second = orjson.loads(next(it))
        assert second["update"] == 51
        _see_it_work(server)
    _see_it_stop(server)
    r = httpx.post(server.base + "/api/v1/train", json=BODY, timeout=60)  # the place is free again
    assert r.status_code == 200 and orjson.loads(r.content.splitlines()[-1])["done"] is True


def test_a_client_that_leaves_before_the_first_line_frees_its_place(server):
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            body = orjson.dumps(LONG)
            s.sendall(b"POST /api/v1/train HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.5)
    r = httpx.post(server.base + "/api/v1/train", json=BODY, timeout=30)
    assert r.status_code == 200


#: a probe of this worker's one place (BPTT_TRAIN_MAX_RUNS=1): 503 while a run holds it, and once
#: it is free 422 (no updates), so that probing starts no run of its own
PROBE = BODY | {"updates": 0}


def _wait(what, ready, deadline_s=120.0, every_s=0.1):
    """Poll ``ready()`` until it is true: the test waits on the server's events, not on time (a
    deadline only so that a run that never stops fails rather than hangs)."""
    deadline = time.monotonic() + deadline_s
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not after {deadline_s:.0f} s"
        time.sleep(every_s)


#: CPU seconds of the run seen while the client is there: LONG's whole run costs ≥ 5 × this
WORK_S = 0.15


def _see_it_work(server):
    """While connected: the server's CPU grows by WORK_S, and the run still holds its place."""
    c0 = server.cpu_seconds()
    _wait("the run working", lambda: server.cpu_seconds() - c0 >= WORK_S, every_s=0.05)
    assert httpx.post(server.base + "/api/v1/train", json=PROBE, timeout=60).status_code == 503, \
        "the run ended before the client left: a run this short shows nothing"


def _see_it_stop(server):
    """After the client has left (its stream closed): the place is seen free, the CPU spent
    until then is less than WORK_S (one slice and the probes; the rest of the run would be
    ≥ 5 × WORK_S more), and none after it while the probe has ten more answers."""
    c_left = server.cpu_seconds()
    _wait("the place freed", lambda: httpx.post(server.base + "/api/v1/train", json=PROBE, timeout=60).status_code == 422,
          every_s=0.25)
    c_free = server.cpu_seconds()
    assert c_free - c_left < WORK_S, (c_free - c_left, WORK_S)
    for _ in range(10):
        assert httpx.post(server.base + "/api/v1/train", json=PROBE, timeout=60).status_code == 422
    assert server.cpu_seconds() - c_free < WORK_S / 2, "the server went on computing after the place was freed"


def test_leaving_a_quiet_run_stops_it(server):
    """No line is sent between update 1 and the last, so only the check between slices can see
    that the client left. Waited on events, not on time, so that a loaded machine (load 15 on 2
    cores) slows it but does not fail it: the run is seen working (the server's CPU grows by
    WORK_S while the client is there), the client leaves, the run's place is seen free (the
    probe's 503 turns 422). The CPU the server spent between the leaving and the place being
    free must be far less than what the rest of the run would have cost (≥ 5 × WORK_S: a run
    that went on to its end, or a place freed only at the end, fails here), and once the
    place is free the server does nothing more while the probe has ten more answers."""
    long = LONG | {"report_every": 10**6}
    with httpx.stream("POST", server.base + "/api/v1/train", json=long, timeout=120) as r:
        assert r.status_code == 200, r.read()
        lines = r.iter_lines()  # kept: an iterator dropped at once closes the stream (the client leaves)
        assert orjson.loads(next(lines))["update"] == 1
        _see_it_work(server)
    _see_it_stop(server)
    assert httpx.post(server.base + "/api/v1/train", json=BODY, timeout=60).status_code == 200


@pytest.mark.parametrize("url,extra", [("/api/v1/train", {"init": {"seed": 0, "hidden": 1}, "updates": 1}),
                                       ("/api/v1/compare-gradients", {"init": {"seed": 0, "hidden": 2}})])
def test_a_task_too_large_is_refused_before_it_is_made(client, monkeypatch, url, extra):
    """64 sequences of echo at T=1024, n=512 (a 60-byte task) were generated (2.7 GB) and refused
    9.7 s later, each option being under its own limit (found by a student-attack helper): the
    task's sizes are now checked from its options, before any array is made."""
    from app.engine.train import tasks as TK

    real = TK.make

    def not_made(name, **k):  # (one sequence may be made to plan it; not the whole task)
        if k.get("N") != 1:
            raise AssertionError("the task was made")
        return real(name, **k)

    monkeypatch.setattr(TK, "make", not_made)
    r = client.post(url, json={"task": {"name": "echo", "N": 64, "T": 1024, "n": 200}, **extra})
    assert r.status_code == 422, r.text
    e = r.json()["error"]
    assert e["field"].startswith("task") and e["params"]["setting"] == "BPTT_MAX_NORM_FLOATS", e


def test_the_tasks_own_sizes_keep_the_limits(client):
    r = client.post("/api/v1/task", json={"task": {"name": "recall", "delay": 1024}})  # T = delay + 1
    assert r.status_code == 422 and r.json()["error"]["params"] == {"setting": "BPTT_MAX_T", "limit": 1024, "got": 1025}
    assert r.json()["error"]["field"] == "task.delay"
    r = client.post("/api/v1/task", json={"task": {"name": "echo", "N": 65}})
    assert r.status_code == 422 and r.json()["error"]["params"] == {"setting": "BPTT_MAX_BATCH", "limit": 64, "got": 65}
    r = client.post("/api/v1/task", json={"task": {"name": "recall", "delay": 1023, "N": 1}})
    assert r.status_code == 200 and r.json()["options"]["T"] == 1024


def test_a_stream_larger_than_the_response_limit_is_refused_before_it_starts(client):
    """T=1024 with a checkpoint every update writes a 10.6 MB line per update (one sequence's
    δ norms): 230 updates were 2.4 GB of stream for a 130-byte body (found by a student-attack
    helper). The stream's size is estimated and held to BPTT_MAX_RESPONSE_MB; the estimate is
    an upper one."""
    from app.api import train

    big = {"inputs": [[0.1]] * 1024, "targets": [[0.1]] * 1024, "init": {"seed": 0, "hidden": 1}, "updates": 230,
           "checkpoint_every": 1}
    r = client.post("/api/v1/train", json=big)
    e = r.json()["error"]
    assert r.status_code == 422 and e["field"] == "checkpoint_every" and e["params"]["setting"] == "BPTT_MAX_RESPONSE_MB", e
    small = big | {"inputs": [[0.1]] * 64, "targets": [[0.1]] * 64, "updates": 6, "checkpoint_every": 2, "report_every": 1}
    r = client.post("/api/v1/train", json=small)
    assert r.status_code == 200 and b'"done":true' in r.content.replace(b" ", b"")
    assert len(r.content) <= train.stream_bytes(6, 1, 2, 64, 5), len(r.content)
