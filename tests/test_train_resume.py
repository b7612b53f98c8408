"""A run paused and resumed equals the uninterrupted run, bit for bit (the training page's pause,
step and play): ``start_update`` continues the seeded batches and randomized draws,
``optimizer_state`` (checkpoint and done lines with ``resumable``) the optimizer; ``param_norms``
on every report; the checkpoints' parameters give the same model back in every notation; and
``init.forget_bias`` (the LSTM's remedy for long dependencies)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.engine.cells import CELLS
from app.engine.init import init_params
from app.engine.train import loop as TL
from app.engine.train import optimizers as OPT
from app.engine.train import tasks as TK
from app.engine.train.errors import OptionError
from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Settings()))


def lines(r):
    assert r.status_code == 200, r.text
    return [orjson.loads(x) for x in r.content.splitlines()]


def _spec(opt, opt_kw, trunc, **kw):
    task = TK.make("echo", T=8, delay=2, N=12, seed=2)
    theta = init_params("canonical", 1, 1, 5, 1, None, CELLS["vanilla"])
    data = TL.Data(task.inputs, task.targets, task.mask, task.loss, "mean")
    return TL.TrainSpec("vanilla", "tanh", theta, data, opt, opt_kw, 17, 5, 7, trunc, "bptt", ("norm", 0.5), 1, 0,
                        resumable=True, **kw)


OPTIMIZERS = [
    ("sgd", {"lr": 0.1}), ("momentum", {"lr": 0.05, "nesterov": True}), ("adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True}), ("adam", {"lr": 0.05, "amsgrad": True}),
]
TRUNCATIONS = [TL.Truncation(), TL.Truncation("chunked", K=3), TL.Truncation("randomized", p=0.4)]


@pytest.mark.parametrize("opt,opt_kw", OPTIMIZERS)
@pytest.mark.parametrize("trunc", TRUNCATIONS, ids=lambda t: t.kind)
def test_a_run_in_pieces_equals_the_run_in_one(opt, opt_kw, trunc):
    from dataclasses import replace

    whole = list(TL.train(_spec(opt, opt_kw, trunc)))
    # pieces 1–4, 5–5, 6–17, each from the last one's Done (parameters and optimizer state)
    events, params, state, start = [], None, None, 1
    for last in (4, 5, 17):
        spec = _spec(opt, opt_kw, trunc, start_update=start, optimizer_state=state)
        spec = replace(spec, updates=last, params=params if params is not None else spec.params)
        got = list(TL.train(spec))
        events += got[:-1]
        params, state, start = got[-1].params, got[-1].optimizer_state, last + 1
    assert [e.update for e in events] == [e.update for e in whole[:-1]] == list(range(1, 18))
    for a, b in zip(events, whole[:-1]):
        assert (a.loss, a.grad_norm, a.clipped, a.param_norms) == (b.loss, b.grad_norm, b.clipped, b.param_norms), a.update
    for k, v in whole[-1].params.items():
        assert np.array_equal(params[k], v), k
    assert OPT.make(opt, **opt_kw).buffers() == tuple(k for k in state if k != "step")
    assert state["step"] == 17


def test_a_checkpoint_carries_the_state_before_its_update():
    spec = _spec("adam", {"lr": 0.05}, TRUNCATIONS[2])
    from dataclasses import replace

    spec = replace(spec, checkpoint_every=6)
    whole = list(TL.train(spec))
    ck = [e for e in whole[:-1] if e.checkpoint]
    assert [e.update for e in ck] == [1, 7, 13, 17] and ck[0].optimizer_state == {"step": 0}
    resumed = list(TL.train(replace(spec, start_update=7, params=ck[1].params, optimizer_state=ck[1].optimizer_state)))
    assert [(e.update, e.loss) for e in resumed[:-1]] == [(e.update, e.loss) for e in whole[:-1] if e.update >= 7]
    for k, v in whole[-1].params.items():
        assert np.array_equal(resumed[-1].params[k], v), k


def test_param_norms_are_of_the_parameters_before_the_update():
    from dataclasses import replace

    ev = list(TL.train(replace(_spec("sgd", {"lr": 0.1}, TL.Truncation()), checkpoint_every=1)))
    for e in ev[:-1]:
        assert e.param_norms == {k: float(np.linalg.norm(v)) for k, v in e.params.items()}
    assert ev[1].param_norms != ev[0].param_norms


def test_an_optimizer_state_that_does_not_fit_is_refused():
    theta = {"W": np.zeros((2, 3)), "b": np.zeros(2)}
    adam = OPT.make("adam")
    with pytest.raises(OptionError, match="optimizer_state.momentum_buffer"):
        adam.load_state({"step": 1, "momentum_buffer": {}}, theta)
    with pytest.raises(OptionError, match="optimizer_state.exp_avg_sq"):
        adam.load_state({"step": 1, "exp_avg": {"W": np.zeros((2, 3)), "b": np.zeros(2)}}, theta)
    with pytest.raises(OptionError, match=r"optimizer_state.exp_avg.W"):
        adam.load_state({"step": 1, "exp_avg": {"W": np.zeros((3, 2)), "b": np.zeros(2)},
                         "exp_avg_sq": {"W": np.zeros((2, 3)), "b": np.zeros(2)}}, theta)
    with pytest.raises(OptionError, match="optimizer_state.step"):
        adam.load_state({"step": -1}, theta)
    OPT.make("sgd", momentum=0.9).load_state({"step": 0}, theta)  # step 0: nothing to carry
    with pytest.raises(OptionError, match="momentum_buffer"):
        OPT.make("sgd", momentum=0.9).load_state({"step": 2}, theta)


BODY = {
    "cell": "lstm", "init": {"seed": 0, "hidden": 6}, "task": {"name": "recall", "delay": 6, "seed": 1},
    "optimizer": {"name": "adam", "lr": 0.05}, "updates": 25, "report_every": 3, "checkpoint_every": 6,
    "truncation": {"kind": "randomized", "p": 0.5}, "clip": {"max_norm": 0.5}, "batch_size": 8, "seed": 3,
    "resumable": True,
}


@pytest.mark.parametrize("notation", ["canonical", "nndl", "pytorch"])
@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
def test_resuming_from_a_checkpoint_line_gives_the_same_lines(client, notation, cell):
    body = BODY | {"notation": notation, "cell": cell}
    whole = lines(client.post("/api/v1/train", json=body))
    ck = [d for d in whole if "params" in d and "update" in d]
    assert [d["update"] for d in ck] == [1, 7, 13, 19, 25]
    assert all("param_norms" in d for d in whole[:-1]) and "optimizer_state" in whole[-1]
    rest = {k: v for k, v in body.items() if k != "init"}
    again = lines(client.post("/api/v1/train", json=rest | {
        "start_update": 13, "params": ck[2]["params"], "optimizer_state": ck[2]["optimizer_state"]}))
    assert again == [d for d in whole if d.get("update", 99) >= 13 or "done" in d]
    # one update alone (the page's "step"), then on from its done line
    step = lines(client.post("/api/v1/train", json=rest | {
        "updates": 13, "start_update": 13, "params": ck[2]["params"], "optimizer_state": ck[2]["optimizer_state"]}))
    assert [d.get("update") for d in step] == [13, None] and step[0] == again[0]
    nxt = lines(client.post("/api/v1/train", json=rest | {
        "start_update": 14, "params": step[-1]["params"], "optimizer_state": step[-1]["optimizer_state"]}))
    assert nxt[-1] == whole[-1]


def test_the_params_of_a_line_are_the_same_model_in_pytorchs_two_biases(client):
    body = {"notation": "pytorch", "init": {"seed": 0, "hidden": 3}, "task": {"name": "sum", "T": 5, "seed": 0},
            "optimizer": {"name": "sgd", "lr": 0.1}, "updates": 3, "checkpoint_every": 1}
    out = lines(client.post("/api/v1/train", json=body))
    p = out[0]["params"]
    assert p["bias_hh_l0"] == [0.0, 0.0, 0.0] and p["bias_ih_l0"] != p["bias_hh_l0"]
    assert out[0]["param_norms"]["bias_hh_l0"] == 0.0
    # the parameters of update 2's checkpoint give update 2's loss again
    again = lines(client.post("/api/v1/train", json={k: v for k, v in body.items() if k != "init"} | {
        "params": out[1]["params"], "updates": 1}))
    assert again[0]["loss"] == out[1]["loss"]


@pytest.mark.parametrize("change,field", [
    ({"start_update": 26}, "start_update"),
    ({"start_update": 0}, "start_update"),
    ({"resumable": "yes"}, "resumable"),
    ({"optimizer_state": [1]}, "optimizer_state"),
    ({"optimizer_state": {"step": 2, "exp_avg": {"W_hh": [[0.0]]}}}, "optimizer_state.exp_avg.W_hh"),
    ({"optimizer_state": {"step": 2, "exp_avg": {"U": [[0.0]]}}}, "optimizer_state.exp_avg.U"),
    ({"optimizer_state": {"step": 2, "momentum_buffer": {}}}, "optimizer_state.momentum_buffer"),
    ({"optimizer_state": {"step": 2}}, "optimizer_state.exp_avg"),
    ({"optimizer_state": {"step": "2"}}, "optimizer_state.step"),
])
def test_resume_refusals_name_their_field(client, change, field):
    r = client.post("/api/v1/train", json=BODY | change)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["code"], err


# ---------------------------------------------------------------- init.forget_bias


def test_forget_bias_sets_the_forget_gates_bias_only():
    cell = CELLS["lstm"]
    plain = init_params("nndl", 4, 3, 5, 2, None, cell)
    fb = init_params("nndl", 4, 3, 5, 2, None, cell, forget_bias=1.5)
    assert np.all(fb["b"][5:10] == 1.5) and np.all(fb["b_U"][5:10] == 0.0)
    for k in plain:
        keep = np.ones(plain[k].shape, bool)
        if k in ("b", "b_U"):
            keep[5:10] = False
        assert np.array_equal(plain[k][keep], fb[k][keep]), k
    with pytest.raises(ValueError):
        init_params("canonical", 0, 3, 5, 2, None, CELLS["gru"], forget_bias=1.0)


def test_forget_bias_through_the_api(client):
    body = {"cell": "lstm", "init": {"seed": 0, "hidden": 2, "forget_bias": 2}, "inputs": [[1.0], [0.0]], "targets": [[0.5], [0.1]]}
    r = client.post("/api/v1/bptt", json=body | {"fields": ["params"]})
    assert r.status_code == 200, r.text
    assert r.json()["params"]["b_ih"][2:4] == [2.0, 2.0] and r.json()["params"]["b_hh"][2:4] == [0.0, 0.0]
    for cell, fb, code in (("gru", 1.0, "conflict"), ("vanilla", 1.0, "conflict"), ("lstm", "1", "wrong_type"),
                           ("lstm", 1e9, "out_of_range")):
        r = client.post("/api/v1/bptt", json=body | {"cell": cell, "init": {"seed": 0, "hidden": 2, "forget_bias": fb}})
        assert r.status_code == 422 and r.json()["error"]["field"] == "init.forget_bias", r.text
        assert r.json()["error"]["code"] == code, r.text


@pytest.mark.parametrize("seed", [0, 1])
def test_an_lstm_learns_recall_after_20_steps_with_a_forget_bias_and_not_without(seed):
    task = TK.make("recall", delay=20, seed=0, N=32)
    data = TL.Data(task.inputs, task.targets, task.mask, task.loss, "mean")
    out = {}
    for fb in (None, 2.0):
        theta = init_params("canonical", seed, 4, 16, 4, None, CELLS["lstm"], fb)
        spec = TL.TrainSpec("lstm", "tanh", theta, data, "adam", {"lr": 0.01}, 300, None, 0, report_every=300)
        out[fb] = list(TL.train(spec))[-1].loss
    start = np.log(4)
    assert out[2.0] < 0.05 * start, out  # learned: the symbol is recalled
    assert out[None] > 0.4 * start, out  # f ≈ σ(0) = ½ at the start: 300 updates are not enough


# ---------------------------------------------------------------- what the training page reads


def test_delta_reach_reads_the_last_loss_row():
    dn = np.zeros((4, 4))
    dn[3, :4] = [1e-5, 0.02, 0.5, 1.0]  # the last loss row: steps back with ≥ 1 % of 1.0: 2
    dn[1, :2] = [1.0, 1.0]
    mask = np.array([False, True, False, True])
    assert TL.reach(dn, mask) == {"t": 4, "steps": 2, "first": 1e-5, "fraction": 0.01}
    assert TL.reach(dn, np.array([False, True, False, False]))["steps"] == 1
    assert TL.reach(np.zeros((4, 4)), mask)["steps"] is None
    assert TL.reach(dn, np.zeros(4, bool))["t"] is None
    over = dn.copy()
    over[3, 1] = np.inf
    assert TL.reach(over, mask)["first"] is None


def test_checkpoint_lines_carry_delta_reach(client):
    out = lines(client.post("/api/v1/train", json=BODY))
    for d in out:
        if "delta_norm" in d:
            row = np.array(d["delta_norm"][-1])  # recall: the loss is at the last step only
            r = d["delta_reach"]
            assert r["t"] == len(d["delta_norm"]) and r["first"] == pytest.approx(row[0] / row.max(), rel=1e-12)
            k = int(np.flatnonzero(row >= 0.01 * row.max())[0])
            assert r["steps"] == len(row) - 1 - k


def test_the_task_routes(client):
    listed = client.get("/api/v1/tasks").json()
    assert set(listed) == set(TK.TASKS) and listed["recall"]["options"]["delay"] == 10
    assert listed["chars"]["loss"] == "softmax_ce" and listed["echo"]["loss"] == "mse"
    r = client.post("/api/v1/task", json={"task": {"name": "recall", "delay": 4, "N": 5, "seed": 2}, "sequences": 2})
    assert r.status_code == 200, r.text
    d = r.json()
    task = TK.make("recall", delay=4, N=5, seed=2)
    assert np.array_equal(np.array(d["inputs"]), task.inputs[:2]) and np.array_equal(np.array(d["targets"]), task.targets[:2])
    assert d["loss_steps"] == "last" and d["options"]["T"] == 5
    assert d["target_classes"] == [[int(np.argmax(task.targets[b, -1]))] for b in range(2)]
    d = client.post("/api/v1/task", json={"task": {"name": "chars", "text": "zh", "T": 6}, "sequences": 1}).json()
    assert len(d["vocab"]) == len(d["inputs"][0][0]) and len(d["target_classes"][0]) == 6
    for body, field in (({"task": {"name": "echo", "N": 10**6}}, "task.N"), ({"task": {"name": "echo"}, "sequences": 0}, "sequences"),
                        ({"task": {"name": "nope"}}, "task.name"), ({"task": {"name": "echo"}, "x": 1}, "x")):
        r = client.post("/api/v1/task", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
