"""The training loop (app/engine/train/loop.py): its gradients under every truncation against the
independent reference (tests/reference_gated.py: K=, chunk=, xi=), RTRL = BPTT, determinism,
each task learned by a suitable cell, and runs replayed in PyTorch (torch cells, torch.optim,
clip_grad_norm_, h.detach() every K steps) to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import reference_gated as R

from app.engine.cells import CELLS
from app.engine.train import loop as L
from app.engine.train import tasks as TK
from app.engine.train.errors import OptionError

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install torch==2.13.0)")

#: canonical → the reference's names
REF_NAMES = {
    "vanilla": {"W_xh": "W_xh", "W_hh": "W_hh", "b_h": "b_h", "W_hy": "W_hy", "b_y": "b_y"},
    "lstm": {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0",
             "W_hy": "linear.weight", "b_y": "linear.bias"},
}
REF_NAMES["residual"] = REF_NAMES["vanilla"]
REF_NAMES["gru"] = REF_NAMES["lstm"]


def init(cell, n, m, p, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    s = scale / np.sqrt(m)
    th = {sp.name: rng.uniform(-s, s, size=sp.shape(n, m)) for sp in CELLS[cell].specs(n, m)}
    th["W_hy"] = rng.uniform(-s, s, size=(p, m))
    th["b_y"] = rng.uniform(-s, s, size=p)
    return th


def problem(cell, loss, B=3, T=7, n=2, m=3, p=2, seed=1, mask=None):
    rng = np.random.default_rng(seed)
    th = init(cell, n, m, p, seed, scale=2.5)
    X = rng.normal(size=(B, T, n))
    if loss == "mse":
        Y = rng.normal(size=(B, T, p))
    else:
        Y = np.eye(p)[rng.integers(0, p, size=(B, T))]
    mask = np.ones(T, bool) if mask is None else np.asarray(mask)
    return th, L.Data(X, Y, mask, loss, "mean")


def ref_case(cell, th, data):
    names = REF_NAMES[cell]
    return R.Case(cell, {names[k]: v for k, v in th.items()}, data.X, loss=data.loss, Y=data.Y,
                  mask=data.mask, reduction=data.reduction)


def ref_grads(cell, res):
    return {k: res["grads"][v] for k, v in REF_NAMES[cell].items()}


def assert_grads(ours, want):
    assert set(ours) == set(want)
    for k in want:
        np.testing.assert_allclose(ours[k], want[k], rtol=1e-11, atol=1e-13 * (1 + np.abs(want[k]).max()), err_msg=k)


CELL_NAMES = ("vanilla", "residual", "lstm", "gru")
MASKS = (None, [False, True, False, True, True, False, True])


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("loss", ("mse", "softmax_ce"))
@pytest.mark.parametrize("mask", MASKS)
def test_every_truncation_equals_the_reference(cell, loss, mask):
    th, data = problem(cell, loss, mask=mask)
    c = CELLS[cell]
    case = ref_case(cell, th, data)
    g = L.gradient(c, "tanh", th, data, slice(None))
    assert g.loss == pytest.approx(R.bptt(case)["loss"], rel=1e-13)
    assert_grads(g.grads, ref_grads(cell, R.bptt(case)))
    for K in (1, 2, 3, 7, 9):
        assert_grads(L.gradient(c, "tanh", th, data, slice(None), L.Truncation("window", K)).grads,
                     ref_grads(cell, R.bptt(case, K=min(K, 7))))
        assert_grads(L.gradient(c, "tanh", th, data, slice(None), L.Truncation("chunked", K)).grads,
                     ref_grads(cell, R.bptt(case, chunk=K)))
    xi = L.random_xi(np.random.default_rng(5), 3, 7, 0.6)
    assert (xi == 0).any() and (xi != 0).any()
    assert_grads(L.gradient(c, "tanh", th, data, slice(None), L.Truncation("randomized", p=0.6), xi=xi).grads,
                 ref_grads(cell, R.bptt(case, xi=xi)))
    assert_grads(L.gradient(c, "tanh", th, data, slice(None), method="rtrl").grads, ref_grads(cell, R.bptt(case)))


def test_chunks_differ_from_the_window_and_the_full_gradient():
    """The variants are not the same gradient under other names (so the test above can fail)."""
    th, data = problem("vanilla", "mse")
    c = CELLS["vanilla"]
    full = L.gradient(c, "tanh", th, data, slice(None)).grads["W_hh"]
    win = L.gradient(c, "tanh", th, data, slice(None), L.Truncation("window", 3)).grads["W_hh"]
    chk = L.gradient(c, "tanh", th, data, slice(None), L.Truncation("chunked", 3)).grads["W_hh"]
    assert not np.allclose(full, win) and not np.allclose(full, chk) and not np.allclose(win, chk)


def test_randomized_truncation_is_unbiased():
    """E[ξ-weighted gradient] = the full gradient: the mean of many draws converges to it (the
    gradient is linear in each ξ_k's product, whose mean is 1), and p = 1 is the full gradient."""
    th, data = problem("gru", "mse", B=2, T=5)
    c = CELLS["gru"]
    full = L.gradient(c, "tanh", th, data, slice(None)).grads
    one = L.gradient(c, "tanh", th, data, slice(None), L.Truncation("randomized", p=1.0),
                     xi=L.random_xi(np.random.default_rng(0), 2, 5, 1.0)).grads
    assert_grads(one, full)
    res = L.compare_gradients("gru", "tanh", th, data, K=2, p=0.5, seed=3, draws=4000, rtrl_too=True)
    by = {r.name: r for r in res}
    assert set(by) == {"full", "window", "chunked", "randomized", "randomized_mean", "rtrl"}
    assert by["full"].cosine == pytest.approx(1.0, abs=1e-14) and by["full"].norm_ratio == 1.0
    assert by["rtrl"].cosine == pytest.approx(1.0, abs=1e-12) and by["rtrl"].norm_ratio == pytest.approx(1.0, rel=1e-10)
    assert by["randomized_mean"].cosine > 0.999 and by["randomized_mean"].norm_ratio == pytest.approx(1.0, abs=0.02)
    assert by["randomized"].cosine < by["randomized_mean"].cosine
    assert by["window"].cosine < 1 - 1e-6


def run(cell, task, opts, updates, lr=0.02, m=16, **kw):
    d = TK.make(task, **opts)
    data = L.Data(d.inputs, d.targets, d.mask, d.loss)
    th = init(cell, d.inputs.shape[2], m, d.targets.shape[2])
    spec = L.TrainSpec(cell, "tanh", th, data, "adam", {"lr": lr}, updates=updates, **kw)
    return list(L.train(spec))


LEARNED = [
    # (task, options, a suitable cell, updates)
    ("echo", {"T": 10, "delay": 2}, "gru", 60),
    ("recall", {"delay": 5}, "lstm", 60),
    ("sum", {"T": 10}, "vanilla", 60),
    ("parity", {"T": 6}, "gru", 150),
    ("chars", {"T": 10}, "lstm", 60),
]


@pytest.mark.parametrize("task,opts,cell,updates", LEARNED)
def test_each_task_is_learned_by_a_suitable_cell(task, opts, cell, updates):
    ev = run(cell, task, opts, updates)
    reports = [e for e in ev if isinstance(e, L.Report)]
    done = ev[-1]
    assert isinstance(done, L.Done) and done.updates == updates and not done.stopped
    assert [r.update for r in reports] == list(range(1, updates + 1))
    assert done.loss <= 0.5 * reports[0].loss, (reports[0].loss, done.loss)


def test_the_same_seed_gives_the_same_run_bit_for_bit():
    kw = dict(batch_size=8, seed=4, truncation=L.Truncation("randomized", p=0.7), clip=("norm", 0.05),
              report_every=3, checkpoint_every=5)
    a, b = run("lstm", "echo", {"T": 8}, 12, **kw), run("lstm", "echo", {"T": 8}, 12, **kw)
    c = run("lstm", "echo", {"T": 8}, 12, **(kw | {"seed": 5}))
    assert [type(e) for e in a] == [type(e) for e in b]
    for x, y in zip(a, b):
        assert (x.update if isinstance(x, L.Report) else x.updates) == (y.update if isinstance(y, L.Report) else y.updates)
        assert x.loss == y.loss
        for k in x.params or {}:
            assert np.array_equal(x.params[k], y.params[k])
        if isinstance(x, L.Report):
            assert (x.grad_norm, x.clipped) == (y.grad_norm, y.clipped)
            assert (x.delta_norm is None) == (y.delta_norm is None)
            assert x.delta_norm is None or np.array_equal(x.delta_norm, y.delta_norm)
    assert [r.loss for r in a if isinstance(r, L.Report)] != [r.loss for r in c if isinstance(r, L.Report)]
    reports = [e for e in a if isinstance(e, L.Report)]
    assert [e.update for e in reports] == [1, 4, 6, 7, 10, 11, 12]
    assert [e.update for e in reports if e.checkpoint] == [1, 6, 11, 12]
    assert any(e.clipped for e in reports)
    cp = reports[0]
    assert cp.delta_norm.shape == (8, 8) and np.allclose(np.triu(cp.delta_norm, 1), 0)
    assert np.array_equal(cp.params["W_hh"], init("lstm", 1, 16, 1)["W_hh"])  # before update 1


def test_cancelling_is_not_asking_for_more():
    """Nothing runs between events: a generator abandoned after its first report made one update."""
    calls = []
    orig = L.gradient

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    L.gradient = counting
    try:
        d = TK.make("sum", T=5)
        spec = L.TrainSpec("vanilla", "tanh", init("vanilla", 1, 4, 1), L.Data(d.inputs, d.targets, d.mask, d.loss),
                           updates=1000)
        it = L.train(spec)
        next(it)
        it.close()
    finally:
        L.gradient = orig
    assert len(calls) == 1


def test_a_diverging_run_stops_with_a_nonfinite_report():
    d = TK.make("sum", T=30)
    th = init("vanilla", 1, 8, 1, scale=1.0)
    spec = L.TrainSpec("vanilla", "identity", th, L.Data(d.inputs, d.targets, d.mask, d.loss),
                       optimizer="sgd", optimizer_options={"lr": 50.0}, updates=200)
    ev = list(L.train(spec))
    assert ev[-2].nonfinite and ev[-1].stopped and ev[-1].updates < 200


def test_refusals_name_their_option():
    d = TK.make("sum", T=5)
    data = L.Data(d.inputs, d.targets, d.mask, d.loss)
    th = init("vanilla", 1, 4, 1)
    for spec_kw, field in [({"batch_size": 0}, "batch_size"), ({"batch_size": 33}, "batch_size"),
                           ({"method": "rtrl", "truncation": L.Truncation("window", 2)}, "truncation"),
                           ({"optimizer": "lbfgs"}, "name")]:
        with pytest.raises(OptionError) as e:
            next(L.train(L.TrainSpec("vanilla", "tanh", th, data, **spec_kw)))
        assert e.value.field == field
    with pytest.raises(OptionError) as e:
        L.Truncation("randomized", p=0)
    assert e.value.field == "p"
    with pytest.raises(OptionError) as e:
        L.Truncation("chunked", K=0)
    assert e.value.field == "K"


# ---------------------------------------------------------------- replayed in PyTorch


def torch_cell_step(cell, P, x, h, c):
    """One step of the cell in torch, as torch.nn defines it (vanilla/residual written out)."""
    if cell in ("vanilla", "residual"):
        a = torch.tanh(x @ P["W_xh"].T + h @ P["W_hh"].T + P["b_h"])
        return (h + a if cell == "residual" else a), None
    if cell == "lstm":
        h, c = torch._VF.lstm_cell(x, (h, c), P["W_ih"], P["W_hh"], P["b_ih"], P["b_hh"])
        return h, c
    return torch._VF.gru_cell(x, h, P["W_ih"], P["W_hh"], P["b_ih"], P["b_hh"]), None


REPLAYS = [
    # (cell, task, options, optimizer, options, clip, truncation, batch_size)
    ("vanilla", "sum", {"T": 8, "N": 6}, "sgd", {"lr": 0.3}, ("norm", 0.2), L.Truncation(), None),
    ("vanilla", "echo", {"T": 8, "N": 6, "delay": 2}, "momentum", {"lr": 0.1, "momentum": 0.9}, None,
     L.Truncation("chunked", 3), 4),
    ("residual", "parity", {"T": 6, "N": 5}, "adam", {"lr": 0.05}, ("norm", 0.5), L.Truncation("chunked", 2), None),
    ("lstm", "recall", {"delay": 5, "N": 6}, "adam", {"lr": 0.05}, ("norm", 0.1), L.Truncation("chunked", 4), 3),
    ("gru", "chars", {"T": 6, "N": 4}, "adam", {"lr": 0.05, "weight_decay": 0.01}, None, L.Truncation(), None),
    ("gru", "echo", {"T": 7, "N": 5}, "sgd", {"lr": 0.5}, ("value", 0.05), L.Truncation("randomized", p=0.6), None),
]


@needs_torch
@pytest.mark.parametrize("cell,task,opts,opt,opt_kw,clip,trunc,batch_size", REPLAYS)
def test_a_run_replays_in_pytorch(cell, task, opts, opt, opt_kw, clip, trunc, batch_size):
    """Our run against a plain PyTorch loop: torch's cell step, h.detach() every K steps for
    chunks, ξ s + (1 − ξ) s.detach()-style edge weights for randomized truncation (the same ξ,
    drawn as the loop draws it), the same batches, clip_grad_norm_/clip_grad_value_, torch.optim."""
    d = TK.make(task, seed=2, **opts)
    data = L.Data(d.inputs, d.targets, d.mask, d.loss)
    N, T, n = d.inputs.shape
    p, m, updates = d.targets.shape[-1], 4, 8
    th = init(cell, n, m, p, seed=3)
    spec = L.TrainSpec(cell, "tanh", th, data, opt, opt_kw, updates=updates, batch_size=batch_size, seed=9,
                       truncation=trunc, clip=clip)
    ours = list(L.train(spec))

    P = {k: torch.tensor(v, requires_grad=True) for k, v in th.items()}
    torch_opt = getattr(torch.optim, {"momentum": "SGD", "sgd": "SGD", "adam": "Adam"}[opt])(
        list(P.values()), **({"momentum": 0.9} | opt_kw if opt == "momentum" else opt_kw))
    batch_rng, xi_rng = np.random.default_rng([9, 0]), np.random.default_rng([9, 1])
    B = N if batch_size is None else batch_size
    w = torch.tensor(data.weights(B))
    torch_losses = []
    for _ in range(updates):
        rows = np.arange(N) if B == N else batch_rng.permutation(N)[:B]
        xi = L.random_xi(xi_rng, B, T, trunc.p) if trunc.kind == "randomized" else None
        X, Y = torch.tensor(data.X[rows]), torch.tensor(data.Y[rows])
        h = torch.zeros(B, m, dtype=torch.float64)
        c = torch.zeros(B, m, dtype=torch.float64) if cell == "lstm" else None
        total = 0
        for t in range(T):
            if trunc.kind == "chunked" and t > 0 and t % trunc.K == 0:
                h = h.detach()
                c = c.detach() if c is not None else None
            if xi is not None:  # the edge into copy t carries ξ_t backwards, 1 forwards
                x_t = torch.tensor(xi[:, t, None])
                h = h.detach() + x_t * (h - h.detach())  # the same value, its gradient × ξ_t
                c = None if c is None else c.detach() + x_t * (c - c.detach())
            h, c = torch_cell_step(cell, P, X[:, t], h, c)
            o = h @ P["W_hy"].T + P["b_y"]
            if data.loss == "mse":
                per = 0.5 * ((o - Y[:, t]) ** 2).sum(-1)
            else:
                per = -(Y[:, t] * torch.log_softmax(o, -1)).sum(-1)
            total = total + w[t] * per.sum()
        torch_opt.zero_grad()
        total.backward()
        torch_losses.append(total.item())
        if clip is not None and clip[0] == "norm":
            torch.nn.utils.clip_grad_norm_(list(P.values()), clip[1])
        elif clip is not None:
            torch.nn.utils.clip_grad_value_(list(P.values()), clip[1])
        torch_opt.step()
    reports = [e for e in ours if isinstance(e, L.Report)]
    np.testing.assert_allclose([r.loss for r in reports], torch_losses, rtol=1e-12)
    assert clip is None or any(r.clipped for r in reports)
    done = ours[-1]
    for k, v in done.params.items():
        want = P[k].detach().numpy()
        np.testing.assert_allclose(v, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()), err_msg=k)


