"""app/engine/train/optimizers.py: torch.optim's update rules, against torch.optim itself
(float64, several steps, random gradients, each option) where torch is installed, and against
hand-computed steps without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.train import optimizers as O
from app.engine.train.errors import OptionError

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install torch==2.13.0)")

SHAPES = {"W_hh": (5, 5), "b_h": (5,), "long": (203,)}  # 203: torch's vector kernels and their tail

#: (our name, torch.optim class name, options): every option of each, alone and together
CASES = [
    ("sgd", "SGD", {}),
    ("sgd", "SGD", {"lr": 0.1}),
    ("sgd", "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("sgd", "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", "SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    ("sgd", "SGD", {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("momentum", "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("adagrad", "Adagrad", {}),
    ("adagrad", "Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad", "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.2, "eps": 1e-6, "weight_decay": 0.1}),
    ("rmsprop", "RMSprop", {}),
    ("rmsprop", "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", "RMSprop", {"lr": 0.01, "momentum": 0.5}),
    ("rmsprop", "RMSprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", "RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("adam", "Adam", {}),
    ("adam", "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", "Adam", {"lr": 0.01, "betas": (0.3, 0.9)}),  # 1 − β₁ ≥ 0.5: torch's lerp's other branch
    ("adam", "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adam", "Adam", {"lr": 0.01, "amsgrad": True}),
    ("adam", "Adam", {"lr": 0.01, "betas": (0.0, 0.5), "amsgrad": True, "weight_decay": 0.01}),
]


def gradients(rng, steps):
    """Gradients whose scale changes over the steps (so amsgrad's max and centring matter)."""
    return [{k: rng.normal(size=s) * (10.0 if i % 4 == 0 else 0.3) for k, s in SHAPES.items()} for i in range(steps)]


@needs_torch
@pytest.mark.parametrize("name,torch_name,options", CASES)
def test_updates_equal_torch_optim(name, torch_name, options):
    rng = np.random.default_rng(len(str(options)))
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    topt = getattr(torch.optim, torch_name)(list(tparams.values()), **options)
    opt = O.make(name, **options)
    for g in gradients(rng, 12):
        for k, t in tparams.items():
            t.grad = torch.tensor(g[k])
        topt.step()
        assert opt.step(params, g) is params
        for k, t in tparams.items():
            want = t.detach().numpy()
            # equal to rounding: torch's vector kernels fuse some multiply–adds, numpy cannot
            np.testing.assert_allclose(params[k], want, rtol=0, atol=1e-15 * np.abs(want).max(), err_msg=k)
            # and the state, under torch.optim's own names
            tstate = topt.state[t]
            assert opt.state[k]["step"] == int(tstate.get("step", opt.state[k]["step"]))
            for key, v in opt.state[k].items():
                if key == "step":
                    continue
                tv = tstate[key].numpy()
                np.testing.assert_allclose(v, tv, rtol=0, atol=1e-15 * max(np.abs(tv).max(), 1e-300), err_msg=key)


@needs_torch
@pytest.mark.parametrize(
    "name,torch_name,options",
    [
        ("sgd", "SGD", {"lr": -1.0}),
        ("sgd", "SGD", {"momentum": -0.1}),
        ("sgd", "SGD", {"weight_decay": -1.0}),
        ("sgd", "SGD", {"nesterov": True}),
        ("sgd", "SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
        ("adagrad", "Adagrad", {"lr_decay": -1.0}),
        ("adagrad", "Adagrad", {"initial_accumulator_value": -1.0}),
        ("adagrad", "Adagrad", {"eps": -1.0}),
        ("rmsprop", "RMSprop", {"alpha": -0.5}),
        ("rmsprop", "RMSprop", {"momentum": -0.5}),
        ("rmsprop", "RMSprop", {"eps": -1e-8}),
        ("adam", "Adam", {"betas": (1.0, 0.999)}),
        ("adam", "Adam", {"betas": (0.9, -0.1)}),
        ("adam", "Adam", {"eps": -1.0}),
        ("adam", "Adam", {"weight_decay": -1.0}),
    ],
)
def test_refuses_what_torch_optim_refuses(name, torch_name, options):
    with pytest.raises(ValueError):
        getattr(torch.optim, torch_name)([torch.zeros(2, requires_grad=True)], **options)
    with pytest.raises(OptionError) as e:
        O.make(name, **options)
    assert e.value.field in options


@needs_torch
@pytest.mark.parametrize("name,torch_name", [("sgd", "SGD"), ("adagrad", "Adagrad"), ("rmsprop", "RMSprop"), ("adam", "Adam")])
def test_defaults_are_torch_optims(name, torch_name):
    t = getattr(torch.optim, torch_name)([torch.zeros(1, requires_grad=True)]).defaults
    ours = O.OPTIMIZERS[name].defaults
    for k, v in ours.items():
        assert t[k] == v, k


# ---------------------------------------------------------------- without torch: hand-computed steps


def one(name, g, theta=1.0, steps=1, **options):
    """θ after ``steps`` updates with the gradients g (a number or a list, one per step)."""
    opt = O.make(name, **options)
    params = {"w": np.array([theta])}
    gs = g if isinstance(g, list) else [g] * steps
    for v in gs:
        opt.step(params, {"w": np.array([v])})
    return params["w"][0], opt


def test_sgd_by_hand():
    assert one("sgd", 0.5, lr=0.1)[0] == pytest.approx(1 - 0.1 * 0.5, rel=1e-15, abs=0)
    # weight decay 0.2: g = 0.5 + 0.2·1
    assert one("sgd", 0.5, lr=0.1, weight_decay=0.2)[0] == pytest.approx(1 - 0.1 * 0.7, rel=1e-15, abs=0)
    # momentum 0.9: b₁ = g₁ = 1, θ₁ = 1 − 0.1; b₂ = 0.9 + 2 = 2.9, θ₂ = 0.9 − 0.29
    assert one("sgd", [1.0, 2.0], lr=0.1, momentum=0.9)[0] == pytest.approx(0.61, rel=1e-15, abs=0)
    # dampening 0.5: b₂ = 0.9·1 + 0.5·2 = 1.9 (the first buffer is g itself, undamped)
    assert one("sgd", [1.0, 2.0], lr=0.1, momentum=0.9, dampening=0.5)[0] == pytest.approx(0.9 - 0.19, rel=1e-15, abs=0)
    # nesterov: step with g + μ b: 1 + 0.9·1 = 1.9, then 2 + 0.9·2.9 = 4.61
    assert one("sgd", [1.0, 2.0], lr=0.1, momentum=0.9, nesterov=True)[0] == pytest.approx(1 - 0.19 - 0.461, rel=1e-15, abs=0)
    # "momentum" is SGD with momentum 0.9 by default
    assert one("momentum", [1.0, 2.0], lr=0.1)[0] == pytest.approx(0.61, rel=1e-15, abs=0)


def test_adagrad_by_hand():
    # G = 4, θ = 1 − 0.1·2/(2 + 1e-10)
    assert one("adagrad", 2.0, lr=0.1)[0] == pytest.approx(1 - 0.2 / (2 + 1e-10), rel=1e-15, abs=0)
    # second step with lr_decay 0.5: clr = 0.1/1.5, G = 4 + 1 = 5
    th1 = 1 - 0.2 / (2 + 1e-10)
    want = th1 - (0.1 / 1.5) * 1.0 / (math.sqrt(5) + 1e-10)
    assert one("adagrad", [2.0, 1.0], lr=0.1, lr_decay=0.5)[0] == pytest.approx(want, rel=1e-15, abs=0)
    # initial accumulator 1: G = 1 + 4
    got, opt = one("adagrad", 2.0, lr=0.1, initial_accumulator_value=1.0)
    assert got == pytest.approx(1 - 0.2 / (math.sqrt(5) + 1e-10), rel=1e-15, abs=0)
    assert opt.state["w"]["sum"][0] == 5.0 and opt.state["w"]["step"] == 1


def test_rmsprop_by_hand():
    # v = 0.01·4 = 0.04, θ = 1 − 0.01·2/(0.2 + 1e-8)
    assert one("rmsprop", 2.0)[0] == pytest.approx(1 - 0.02 / (0.2 + 1e-8), rel=1e-15, abs=0)
    # centered: ḡ = 0.01·2 = 0.02, a = √(0.04 − 0.0004) + 1e-8
    want = 1 - 0.02 / (math.sqrt(0.04 - 0.0004) + 1e-8)
    assert one("rmsprop", 2.0, centered=True)[0] == pytest.approx(want, rel=1e-14, abs=0)
    # momentum 0.5, two steps of g = 2: a₁ = 0.2 + 1e-8, b₁ = 2/a₁; v₂ = 0.99·0.04 + 0.04, a₂ = √v₂ + 1e-8
    a1 = 0.2 + 1e-8
    a2 = math.sqrt(0.99 * 0.04 + 0.04) + 1e-8
    b1 = 2 / a1
    b2 = 0.5 * b1 + 2 / a2
    assert one("rmsprop", 2.0, steps=2, momentum=0.5)[0] == pytest.approx(1 - 0.01 * b1 - 0.01 * b2, rel=1e-14, abs=0)


def test_adam_by_hand():
    # first step: m̂ = g, v̂ = g², θ = 1 − lr·g/(|g| + eps)
    assert one("adam", 2.0, lr=0.1)[0] == pytest.approx(1 - 0.1 * 2 / (2 + 1e-8), rel=1e-15, abs=0)
    # two steps, g = 2 then −1: m₂ = 0.09·2 + 0.1·(−1) = 0.08; v₂ = 0.999·0.004 + 0.001 = 0.004996
    th1 = 1 - 0.1 * 2 / (2 + 1e-8)
    m2, v2 = 0.9 * 0.2 - 0.1, 0.999 * 0.004 + 0.001
    want = th1 - (0.1 / (1 - 0.81)) * m2 / (math.sqrt(v2) / math.sqrt(1 - 0.999**2) + 1e-8)
    assert one("adam", [2.0, -1.0], lr=0.1)[0] == pytest.approx(want, rel=1e-14, abs=0)
    # amsgrad: after a large then a small gradient the maximum v is kept
    _, opt = one("adam", [10.0, 0.0], lr=0.1, amsgrad=True)
    s = opt.state["w"]
    assert s["max_exp_avg_sq"][0] == pytest.approx(0.001 * 100, rel=1e-15) and s["exp_avg_sq"][0] < s["max_exp_avg_sq"][0]


def test_same_gradients_give_the_same_parameters_bit_for_bit():
    def run():
        rng = np.random.default_rng(5)
        params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
        opt = O.make("adam", lr=0.01, amsgrad=True)
        for g in gradients(rng, 5):
            opt.step(params, g)
        return params

    a, b = run(), run()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()


def test_parameters_without_a_gradient_are_left_alone():
    params = {"a": np.ones(2), "b": np.ones(2)}
    opt = O.make("sgd", lr=0.5)
    opt.step(params, {"a": np.ones(2)})
    assert params["a"].tolist() == [0.5, 0.5] and params["b"].tolist() == [1.0, 1.0] and "b" not in opt.state


@pytest.mark.parametrize(
    "name,options,field",
    [
        ("nadam", {}, "name"),
        ("sgd", {"betas": (0.9, 0.99)}, "betas"),
        ("adam", {"lr": float("nan")}, "lr"),
        ("adam", {"lr": "0.1"}, "lr"),
        ("adam", {"betas": 0.9}, "betas"),
        ("adam", {"amsgrad": 1}, "amsgrad"),
        ("rmsprop", {"centered": "yes"}, "centered"),
        ("sgd", {"nesterov": True}, "nesterov"),
        ("adagrad", {"eps": -1.0}, "eps"),
    ],
)
def test_bad_options_name_their_field(name, options, field):
    with pytest.raises(OptionError) as e:
        O.make(name, **options)
    assert e.value.field == field
    assert field in str(e.value)
