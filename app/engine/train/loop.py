"""Training through time (issue 13): a training loop as a generator of progress, pure numpy,
over every cell of the registry, by BPTT or RTRL, and the gradient variants compared.

One update u = 1, 2, … (bptt-math.md, "Truncation in training", "Optimizers"):

    batch      the whole set (batch_size None or N), or batch_size distinct sequences drawn
               with ``numpy.random.default_rng([seed, 0])``: permutation(N)[:batch_size]
    forward    s_k = F(s_{k−1}, x_k) from s_0 = 0; L = Σ_b Σ_t w_t L_{b,t} (reduction sum/mean)
    gradient   g = ∂L/∂θ under the truncation (``Truncation``): full BPTT, window K (δ_{t,k}
               kept for t − k < K, as /api/v1/bptt), chunked K (h.detach() every K steps:
               δ_{t,k} kept when t and k lie in the same chunk), randomized (each backward edge
               s_k → s_{k−1} survives with probability π, weighted 1/π, so E[g] = the full
               gradient; ξ drawn per sequence and step from ``default_rng([seed, 1])``), or RTRL
    clipping   PyTorch's clip_grad_norm_ (max_norm/(‖g‖ + 1e-6)) or clip_grad_value_
    step       torch.optim's rule (train/optimizers.py)

The trained parameters are the cell's (canonical names, ``Cell.specs``) and the output layer
W_hy, b_y; h_0 (and c_0) stay 0. The same ``TrainSpec`` gives the same events bit for bit.
The generator is cancelled by not asking for the next event: nothing runs between events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .. import bptt, gradients, losses, rtrl
from ..activations import ACTIVATIONS
from ..cells import CELLS, Cell
from . import clipping, optimizers
from .errors import OptionError

TRUNCATIONS = ("none", "window", "chunked", "randomized")


@dataclass(frozen=True)
class Truncation:
    """How the gradient of one update is truncated: kind "none" | "window" | "chunked" (K steps)
    | "randomized" (probability π that a backward edge survives)."""

    kind: str = "none"
    K: int | None = None
    p: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRUNCATIONS:
            raise OptionError("kind", "one of " + ", ".join(TRUNCATIONS), self.kind)
        if self.kind in ("window", "chunked"):
            if isinstance(self.K, bool) or not isinstance(self.K, int) or self.K < 1:
                raise OptionError("K", "an integer ≥ 1", self.K)
        if self.kind == "randomized":
            if isinstance(self.p, bool) or not isinstance(self.p, (int, float)) or not 0 < self.p <= 1:
                raise OptionError("p", "a number in (0, 1]", self.p)


@dataclass(frozen=True)
class Data:
    """The training set: X (N, T, n) inputs, Y (N, T, p) target rows, mask (T,) loss steps."""

    X: np.ndarray
    Y: np.ndarray
    mask: np.ndarray
    loss: str  # "mse" | "softmax_ce"
    reduction: str = "mean"  # "sum" | "mean" (÷ |S|·B of each batch)

    def weights(self, B: int) -> np.ndarray:
        """(T,) w_t for a batch of B sequences: 0 off S; 1 (sum) or 1/(|S|·B) (mean) on S."""
        w = self.mask.astype(float)
        if self.reduction == "mean" and w.sum() > 0:
            w /= w.sum() * B
        return w


@dataclass(frozen=True)
class TrainSpec:
    cell: str
    activation: str
    #: canonical parameters (the cell's and W_hy, b_y), copied before training
    params: dict[str, np.ndarray]
    data: Data
    optimizer: str = "adam"
    #: torch.optim's keyword options
    optimizer_options: dict = field(default_factory=dict)
    updates: int = 100
    #: None: the whole set every update
    batch_size: int | None = None
    seed: int = 0
    truncation: Truncation = Truncation()
    method: str = "bptt"  # "bptt" | "rtrl" (no truncation)
    #: ("norm", max_norm) | ("value", clip_value) | None
    clip: tuple[str, float] | None = None
    report_every: int = 1
    #: 0: no checkpoints besides none
    checkpoint_every: int = 0
    #: the number of the first update made; the batches and randomized draws continue as if
    #: updates 1 … start_update − 1 had been made (``updates`` stays the last update's number)
    start_update: int = 1
    #: ``Optimizer.export_state()`` to continue from (None: a fresh optimizer)
    optimizer_state: dict | None = None
    #: checkpoints and Done carry the optimizer's state (to resume from them bit for bit)
    resumable: bool = False


@dataclass(frozen=True)
class Report:
    """Update ``update`` (1-based): the loss of its batch and ‖g‖ before the update, and whether
    clipping changed g; nonfinite when the loss or gradient overflowed (the run stops there).
    A checkpoint adds the parameters that gave this loss and gradient (before the update) and
    (T, T) ‖δ_{t,k}‖ [t, k] of the first training sequence under them (full BPTT)."""

    update: int
    loss: float
    grad_norm: float
    clipped: bool
    nonfinite: bool = False
    params: dict[str, np.ndarray] | None = None
    delta_norm: np.ndarray | None = None
    #: canonical name → ‖θ‖ (Frobenius) of the parameters that gave this loss (before the update)
    param_norms: dict[str, float] | None = None
    #: with ``resumable``, at a checkpoint: the optimizer's state before this update
    optimizer_state: dict | None = None
    #: at a checkpoint: how far back the last loss reaches in ``delta_norm`` (``reach``)
    delta_reach: dict | None = None

    @property
    def checkpoint(self) -> bool:
        return self.params is not None


@dataclass(frozen=True)
class Done:
    """After ``updates`` updates: the parameters, and the loss of the whole training set."""

    updates: int
    params: dict[str, np.ndarray]
    loss: float
    #: a Report with nonfinite stopped the run before ``updates`` were made
    stopped: bool = False
    #: with ``resumable``: the optimizer's state after the last update
    optimizer_state: dict | None = None


# ---------------------------------------------------------------- one gradient


def _s0(cell: Cell, B: int, m: int) -> dict[str, np.ndarray]:
    return {s: np.zeros((B, m)) for s in cell.states}


def xi_pass(cell: Cell, tr, theta: dict[str, np.ndarray], eps_tt: np.ndarray,
            xi: np.ndarray | None, fast: bool = True, work: dict | None = None) -> np.ndarray:
    """The dh_next pass with edge weights: the error the copy k passes back to s_{k−1} is
    multiplied by xi[b, k] (B, T) (None: 1, the full gradient). xi = 0 at the chunk starts is
    chunked truncation; xi = Bernoulli(π)/π randomized truncation. Returns dz (B, T, G·m).
    A cell with ``fast_xi_pass`` (the LSTM) runs its own loop unless ``fast`` is False (``work``:
    its arrays, kept from one call to the next; see ``LSTMCell.fast_forward``)."""
    own = getattr(cell, "fast_xi_pass", None) if fast else None
    if own is not None and tr.z.ndim == 3:  # the cell's own loop (the LSTM's; the same numbers to rounding)
        return own(tr, theta, eps_tt, xi, work)
    B, T, m = eps_tt.shape
    dz = np.empty((B, T, tr.z.shape[-1]))
    d_next = {s: np.zeros((B, 1, m)) for s in cell.states}
    for k in range(T - 1, -1, -1):
        d_next["h"] = d_next["h"] + eps_tt[:, k, None, :]
        delta, d_next = cell.backward_step(tr, theta, k, d_next)
        dz[:, k] = delta[:, 0]
        if xi is not None:
            w = xi[:, k, None, None]
            d_next = {s: v * w for s, v in d_next.items()}
    return dz


def chunk_xi(B: int, T: int, K: int) -> np.ndarray:
    """(B, T) edge weights of chunked truncation: 0 into the chunk starts k = K, 2K, …, else 1."""
    xi = np.ones((B, T))
    xi[:, K::K] = 0.0
    return xi


def random_xi(rng: np.random.Generator, B: int, T: int, p: float) -> np.ndarray:
    """(B, T) edge weights of randomized truncation: 1/p with probability p, else 0."""
    return np.where(rng.random((B, T)) < p, 1.0 / p, 0.0)


@dataclass(frozen=True)
class Gradient:
    loss: float
    #: canonical → ∂L/∂θ (before clipping)
    grads: dict[str, np.ndarray]


def _initial(cell: Cell, s0: dict[str, np.ndarray] | None, rows, B: int, m: int) -> dict[str, np.ndarray]:
    """The initial states of the batch ``rows``: s0 (state → (N, m), a state it lacks 0) or all 0."""
    if s0 is None:
        return _s0(cell, B, m)
    return {s: (np.asarray(s0[s], dtype=np.float64)[rows] if s0.get(s) is not None else np.zeros((B, m)))
            for s in cell.states}


def _forward(cell: Cell, activation: str, theta: dict[str, np.ndarray], X: np.ndarray,
             s0: dict[str, np.ndarray], fast: bool = True, work: dict | None = None):
    """The cell's forward pass; its ``fast_forward`` (the LSTM's) for one model unless ``fast``
    is False (``work``: its arrays, kept from one call to the next by a caller that keeps the
    trace no longer than that)."""
    own = getattr(cell, "fast_forward", None) if fast else None
    if own is not None and X.ndim == 3 and theta["W_hh"].ndim == 2:
        return own(ACTIVATIONS[activation], theta, X, s0, work)
    return cell.forward(ACTIVATIONS[activation], theta, X, s0)


def gradient(cell: Cell, activation: str, theta: dict[str, np.ndarray], data: Data, rows,
             truncation: Truncation = Truncation(), method: str = "bptt",
             xi: np.ndarray | None = None, s0: dict[str, np.ndarray] | None = None,
             fast: bool = True, work: dict | None = None) -> Gradient:
    """The loss and gradient of the batch ``rows`` (index array or slice). For "randomized",
    ``xi`` (B, T) is the draw (``random_xi``). ``s0``: state → (N, m) initial states of the
    whole set (h_0, and c_0 for the LSTM; None: 0), as /api/v1/bptt's h0 and c0. ``fast``
    False: the cell's generic forward and dh_next pass, not its fast ones (the tests compare);
    ``work``: a dict the fast ones keep their arrays in from one call to the next (one per run:
    fresh arrays of a few hundred kB cost more in page faults than the LSTM's loop)."""
    X, Y = data.X[rows], data.Y[rows]
    B, T, _ = X.shape
    m = theta["W_hh"].shape[-1]
    w = data.weights(B)
    fw = _forward(cell, activation, theta, X, _initial(cell, s0, rows, B, m), fast, work)
    out = losses.compute(data.loss, fw.h, w, W_hy=theta["W_hy"], b_y=theta["b_y"], Y=Y)
    if method == "rtrl":
        if truncation.kind != "none":
            raise OptionError("truncation", "none with method rtrl", truncation.kind)
        grads, _ = rtrl.gradients(cell, fw, theta, X, out.eps_tt)
        grads |= gradients.output_grads(fw.h, out.e)
        return Gradient(float(out.loss), grads)
    kind = truncation.kind
    table = getattr(cell, "fast_table", None)  # the vanilla and residual cells' δ loop
    if kind == "none" or (kind == "window" and truncation.K >= T):
        if table is not None:
            from .. import fast as fastmod

            dz = fastmod.dh_next_pass(cell, fw.fprime, out.eps_tt, theta["W_hh"])[0]
        else:
            dz = xi_pass(cell, fw, theta, out.eps_tt, None, fast, work)
    elif kind == "window":
        if table is not None:
            table = table()(cell, fw.fprime, out.eps_tt, theta["W_hh"], truncation.K, False, norms=False)
        else:
            table = bptt.delta_table(cell, fw, theta, out.eps_tt, truncation.K, keep=False, norms=False)
        dz = table.dz
    elif kind == "chunked":
        dz = xi_pass(cell, fw, theta, out.eps_tt, chunk_xi(B, T, truncation.K), fast, work)
    else:
        if xi is None:
            raise ValueError("randomized truncation needs its draw xi")
        dz = xi_pass(cell, fw, theta, out.eps_tt, xi, fast, work)
    return Gradient(float(out.loss), gradients.summed(cell, fw, theta, X, dz, out.e))


def delta_norms(cell: Cell, activation: str, theta: dict[str, np.ndarray], data: Data) -> np.ndarray:
    """(T, T) ‖δ_{t,k}‖ [t, k] of the first training sequence (untruncated, its own weights w_t
    as in a batch of one)."""
    X = data.X[:1]
    m = theta["W_hh"].shape[-1]
    fw = cell.forward(ACTIVATIONS[activation], theta, X, _s0(cell, 1, m))
    out = losses.compute(data.loss, fw.h, data.weights(1), W_hy=theta["W_hy"], b_y=theta["b_y"], Y=data.Y[:1])
    return bptt.delta_table(cell, fw, theta, out.eps_tt, None, keep=False).delta_norm[0]


#: ``reach`` counts the steps back whose ‖δ‖ is at least this fraction of the row's largest
REACH_FRACTION = 0.01


def reach(delta_norm: np.ndarray, mask: np.ndarray) -> dict:
    """How far back the last loss reaches, read off (T, T) ‖δ_{t,k}‖ [t, k] for the training
    page's sentence (RNNbow: early in training the gradient is local, later it reaches back).
    With t the last step carrying a loss and M = max_k ‖δ_{t,k}‖ over k ≤ t:

        t       that step, 1-based
        steps   t − k for the earliest k with ‖δ_{t,k}‖ ≥ REACH_FRACTION · M (0: only its own step)
        first   ‖δ_{t,1}‖ / M, what reaches the first step relative to the strongest term

    steps and first are None when the row is all 0 or not finite (an overflow)."""
    rows = np.flatnonzero(mask)
    if rows.size == 0:
        return {"t": None, "steps": None, "first": None, "fraction": REACH_FRACTION}
    t = int(rows[-1])
    row = delta_norm[t, : t + 1]
    M = float(np.max(row)) if np.isfinite(row).all() else math.nan
    if not (math.isfinite(M) and M > 0):
        return {"t": t + 1, "steps": None, "first": None, "fraction": REACH_FRACTION}
    k = int(np.flatnonzero(row >= REACH_FRACTION * M)[0])
    return {"t": t + 1, "steps": t - k, "first": float(row[0] / M), "fraction": REACH_FRACTION}


def work_per_update(spec: TrainSpec) -> float:
    """Multiply-adds of one update, for the API's budget: the forward and backward passes
    (a window K: K rows per step), or RTRL's (``rtrl.work``); as BPTT_MAX_WORK counts them,
    each elementwise pass over a number is 100 (for small m those passes are the time)."""
    cell = CELLS[spec.cell]
    N, T, n = spec.data.X.shape
    B = N if spec.batch_size is None else spec.batch_size
    m = spec.params["W_hh"].shape[-1]
    p = spec.data.Y.shape[-1]
    Gm = cell.G * m
    step = Gm * (n + m) + 2 * m * p + 100 * (4 * Gm + 2 * p)  # a_k, the output layer, elementwise
    if spec.method == "rtrl":
        return float(B * T * 3 * step) + rtrl.work(cell, B, T, n, m)
    rows = T if spec.truncation.kind != "window" else min(T, spec.truncation.K)
    back = Gm * m * (rows if spec.truncation.kind == "window" else 1)
    return float(B * T * (3 * step + back))


def _copy(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}


def _finite(grads: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(g).all() for g in grads.values())


def train(spec: TrainSpec, ticks: bool = False) -> Iterator[Report | Done | None]:
    """The run as a generator: a Report after updates 1, 1 + r, 1 + 2r, … (r = report_every)
    and the last, with a checkpoint at updates 1, 1 + c, 1 + 2c, … and the last (c =
    checkpoint_every, if > 0; those updates are reported too); then Done. Stop iterating to
    cancel: nothing runs between events. With ``ticks`` it also yields None after each update
    it does not report, so that a caller can stop it between any two updates. The options are
    checked here, before the generator is returned (an ``OptionError`` naming the option)."""
    cell = CELLS[spec.cell]
    if spec.method not in ("bptt", "rtrl"):
        raise OptionError("method", "bptt or rtrl", spec.method)
    if spec.method == "rtrl" and spec.truncation.kind != "none":
        raise OptionError("truncation", "none with method rtrl", spec.truncation.kind)
    theta = _copy(spec.params)
    opt = optimizers.make(spec.optimizer, **spec.optimizer_options)
    if spec.optimizer_state is not None:
        opt.load_state(spec.optimizer_state, theta)
    N = spec.data.X.shape[0]
    B = N if spec.batch_size is None else spec.batch_size
    if not 1 <= B <= N:
        raise OptionError("batch_size", f"an integer in [1, {N}]", spec.batch_size)
    s = spec.start_update
    if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= spec.updates:
        raise OptionError("start_update", f"an integer in [1, {spec.updates}] (updates)", s)
    return _run(spec, cell, theta, opt, B, N, ticks)


def _run(spec: TrainSpec, cell: Cell, theta, opt, B: int, N: int, ticks: bool) -> Iterator[Report | Done | None]:
    batch_rng = np.random.default_rng([spec.seed, 0])
    xi_rng = np.random.default_rng([spec.seed, 1])
    T = spec.data.X.shape[1]
    U, r, c = spec.updates, spec.report_every, spec.checkpoint_every
    start = spec.start_update
    # updates 1 … start − 1 were made elsewhere: draw their batches (a permutation's draws vary
    # in number) and step over their ξ (one 64-bit draw per double of each (B, T) draw)
    if B != N:
        for _ in range(start - 1):
            batch_rng.permutation(N)
    if spec.truncation.kind == "randomized":
        xi_rng.bit_generator.advance((start - 1) * B * T)
    state = (lambda: opt.export_state()) if spec.resumable else (lambda: None)
    work: dict = {}  # the fast paths' arrays, reused by every update of this run
    # np.errstate is entered per update, never across a yield: the generator may be resumed in
    # another thread or context (the API advances it in the thread pool)
    for u in range(start, U + 1):
        rows = slice(None) if B == N else batch_rng.permutation(N)[:B]
        xi = random_xi(xi_rng, B, T, spec.truncation.p) if spec.truncation.kind == "randomized" else None
        keep = c > 0 and ((u - 1) % c == 0 or u == U)
        report = keep or (u - 1) % r == 0 or u == U
        before = _copy(theta) if keep else None
        opt_before = state() if keep else None
        norms = {k: float(np.linalg.norm(v)) for k, v in theta.items()} if report else None
        with np.errstate(all="ignore"):
            g = gradient(cell, spec.activation, theta, spec.data, rows, spec.truncation, spec.method, xi, work=work)
            grads = g.grads
            finite = math.isfinite(g.loss) and _finite(grads)
            if finite:
                if spec.clip is None:
                    norm, clipped = clipping.total_norm(grads), False
                elif spec.clip[0] == "norm":
                    grads, norm, clipped = clipping.clip_grad_norm(grads, spec.clip[1])
                else:
                    grads, norm, clipped = clipping.clip_grad_value(grads, spec.clip[1])
                opt.step(theta, grads)
                dn = delta_norms(cell, spec.activation, before, spec.data) if keep else None
            else:
                norm = clipping.total_norm(grads)
        if not finite:
            yield Report(u, g.loss, norm, False, nonfinite=True,
                         param_norms={k: float(np.linalg.norm(v)) for k, v in theta.items()})
            yield Done(u - 1, _copy(theta), _full_loss(cell, spec, theta), stopped=True, optimizer_state=state())
            return
        if keep:
            yield Report(u, g.loss, norm, clipped, params=before, delta_norm=dn, param_norms=norms,
                         optimizer_state=opt_before, delta_reach=reach(dn, spec.data.mask))
        elif report:
            yield Report(u, g.loss, norm, clipped, param_norms=norms)
        elif ticks:
            yield None
    yield Done(U, _copy(theta), _full_loss(cell, spec, theta), optimizer_state=state())


def _full_loss(cell: Cell, spec: TrainSpec, theta: dict[str, np.ndarray]) -> float:
    with np.errstate(all="ignore"):
        X = spec.data.X
        m = theta["W_hh"].shape[-1]
        fw = _forward(cell, spec.activation, theta, X, _s0(cell, X.shape[0], m))
        out = losses.compute(spec.data.loss, fw.h, spec.data.weights(X.shape[0]),
                             W_hy=theta["W_hy"], b_y=theta["b_y"], Y=spec.data.Y)
    return float(out.loss)


# ---------------------------------------------------------------- gradients compared


def _flat(grads: dict[str, np.ndarray], names) -> np.ndarray:
    return np.concatenate([np.ravel(grads[k]) for k in names])


@dataclass(frozen=True)
class Comparison:
    """One variant against the full BPTT gradient g of the same batch: cos(g', g) and ‖g'‖/‖g‖
    (None where a norm is 0 or a number is not finite)."""

    name: str
    cosine: float | None
    norm_ratio: float | None
    grads: dict[str, np.ndarray]


def compare_gradients(cell_name: str, activation: str, theta: dict[str, np.ndarray], data: Data,
                      K: int | None = None, p: float | None = None, seed: int = 0, draws: int = 0,
                      rtrl_too: bool = True, s0: dict[str, np.ndarray] | None = None) -> list[Comparison]:
    """The gradient of the whole set ``data`` by full BPTT, window K and chunked K (with K),
    randomized with π = p (with p): one draw from ``default_rng([seed, 1])`` ("randomized") and,
    with draws > 0, the mean of that many draws ("randomized_mean", whose expectation is the
    full gradient), and RTRL; each with its cosine and norm ratio to the full gradient. Every
    variant starts from ``s0`` (state → (N, m); None: 0)."""
    cell = CELLS[cell_name]
    B, T, _ = data.X.shape
    rows = slice(None)
    variants: list[tuple[str, Gradient]] = []
    work: dict = {}  # the fast paths' arrays, reused by every variant (each one's grads are its own)
    with np.errstate(all="ignore"):
        full = gradient(cell, activation, theta, data, rows, s0=s0, work=work)
        variants.append(("full", full))
        if K is not None:
            variants.append(("window", gradient(cell, activation, theta, data, rows, Truncation("window", K), s0=s0, work=work)))
            variants.append(("chunked", gradient(cell, activation, theta, data, rows, Truncation("chunked", K), s0=s0, work=work)))
        if p is not None:
            tr = Truncation("randomized", p=p)
            rng = np.random.default_rng([seed, 1])
            one = gradient(cell, activation, theta, data, rows, tr, xi=random_xi(rng, B, T, p), s0=s0, work=work)
            variants.append(("randomized", one))
            if draws > 0:
                acc = {k: v.copy() for k, v in one.grads.items()}
                for _ in range(draws - 1):
                    gd = gradient(cell, activation, theta, data, rows, tr, xi=random_xi(rng, B, T, p), s0=s0, work=work).grads
                    for k in acc:
                        acc[k] += gd[k]
                variants.append(("randomized_mean", Gradient(one.loss, {k: v / draws for k, v in acc.items()})))
        if rtrl_too:
            variants.append(("rtrl", gradient(cell, activation, theta, data, rows, method="rtrl", s0=s0, work=work)))
        names = sorted(full.grads)
        g0 = _flat(full.grads, names)
        n0 = float(np.linalg.norm(g0))
        out = []
        for name, v in variants:
            g1 = _flat(v.grads, names)
            n1 = float(np.linalg.norm(g1))
            ok = math.isfinite(n0) and math.isfinite(n1)
            cos = float(g0 @ g1 / (n0 * n1)) if ok and n0 > 0 and n1 > 0 else None
            ratio = n1 / n0 if ok and n0 > 0 else None
            out.append(Comparison(name, cos, ratio, v.grads))
    return out
