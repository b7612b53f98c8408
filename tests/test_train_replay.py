"""The training building blocks together: clipping as torch.nn.utils does it, and a run of k
full-batch updates (a task from train.tasks, gradients from the independent reference, an
optimizer from train.optimizers) replayed in PyTorch (nn.LSTM / nn.GRU + nn.Linear loaded by
state_dict names, torch.optim, clip_grad_norm_) to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import reference_gated as R

from app.engine.train import clipping as CL
from app.engine.train import optimizers as O
from app.engine.train import tasks as TK
from app.engine.train.errors import OptionError

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install torch==2.13.0)")


def test_clip_by_norm_by_hand():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # ‖g‖ = 5
    out, norm, clipped = CL.clip_grad_norm(g, 1.0)
    assert norm == 5.0 and clipped
    coef = 1.0 / (5 + 1e-6)
    assert out["a"].tolist() == [3.0 * coef, 0.0] and out["b"].tolist() == [[4.0 * coef]]
    # at the threshold PyTorch's rule still scales, by 5/(5 + 1e-6); above it, nothing changes
    out, _, clipped = CL.clip_grad_norm(g, 5.0)
    assert clipped and out["a"][0] == 3.0 * (5.0 / (5 + 1e-6))
    out, _, clipped = CL.clip_grad_norm(g, 5.00001)
    assert not clipped and out["a"].tolist() == [3.0, 0.0]
    assert CL.clip_grad_norm({}, 1.0)[1] == 0.0


def test_clip_by_value_by_hand():
    out, norm, changed = CL.clip_grad_value({"a": np.array([-3.0, 0.5, 2.0])}, 1.0)
    assert out["a"].tolist() == [-1.0, 0.5, 1.0] and changed and norm == pytest.approx(np.sqrt(13.25))
    assert not CL.clip_grad_value({"a": np.array([0.5])}, 1.0)[2]


@pytest.mark.parametrize("bad", (-1.0, float("nan"), float("inf"), "1", True))
def test_bad_thresholds_name_their_field(bad):
    with pytest.raises(OptionError) as e:
        CL.clip_grad_norm({"a": np.ones(2)}, bad)
    assert e.value.field == "max_norm"
    with pytest.raises(OptionError) as e:
        CL.clip_grad_value({"a": np.ones(2)}, bad)
    assert e.value.field == "clip_value"


@needs_torch
@pytest.mark.parametrize("max_norm", (0.0, 0.5, 3.0, 1e6))
def test_clip_by_norm_equals_torch(max_norm):
    rng = np.random.default_rng(int(max_norm * 10) % 7)
    g = {"W": rng.normal(size=(7, 5)) * 3, "b": rng.normal(size=203), "c": rng.normal(size=1)}
    ts = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
    for t, v in zip(ts, g.values()):
        t.grad = torch.tensor(v)
    norm = torch.nn.utils.clip_grad_norm_(ts, max_norm).item()
    out, ours, _ = CL.clip_grad_norm(g, max_norm)
    assert ours == pytest.approx(norm, rel=1e-15, abs=0)
    for (k, v), t in zip(out.items(), ts):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-15, atol=0, err_msg=k)


@needs_torch
def test_clip_by_value_equals_torch():
    rng = np.random.default_rng(3)
    g = {"W": rng.normal(size=(4, 3)) * 2}
    t = torch.zeros((4, 3), dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g["W"])
    torch.nn.utils.clip_grad_value_([t], 0.7)
    np.testing.assert_array_equal(CL.clip_grad_value(g, 0.7)[0]["W"], t.grad.numpy())


# ---------------------------------------------------------------- a training run replayed in PyTorch

RUNS = [
    # (cell, task, task options, optimizer, options, clip max_norm)
    ("lstm", "echo", {"N": 4, "T": 6, "n": 2, "delay": 2}, "sgd", {"lr": 0.5}, 0.3),
    ("gru", "echo", {"N": 3, "T": 5, "n": 1, "delay": 1}, "momentum", {"lr": 0.2, "momentum": 0.9}, None),
    ("lstm", "parity", {"N": 4, "T": 5}, "adam", {"lr": 0.05}, None),
    ("gru", "recall", {"N": 5, "delay": 4, "n": 3}, "adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}, 0.05),
    ("gru", "sum", {"N": 3, "T": 4, "n": 2}, "rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True}, None),
    ("lstm", "chars", {"text": "zh", "N": 2, "T": 5}, "adagrad", {"lr": 0.1, "lr_decay": 0.01}, 0.05),
]


@needs_torch
@pytest.mark.parametrize("cell,task,task_options,opt_name,opt_options,max_norm", RUNS)
def test_a_training_run_replays_in_pytorch(cell, task, task_options, opt_name, opt_options, max_norm):
    m, updates = 4, 6
    data = TK.make(task, seed=11, **task_options)
    N, T, n = data.inputs.shape
    p = data.targets.shape[-1]
    G = {"lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(m)
    params = {
        "weight_ih_l0": rng.uniform(-s, s, size=(G * m, n)),
        "weight_hh_l0": rng.uniform(-s, s, size=(G * m, m)),
        "bias_ih_l0": rng.uniform(-s, s, size=G * m),
        "bias_hh_l0": rng.uniform(-s, s, size=G * m),
        "linear.weight": rng.uniform(-s, s, size=(p, m)),
        "linear.bias": rng.uniform(-s, s, size=p),
    }
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](n, m, batch_first=True).double()
    lin = torch.nn.Linear(m, p).double()
    rnn.load_state_dict({k: torch.tensor(v) for k, v in params.items() if not k.startswith("linear.")})
    lin.load_state_dict({k.removeprefix("linear."): torch.tensor(v) for k, v in params.items() if k.startswith("linear.")})
    torch_params = dict(rnn.named_parameters()) | {"linear." + k: v for k, v in lin.named_parameters()}
    torch_opt = getattr(torch.optim, {"momentum": "SGD"}.get(opt_name, O.OPTIMIZERS[opt_name].__name__))(
        list(torch_params.values()), **opt_options
    )
    opt = O.make(opt_name, **opt_options)
    X, Y = torch.tensor(data.inputs), torch.tensor(data.targets)
    w = torch.tensor(R.Case(cell, params, data.inputs, mask=data.mask, reduction="mean").step_weights)
    losses, clipped = [], []
    for _ in range(updates):
        case = R.Case(cell, params, data.inputs, loss=data.loss, Y=data.targets, mask=data.mask, reduction="mean")
        ref = R.bptt(case)
        grads = {k: ref["grads"][k] for k in params}
        if max_norm is not None:
            grads, _, did = CL.clip_grad_norm(grads, max_norm)
            clipped.append(did)
        opt.step(params, grads)

        torch_opt.zero_grad()
        H, _ = rnn(X)
        o = lin(H)
        if data.loss == "mse":
            per = 0.5 * ((o - Y) ** 2).sum(-1)
        else:
            per = -(Y * torch.log_softmax(o, -1)).sum(-1)
        L = (per * w).sum()
        L.backward()
        losses.append((ref["loss"], L.item()))
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(list(torch_params.values()), max_norm)
        torch_opt.step()
    for a, b in losses:
        assert a == pytest.approx(b, rel=1e-12)
    assert losses[-1][0] < losses[0][0]  # it learns something
    assert max_norm is None or any(clipped)
    for k, v in params.items():
        want = torch_params[k].detach().numpy()
        np.testing.assert_allclose(v, want, rtol=0, atol=1e-12 * np.abs(want).max(), err_msg=k)