def test_ticks_yield_after_every_update():
    d = TK.make("sum", T=5)
    spec = L.TrainSpec("vanilla", "tanh", init("vanilla", 1, 4, 1), L.Data(d.inputs, d.targets, d.mask, d.loss),
                       updates=10, report_every=4)
    ev = list(L.train(spec, ticks=True))
    assert len(ev) == 11 and [e.update for e in ev if isinstance(e, L.Report)] == [1, 5, 9, 10]
    assert [e for e in ev if e is None] == [None] * 6
    plain = [e for e in L.train(spec) if isinstance(e, L.Report)]
    assert [(e.update, e.loss) for e in plain] == [(e.update, e.loss) for e in ev if isinstance(e, L.Report)]


# ---------------------------------------------------------------- the LSTM's fast path


def _close(got, want, what, tol=1e-14):
    got, want = np.asarray(got), np.asarray(want)
    scale = 1.0 + np.abs(want).max()
    assert np.isfinite(got).all() == np.isfinite(want).all(), what
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg=what)


def _lstm_case(B=5, T=9, n=3, m=4, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    theta = init("lstm", n, m, 2, seed=seed, scale=scale)
    X = rng.normal(size=(B, T, n))
    s0 = {"h": rng.normal(size=(B, m)), "c": rng.normal(size=(B, m))}
    mask = np.ones(T, dtype=bool)
    mask[: T // 3] = False
    data = L.Data(X, rng.normal(size=(B, T, 2)), mask, "mse", "mean")
    return theta, data, s0


@pytest.mark.parametrize("scale", [1.0, 3.0, 300.0])  # 300: saturated gates, exp(−a) overflows to inf
def test_lstm_fast_forward_equals_forward(scale):
    from app.engine.activations import ACTIVATIONS

    cell, act = CELLS["lstm"], ACTIVATIONS["tanh"]
    theta, data, s0 = _lstm_case(scale=scale)
    want = cell.forward(act, theta, data.X, s0)
    work = {}
    for _ in range(2):  # the second call reuses the first one's arrays
        with np.errstate(all="raise"):  # the fast path raises no warning of its own
            got = cell.fast_forward(act, theta, data.X, s0, work)
        _close(got.z, want.z, "z", 1e-14 if scale < 100 else 1e-13)
        for k in ("h", "h_prev", "tanh_c"):
            _close(getattr(got, k), getattr(want, k), k)
        for d in ("states", "states_prev", "gates"):
            assert set(getattr(got, d)) == set(getattr(want, d))
            for k, v in getattr(want, d).items():
                assert getattr(got, d)[k].shape == v.shape
                _close(getattr(got, d)[k], v, f"{d}.{k}")
    assert work, "the arrays are kept in work"


@pytest.mark.parametrize("kind", ["none", "chunked", "randomized"])
def test_lstm_fast_xi_pass_equals_the_generic_pass(kind):
    from app.engine import losses
    from app.engine.activations import ACTIVATIONS

    cell = CELLS["lstm"]
    theta, data, s0 = _lstm_case()
    B, T, _ = data.X.shape
    xi = {"none": None, "chunked": L.chunk_xi(B, T, 4),
          "randomized": L.random_xi(np.random.default_rng(3), B, T, 0.6)}[kind]
    for fw in (cell.forward(ACTIVATIONS["tanh"], theta, data.X, s0),  # either trace
               cell.fast_forward(ACTIVATIONS["tanh"], theta, data.X, s0)):
        out = losses.compute("mse", fw.h, data.weights(B), W_hy=theta["W_hy"], b_y=theta["b_y"], Y=data.Y)
        want = L.xi_pass(cell, fw, theta, out.eps_tt, xi, fast=False)
        work = {}
        for _ in range(2):
            _close(cell.fast_xi_pass(fw, theta, out.eps_tt, xi, work), want, kind)
        _close(L.xi_pass(cell, fw, theta, out.eps_tt, xi), want, kind)  # the loop takes the fast one


@pytest.mark.parametrize("tr, method", [(L.Truncation(), "bptt"), (L.Truncation("window", 3), "bptt"),
                                        (L.Truncation("chunked", 4), "bptt"), (L.Truncation("randomized", p=0.5), "bptt"),
                                        (L.Truncation(), "rtrl")])
def test_lstm_fast_gradient_equals_the_plain_one(tr, method):
    cell = CELLS["lstm"]
    theta, data, s0 = _lstm_case(B=6)
    B, T, _ = data.X.shape
    xi = L.random_xi(np.random.default_rng(1), 4, T, 0.5) if tr.kind == "randomized" else None
    rows = np.array([4, 0, 2, 5])
    want = L.gradient(cell, "tanh", theta, data, rows, tr, method, xi, s0=s0, fast=False)
    work = {}
    first = L.gradient(cell, "tanh", theta, data, rows, tr, method, xi, s0=s0, work=work)
    L.gradient(cell, "tanh", theta, data, slice(None), method=method, work=work)  # other sizes between
    again = L.gradient(cell, "tanh", theta, data, rows, tr, method, xi, s0=s0, work=work)
    assert first.loss == pytest.approx(want.loss, rel=1e-14) and again.loss == first.loss
    for k in want.grads:
        _close(first.grads[k], want.grads[k], k)
        np.testing.assert_array_equal(again.grads[k], first.grads[k])  # kept arrays leave nothing behind


def test_an_lstm_run_with_the_fast_path_replays_the_plain_one(monkeypatch):
    """Every update of a run (Adam, batches, clipping, chunked truncation) by the fast path
    against the same run with the cell's generic forward and backward (its fast methods hidden)."""
    task = TK.make("echo", T=12, N=16, seed=1)
    theta = init("lstm", 1, 6, 1, seed=2)
    data = L.Data(task.inputs, task.targets, task.mask, task.loss, "mean")
    spec = L.TrainSpec("lstm", "tanh", theta, data, "adam", {"lr": 0.02}, 40, 8, 3, L.Truncation("chunked", 5),
                       clip=("norm", 0.5), checkpoint_every=20)
    fast = list(L.train(spec))
    monkeypatch.setattr(CELLS["lstm"], "fast_forward", None, raising=False)
    monkeypatch.setattr(CELLS["lstm"], "fast_xi_pass", None, raising=False)
    plain = list(L.train(spec))
    assert len(fast) == len(plain)
    for a, b in zip(fast[:-1], plain[:-1]):
        assert a.update == b.update and a.clipped == b.clipped
        assert a.loss == pytest.approx(b.loss, rel=1e-12) and a.grad_norm == pytest.approx(b.grad_norm, rel=1e-12)
    for k, v in plain[-1].params.items():
        _close(fast[-1].params[k], v, k, 1e-12)


@pytest.mark.parametrize("B, T, n, m", [(1, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 3), (3, 4, 1, 7)])
def test_lstm_fast_path_at_the_smallest_sizes(B, T, n, m):
    """One sequence, one step, one unit: the fast path's blocks and reshapes at their edges."""
    cell = CELLS["lstm"]
    theta, data, s0 = _lstm_case(B=B, T=T, n=n, m=m, seed=4)
    data = L.Data(data.X, data.Y, np.ones(T, dtype=bool), "mse", "sum")
    for tr in (L.Truncation(), L.Truncation("chunked", 1)):
        want = L.gradient(cell, "tanh", theta, data, slice(None), tr, s0=s0, fast=False)
        got = L.gradient(cell, "tanh", theta, data, slice(None), tr, s0=s0, work={})
        assert got.loss == pytest.approx(want.loss, rel=1e-14)
        for k in want.grads:
            assert got.grads[k].shape == want.grads[k].shape
            _close(got.grads[k], want.grads[k], k)
