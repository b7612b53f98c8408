"""torch.optim's update rules over a dict of named float64 arrays.

Each optimizer takes torch.optim's keyword names with torch.optim's defaults, validates them as
torch.optim does (an ``OptionError`` naming the keyword), keeps its state as plain arrays per
parameter name, and updates the parameters in place with ``step(params, grads)``, in the
operation order of torch.optim's single-tensor path (the one CPU tensors take), so that a run
replays in PyTorch to rounding. (PyTorch's vectorised CPU kernels use fused multiply–adds in
some operations, which numpy has not; the two then differ in the last bit of some entries.)

With g the gradient at update t (t = 1, 2, …; after any clipping, which is the caller's):

    weight decay λ (every optimizer):  g ← g + λ θ
    SGD       momentum μ: b ← g (t = 1), b ← μ b + (1 − dampening) g; g ← g + μ b (nesterov) or b
              θ ← θ − lr g
    Adagrad   G ← G + g² (G starts at initial_accumulator_value);
              θ ← θ − lr / (1 + (t − 1) lr_decay) · g / (√G + eps)
    RMSprop   v ← α v + (1 − α) g²;  centered: ḡ ← ḡ + (1 − α)(g − ḡ), a = √(v − ḡ²) + eps,
              otherwise a = √v + eps;  momentum μ > 0: b ← μ b + g / a, θ ← θ − lr b;
              otherwise θ ← θ − lr g / a
    Adam      m ← m + (1 − β₁)(g − m),  v ← β₂ v + (1 − β₂) g²  (amsgrad: v̂ ← max(v̂, v), used for v)
              θ ← θ − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

``OPTIMIZERS`` names them as the API does: "sgd", "momentum" (SGD whose momentum defaults to
0.9; torch.optim.SGD's own default is 0), "adagrad", "rmsprop", "adam".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import OptionError


def _nonnegative(options: dict[str, Any], *names: str) -> None:
    for name in names:
        v = options[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise OptionError(name, "a finite number ≥ 0", v)


def _flag(options: dict[str, Any], name: str) -> None:
    if not isinstance(options[name], bool):
        raise OptionError(name, "true or false", options[name])


class Optimizer:
    """Base: ``defaults`` are torch.optim's keyword defaults; ``options`` the values in use;
    ``state[name]`` a dict of arrays (and ``step``, the number of updates made) per parameter."""

    defaults: dict[str, Any] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise OptionError(unknown[0], "one of " + ", ".join(self.defaults), options[unknown[0]])
        self.options = dict(self.defaults) | options
        self._validate()
        self.options = {k: (v if isinstance(v, (bool, tuple)) else float(v)) for k, v in self.options.items()}
        #: name → {"step": int, and the optimizer's arrays, each of the parameter's shape}
        self.state: dict[str, dict[str, Any]] = {}

    def _validate(self) -> None:
        _nonnegative(self.options, *(k for k, v in self.defaults.items() if not isinstance(v, (bool, tuple))))

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One update of every parameter that has a gradient, in place; returns ``params``."""
        for name, theta in params.items():
            if name not in grads:
                continue
            g = np.asarray(grads[name], dtype=np.float64)
            if g.shape != theta.shape:
                raise ValueError(f"grads[{name!r}] has shape {g.shape}, the parameter {theta.shape}")
            state = self.state.setdefault(name, self._init_state(theta))
            state["step"] += 1
            theta[...] = self._update(theta, g, state)
        return params

    def _init_state(self, theta: np.ndarray) -> dict[str, Any]:
        return {"step": 0}

    def buffers(self) -> tuple[str, ...]:
        """The names of the arrays this optimizer keeps per parameter (with these options)."""
        return tuple(k for k in self._init_state(np.zeros(1)) if k != "step")

    def export_state(self) -> dict[str, Any]:
        """The whole state as plain data: {"step": updates made, buffer: {parameter: array}}
        (a copy; ``load_state`` takes it back, so a run resumes bit for bit)."""
        steps = {st["step"] for st in self.state.values()}
        out: dict[str, Any] = {"step": max(steps) if steps else 0}
        for name, st in self.state.items():
            for k, v in st.items():
                if k != "step" and v is not None:
                    out.setdefault(k, {})[name] = np.array(v, copy=True)
        return out

    def load_state(self, state: dict[str, Any], params: dict[str, np.ndarray]) -> None:
        """Take an ``export_state`` back for ``params`` (an ``OptionError`` naming what does not
        fit: an unknown buffer, a missing parameter, a wrong shape). With step 0 the buffers may
        be left out (they start as at the first update)."""
        if not isinstance(state, dict):
            raise OptionError("optimizer_state", "an object {\"step\": k, buffer: {parameter: array}}", state)
        step = state.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise OptionError("optimizer_state.step", "an integer ≥ 0 (the updates made)", step)
        allowed = self.buffers()
        for k in state:
            if k != "step" and k not in allowed:
                want = "step" + "".join(", " + b for b in allowed)
                raise OptionError(f"optimizer_state.{k}", f"one of {want} ({type(self).__name__} with these options)", k)
        if step > 0:
            for k in allowed:
                if k not in state:
                    raise OptionError(f"optimizer_state.{k}", f"the {k} of every parameter (step {step} > 0)", "nothing")
        self.state = {}
        for name, theta in params.items():
            st = self._init_state(theta)
            st["step"] = int(step)
            for k in allowed:
                if k not in state:
                    continue
                per = state[k]
                if not isinstance(per, dict) or name not in per:
                    raise OptionError(f"optimizer_state.{k}.{name}", f"an array of shape {theta.shape}", "nothing")
                a = np.array(per[name], dtype=np.float64)
                if a.shape != theta.shape:
                    raise OptionError(f"optimizer_state.{k}.{name}", f"an array of shape {theta.shape}", f"shape {a.shape}")
                if not np.isfinite(a).all():
                    raise OptionError(f"optimizer_state.{k}.{name}", "finite numbers", "a number that is not finite")
                st[k] = a
            self.state[name] = st
        extra = set()
        for k in allowed:
            if isinstance(state.get(k), dict):
                extra |= set(state[k]) - set(params)
        if extra:
            name = sorted(extra)[0]
            raise OptionError("optimizer_state", "buffers of the model's parameters " + ", ".join(params), name)

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _decay(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        wd = self.options["weight_decay"]
        return g + wd * theta if wd != 0 else g


class SGD(Optimizer):
    """torch.optim.SGD: lr, momentum, dampening, weight_decay, nesterov."""

    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}

    def _validate(self) -> None:
        _flag(self.options, "nesterov")
        _nonnegative(self.options, "lr", "momentum", "weight_decay")
        d = self.options["dampening"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d):
            raise OptionError("dampening", "a finite number", d)
        if self.options["nesterov"] and (self.options["momentum"] <= 0 or d != 0):
            raise OptionError("nesterov", "nesterov only with momentum > 0 and dampening 0", True)

    def _init_state(self, theta):
        # the buffer appears at the first update (torch.optim's momentum_buffer), named here so
        # that export/load know it
        return {"step": 0, "momentum_buffer": None} if self.options["momentum"] != 0 else {"step": 0}

    def _update(self, theta, g, state):
        o = self.options
        g = self._decay(theta, g)
        mu = o["momentum"]
        if mu != 0:
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                state["momentum_buffer"] = buf * mu + (1 - o["dampening"]) * g
            buf = state["momentum_buffer"]
            g = g + mu * buf if o["nesterov"] else buf
        return theta + (-o["lr"]) * g


