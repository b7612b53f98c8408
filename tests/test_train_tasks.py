"""app/engine/train/tasks.py: shapes, determinism, and each task's definition checked on the
arrays with plain loops."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.train import tasks as TK
from app.engine.train.errors import OptionError

DEFAULTS = {
    "echo": dict(N=32, T=20, n=1, p=1),
    "recall": dict(N=32, T=11, n=4, p=4),
    "sum": dict(N=32, T=20, n=1, p=1),
    "parity": dict(N=32, T=20, n=1, p=2),
}
SOME = {
    "echo": {"N": 5, "T": 9, "n": 3, "delay": 4, "seed": 7},
    "recall": {"N": 6, "delay": 20, "n": 3, "seed": 7},
    "sum": {"N": 4, "T": 6, "n": 2, "seed": 7},
    "parity": {"N": 5, "T": 12, "seed": 7},
    "chars": {"N": 5, "T": 10, "seed": 7},
}


@pytest.mark.parametrize("name", TK.TASKS)
def test_same_seed_same_arrays_bit_for_bit_and_another_seed_others(name):
    a, b = TK.make(name, **SOME[name]), TK.make(name, **SOME[name])
    assert a.inputs.tobytes() == b.inputs.tobytes() and a.targets.tobytes() == b.targets.tobytes()
    assert a.inputs.dtype == a.targets.dtype == np.float64
    c = TK.make(name, **(SOME[name] | {"seed": 8}))
    assert c.inputs.shape == a.inputs.shape
    assert c.inputs.tobytes() != a.inputs.tobytes()


@pytest.mark.parametrize("name", DEFAULTS)
def test_default_shapes(name):
    t = TK.make(name)
    d = DEFAULTS[name]
    assert t.inputs.shape == (d["N"], d["T"], d["n"])
    assert t.targets.shape == (d["N"], d["T"], d["p"])
    assert t.mask.shape == (d["T"],) and t.mask.dtype == bool
    assert t.options["T"] == d["T"] and t.options["n"] == d["n"] and t.options["seed"] == 0


@pytest.mark.parametrize("name", TK.TASKS)
def test_loss_steps_say_what_the_mask_says(name):
    t = TK.make(name, **SOME[name])
    want = {"all": np.ones(len(t.mask), bool), "last": np.arange(len(t.mask)) == len(t.mask) - 1}
    mask = want[t.loss_steps] if isinstance(t.loss_steps, str) else np.array(t.loss_steps)
    assert (mask == t.mask).all()
    assert t.loss in ("mse", "softmax_ce")
    if t.loss == "softmax_ce":  # one-hot rows at the loss steps, as /bptt takes them
        rows = t.targets[:, t.mask]
        assert ((rows == 0) | (rows == 1)).all() and (rows.sum(axis=-1) == 1).all()


@pytest.mark.parametrize("delay", (0, 1, 4, 8))
def test_echo_is_the_input_delay_steps_back(delay):
    t = TK.echo(N=3, T=9, n=2, delay=delay, seed=1)
    X, Y = t.inputs, t.targets
    for b in range(3):
        for s in range(9):
            if s >= delay:
                assert (Y[b, s] == X[b, s - delay]).all()
                assert t.mask[s]
            else:
                assert not t.mask[s] and (Y[b, s] == 0).all()
    assert (np.abs(X) <= 1).all() and X.std() > 0.3
    assert t.loss == "mse" and t.loss_steps == {0: "all", 8: "last"}.get(delay, [s >= delay for s in range(9)])


@pytest.mark.parametrize("delay", (0, 1, 20))
def test_recall_is_the_first_input_at_the_end(delay):
    t = TK.recall(N=40, delay=delay, n=3, seed=2)
    X, Y = t.inputs, t.targets
    assert X.shape == (40, delay + 1, 3) and t.loss == "softmax_ce"
    assert t.mask[-1] and not t.mask[:-1].any()
    for b in range(40):
        s = int(np.argmax(X[b, 0]))
        assert X[b, 0].tolist() == [float(i == s) for i in range(3)]
        assert (X[b, 1:] == 0).all()
        assert Y[b, -1].tolist() == X[b, 0].tolist() and (Y[b, :-1] == 0).all()
    assert len({int(np.argmax(x)) for x in X[:, 0]}) == 3  # every symbol occurs


def test_sum_is_the_running_sum():
    t = TK.running_sum(N=4, T=6, n=2, seed=3)
    for b in range(4):
        acc = np.zeros(2)
        for s in range(6):
            acc = acc + t.inputs[b, s]
            assert (t.targets[b, s] == acc).all()
    assert t.loss == "mse" and t.loss_steps == "all"


def test_parity_is_of_the_bits_so_far():
    t = TK.parity(N=6, T=12, seed=4)
    assert set(np.unique(t.inputs)) == {0.0, 1.0}
    for b in range(6):
        bit = 0
        for s in range(12):
            bit ^= int(t.inputs[b, s, 0])
            assert t.targets[b, s].tolist() == [float(bit == 0), float(bit == 1)]


@pytest.mark.parametrize("text", TK.TEXTS)
def test_chars_is_the_next_character_of_the_shipped_text(text):
    s = TK.text(text)
    t = TK.chars(text=text, N=8, T=15, seed=5)
    assert t.vocab == tuple(sorted(set(s))) and t.inputs.shape == (8, 15, len(t.vocab))
    for b in range(8):
        x = "".join(t.vocab[i] for i in t.inputs[b].argmax(axis=-1))
        y = "".join(t.vocab[i] for i in t.targets[b].argmax(axis=-1))
        assert (t.inputs[b].sum(axis=-1) == 1).all() and (t.targets[b].sum(axis=-1) == 1).all()
        assert x[1:] == y[:-1] and (x + y[-1]) in s  # T + 1 consecutive characters of the text
    # the longest window is the whole text
    whole = TK.chars(text=text, N=2, T=len(s) - 1)
    assert "".join(whole.vocab[i] for i in whole.inputs[0].argmax(axis=-1)) == s[:-1]


def test_the_texts_are_the_ones_shipped():
    en, zh = TK.text("en"), TK.text("zh")
    assert en.startswith("Shall I compare thee to a summer's day?\n") and en.endswith("gives life to thee.\n")
    assert zh.startswith("道可道，非常道；名可名，非常名。") and "玄之又玄，众妙之门。" in zh
    assert 500 < len(en) < 1000 and 50 < len(zh) < 200


@pytest.mark.parametrize(
    "name,options,field",
    [
        ("copy", {}, "name"),
        ("echo", {"delay": 20, "T": 20}, "delay"),
        ("echo", {"delay": -1}, "delay"),
        ("echo", {"T": 0}, "T"),
        ("echo", {"N": 0}, "N"),
        ("echo", {"n": 1.5}, "n"),
        ("echo", {"seed": -1}, "seed"),
        ("echo", {"seed": True}, "seed"),
        ("recall", {"n": 1}, "n"),
        ("recall", {"T": 5}, "T"),  # recall's T follows from delay
        ("parity", {"n": 2}, "n"),
        ("chars", {"text": "fr"}, "text"),
        ("chars", {"T": 10_000}, "T"),
    ],
)
def test_bad_options_name_their_field(name, options, field):
    with pytest.raises(OptionError) as e:
        TK.make(name, **options)
    assert e.value.field == field


def test_the_texts_are_package_data():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "app.engine.train" in conf["packages"]
    assert "texts/*.txt" in conf["package-data"]["app.engine.train"]
    for f in TK.TEXTS.values():
        assert (root / "app" / "engine" / "train" / "texts" / f).is_file()


def test_no_web_imports():
    import ast
    from pathlib import Path

    for f in (Path(__file__).resolve().parent.parent / "app" / "engine" / "train").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                assert n.split(".")[0] not in ("fastapi", "starlette", "pydantic", "uvicorn", "app"), (f, n)
