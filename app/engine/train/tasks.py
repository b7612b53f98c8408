"""Deterministic training sets for the training view (issue 13).

Every generator takes keyword options only, fills in the defaults, checks them (an
``OptionError`` naming the option) and returns a ``Task``: inputs (N, T, n), targets (N, T, p),
the loss that suits them and the steps that carry it. The same options (seed included) give
the same arrays bit for bit (numpy's PCG64 ``default_rng(seed)``; numpy keeps its streams
stable within a version). Steps are 0-based: index t is step t + 1.

- ``echo``   x_t ~ U(−1, 1)^n;  y_t = x_{t−delay} (mse), a loss at the steps t ≥ delay.
- ``recall`` x_0 = one-hot of a symbol s ∈ {0 … n−1}, then ``delay`` steps of zeros
             (T = delay + 1); y at the last step = one-hot s (softmax_ce), the loss only there.
- ``sum``    x_t ~ U(−1, 1)^n;  y_t = x_0 + … + x_t, the running sum (mse), every step.
- ``parity`` x_t ∈ {0, 1} (n = 1);  y_t = one-hot of (x_0 + … + x_t) mod 2, the parity of
             the bits so far (p = 2, softmax_ce), every step.
- ``chars``  next character, min-char-rnn style: N windows of T + 1 consecutive characters
             of a short text, starting at offsets drawn uniformly; x_t = one-hot of character
             t, y_t = one-hot of character t + 1 (softmax_ce), every step; n = p = the text's
             vocabulary (its distinct characters, in code-point order, in ``vocab``).
             ``text``: "en", William Shakespeare, Sonnet 18 (1609), or "zh", 《道德经》
             (Laozi, Dao De Jing) chapter 1, in simplified characters; both public domain,
             shipped in ``texts/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Callable

import numpy as np

from .errors import OptionError

#: every task's options and their defaults (the API lists them: GET /api/v1/tasks)
DEFAULTS: dict[str, dict[str, Any]] = {
    "echo": {"N": 32, "T": 20, "n": 1, "delay": 3, "seed": 0},
    "recall": {"N": 32, "delay": 10, "n": 4, "seed": 0},
    "sum": {"N": 32, "T": 20, "n": 1, "seed": 0},
    "parity": {"N": 32, "T": 20, "seed": 0},
    "chars": {"text": "en", "N": 32, "T": 25, "seed": 0},
}

#: the ``chars`` texts: option value → file under texts/
TEXTS = {"en": "en-sonnet18.txt", "zh": "zh-daodejing1.txt"}


@dataclass(frozen=True)
class Task:
    name: str
    #: every option, defaults filled in, and the sizes T and n that follow from them
    options: dict[str, Any]
    #: (N, T, n) inputs x_t
    inputs: np.ndarray
    #: (N, T, p) target rows y_t (one-hot rows with softmax_ce; zeros at steps without a loss)
    targets: np.ndarray
    loss: str  # "mse" | "softmax_ce"
    #: as the API takes it: "all", "last" or T booleans
    loss_steps: str | list[bool]
    #: (T,) True where step t carries a loss
    mask: np.ndarray
    #: chars: the character of each one-hot index
    vocab: tuple[str, ...] | None = None


def _int(options: dict[str, Any], name: str, lo: int, hi: int | None = None) -> int:
    v = options[name]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        want = f"an integer ≥ {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise OptionError(name, want, v)
    return int(v)


def _options(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise OptionError(unknown[0], "one of " + ", ".join(defaults), given[unknown[0]])
    out = defaults | given
    _int(out, "seed", 0)
    _int(out, "N", 1)
    return out


def _steps(mask: np.ndarray) -> str | list[bool]:
    if mask.all():
        return "all"
    if mask[-1] and not mask[:-1].any():
        return "last"
    return [bool(v) for v in mask]


def _one_hot(classes: np.ndarray, p: int) -> np.ndarray:
    return np.eye(p)[classes]


def echo(**given: Any) -> Task:
    """y_t = x_{t−delay}. Options: N (32), T (20), n (1), delay (3, < T), seed (0)."""
    o = _options(DEFAULTS["echo"], given)
    T, n = _int(o, "T", 1), _int(o, "n", 1)
    d = _int(o, "delay", 0, T - 1)
    X = np.random.default_rng(o["seed"]).uniform(-1.0, 1.0, size=(o["N"], T, n))
    Y = np.zeros_like(X)
    Y[:, d:] = X[:, : T - d]
    mask = np.arange(T) >= d
    return Task("echo", o, X, Y, "mse", _steps(mask), mask)


def recall(**given: Any) -> Task:
    """The first input at the end, after ``delay`` blank steps. Options: N (32), delay (10; T =
    delay + 1), n (4 symbols, ≥ 2), seed (0)."""
    o = _options(DEFAULTS["recall"], given)
    d, n = _int(o, "delay", 0), _int(o, "n", 2)
    T = d + 1
    s = np.random.default_rng(o["seed"]).integers(0, n, size=o["N"])
    X = np.zeros((o["N"], T, n))
    X[:, 0] = _one_hot(s, n)
    Y = np.zeros((o["N"], T, n))
    Y[:, -1] = _one_hot(s, n)
    mask = np.arange(T) == T - 1
    return Task("recall", o | {"T": T}, X, Y, "softmax_ce", _steps(mask), mask)


def running_sum(**given: Any) -> Task:
    """y_t = x_0 + … + x_t. Options: N (32), T (20), n (1), seed (0)."""
    o = _options(DEFAULTS["sum"], given)
    T, n = _int(o, "T", 1), _int(o, "n", 1)
    X = np.random.default_rng(o["seed"]).uniform(-1.0, 1.0, size=(o["N"], T, n))
    Y = np.cumsum(X, axis=1)
    mask = np.ones(T, bool)
    return Task("sum", o, X, Y, "mse", "all", mask)


def parity(**given: Any) -> Task:
    """y_t = parity of the bits x_0 … x_t (two classes). Options: N (32), T (20), seed (0)."""
    o = _options(DEFAULTS["parity"], given)
    T = _int(o, "T", 1)
    bits = np.random.default_rng(o["seed"]).integers(0, 2, size=(o["N"], T))
    X = bits[:, :, None].astype(float)
    Y = _one_hot(np.cumsum(bits, axis=1) % 2, 2)
    return Task("parity", o | {"n": 1}, X, Y, "softmax_ce", "all", np.ones(T, bool))


@cache
def text(name: str) -> str:
    """The shipped text ``name`` ("en" or "zh"), as stored (UTF-8, newlines kept)."""
    return resources.files(__package__).joinpath("texts", TEXTS[name]).read_text(encoding="utf-8")


def chars(**given: Any) -> Task:
    """Next character of a shipped text. Options: text ("en" | "zh"), N (32), T (25, at most the
    text's length − 1), seed (0)."""
    o = _options(DEFAULTS["chars"], given)
    if not isinstance(o["text"], str) or o["text"] not in TEXTS:  # (a list is not hashable)
        raise OptionError("text", "one of " + ", ".join(TEXTS), o["text"])
    s = text(o["text"])
    T = _int(o, "T", 1, len(s) - 1)
    vocab = tuple(sorted(set(s)))
    index = {c: i for i, c in enumerate(vocab)}
    codes = np.array([index[c] for c in s])
    starts = np.random.default_rng(o["seed"]).integers(0, len(s) - T, size=o["N"])
    windows = codes[starts[:, None] + np.arange(T + 1)]  # (N, T + 1)
    V = len(vocab)
    X = _one_hot(windows[:, :T], V)
    Y = _one_hot(windows[:, 1:], V)
    return Task("chars", o | {"n": V}, X, Y, "softmax_ce", "all", np.ones(T, bool), vocab)


#: the API's task names → generators
TASKS: dict[str, Callable[..., Task]] = {
    "echo": echo,
    "recall": recall,
    "sum": running_sum,
    "parity": parity,
    "chars": chars,
}


def planned(name: str, **given: Any) -> tuple[int, int, int, int]:
    """(N, T, n, p) of the task that ``make`` would generate, from its options alone (checked as
    ``make`` checks them), so that limits are checked before any array is made."""
    if not isinstance(name, str) or name not in TASKS:
        raise OptionError("name", "one of " + ", ".join(TASKS), name)
    o = _options(DEFAULTS[name], given)
    N = o["N"]
    if name == "recall":
        d, n = _int(o, "delay", 0), _int(o, "n", 2)
        return N, d + 1, n, n
    if name == "parity":
        return N, _int(o, "T", 1), 1, 2
    if name == "chars":
        if not isinstance(o["text"], str) or o["text"] not in TEXTS:
            raise OptionError("text", "one of " + ", ".join(TEXTS), o["text"])
        V = len(set(text(o["text"])))
        return N, _int(o, "T", 1, len(text(o["text"])) - 1), V, V
    T, n = _int(o, "T", 1), _int(o, "n", 1)
    return N, T, n, n


def make(name: str, **options: Any) -> Task:
    """The task of that name with its options (unknown names and options refused)."""
    if name not in TASKS:
        raise OptionError("name", "one of " + ", ".join(TASKS), name)
    return TASKS[name](**options)