class Momentum(SGD):
    """SGD with momentum 0.9 unless given (the API's "momentum")."""

    defaults = SGD.defaults | {"momentum": 0.9}


class Adagrad(Optimizer):
    """torch.optim.Adagrad: lr, lr_decay, weight_decay, initial_accumulator_value, eps."""

    defaults = {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10}

    def _init_state(self, theta):
        return {"step": 0, "sum": np.full_like(theta, self.options["initial_accumulator_value"])}

    def _update(self, theta, g, state):
        o = self.options
        g = self._decay(theta, g)
        clr = o["lr"] / (1 + (state["step"] - 1) * o["lr_decay"])
        state["sum"] = state["sum"] + g * g
        std = np.sqrt(state["sum"]) + o["eps"]
        return theta + (-clr * g) / std


class RMSprop(Optimizer):
    """torch.optim.RMSprop: lr, alpha, eps, weight_decay, momentum, centered."""

    defaults = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False}

    def _validate(self) -> None:
        _flag(self.options, "centered")
        _nonnegative(self.options, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _init_state(self, theta):
        state = {"step": 0, "square_avg": np.zeros_like(theta)}
        if self.options["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(theta)
        if self.options["centered"]:
            state["grad_avg"] = np.zeros_like(theta)
        return state

    def _update(self, theta, g, state):
        o = self.options
        g = self._decay(theta, g)
        alpha = o["alpha"]
        state["square_avg"] = state["square_avg"] * alpha + ((1 - alpha) * g) * g
        if o["centered"]:
            ga = state["grad_avg"]
            state["grad_avg"] = ga + (1 - alpha) * (g - ga)
            ga = state["grad_avg"]
            avg = np.sqrt(state["square_avg"] + (-ga) * ga)
        else:
            avg = np.sqrt(state["square_avg"])
        avg = avg + o["eps"]
        if o["momentum"] > 0:
            state["momentum_buffer"] = state["momentum_buffer"] * o["momentum"] + g / avg
            return theta + (-o["lr"]) * state["momentum_buffer"]
        return theta + (-o["lr"] * g) / avg


class Adam(Optimizer):
    """torch.optim.Adam: lr, betas, eps, weight_decay, amsgrad (L2 weight decay, as torch's
    default ``decoupled_weight_decay=False``)."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}

    def _validate(self) -> None:
        _flag(self.options, "amsgrad")
        _nonnegative(self.options, "lr", "eps", "weight_decay")
        betas = self.options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise OptionError("betas", "two numbers in [0, 1)", betas)
        for b in betas:
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0.0 <= b < 1.0:
                raise OptionError("betas", "two numbers in [0, 1)", betas)
        self.options["betas"] = (float(betas[0]), float(betas[1]))

    def _init_state(self, theta):
        state = {"step": 0, "exp_avg": np.zeros_like(theta), "exp_avg_sq": np.zeros_like(theta)}
        if self.options["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(theta)
        return state

    def _update(self, theta, g, state):
        o = self.options
        beta1, beta2 = o["betas"]
        g = self._decay(theta, g)
        m = state["exp_avg"]
        w = 1 - beta1
        # torch's lerp: self + w (end − self) for w < 0.5, else end − (end − self)(1 − w)
        state["exp_avg"] = m + w * (g - m) if w < 0.5 else g - (g - m) * (1 - w)
        state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + ((1 - beta2) * g) * g
        step = float(state["step"])
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = o["lr"] / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if o["amsgrad"]:
            state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], state["exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        else:
            v = state["exp_avg_sq"]
        denom = np.sqrt(v) / bias_correction2_sqrt + o["eps"]
        return theta + (-step_size * state["exp_avg"]) / denom


#: the API's names → optimizer classes
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make(name: str, **options: Any) -> Optimizer:
    """The optimizer of that name with torch.optim's keyword options (unknown ones refused)."""
    if name not in OPTIMIZERS:
        raise OptionError("name", "one of " + ", ".join(OPTIMIZERS), name)
    return OPTIMIZERS[name](**options)
