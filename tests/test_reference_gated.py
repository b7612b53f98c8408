"""The independent reference of tests/reference_gated.py, checked three ways: against PyTorch
(torch.nn.LSTM / nn.GRU / nn.Linear loaded through state_dict names, float64, and autograd for
the per-loss tables) where torch is installed; against central finite differences always; and
RTRL against the reference BPTT for every cell."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference_gated as R

try:
    import torch
except ImportError:  # the finite-difference and RTRL tests run without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (pip install torch==2.13.0)")

SIZES = list(itertools.product((1, 3, 5), (1, 2), (1, 2, 7)))  # (m, B, T)
# scale: the weights' standard deviation; 4–6 saturates 30–65 % of the σ gates to within 1e-4 of 0 or 1
LOSSES = ("mse", "softmax_ce", "upstream")
GATED = ("lstm", "gru")


def make_case(cell, m=3, B=2, T=4, n=2, p=2, loss="mse", scale=0.7, seed=0, mask="all", reduction="sum"):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3}.get(cell, 1)
    if cell in GATED:
        params = {
            "weight_ih_l0": rng.normal(size=(G * m, n)) * scale,
            "weight_hh_l0": rng.normal(size=(G * m, m)) * scale,
            "bias_ih_l0": rng.normal(size=G * m) * scale,
            "bias_hh_l0": rng.normal(size=G * m) * scale,
        }
    else:
        params = {
            "W_xh": rng.normal(size=(m, n)) * scale,
            "W_hh": rng.normal(size=(m, m)) * scale,
            "b_h": rng.normal(size=m) * scale,
        }
    out_w, out_b = R.OUTPUT_PARAMS[cell]
    if loss != "upstream":
        params |= {out_w: rng.normal(size=(p, m)), out_b: rng.normal(size=p) * 0.5}
    Y = G_ = None
    if loss == "mse":
        Y = rng.normal(size=(B, T, p))
    elif loss == "softmax_ce":
        Y = rng.dirichlet(np.ones(p), size=(B, T))
    else:
        G_ = rng.normal(size=(B, T, m))
    steps = {"all": np.ones(T, bool), "last": np.arange(T) == T - 1, "even": np.arange(T) % 2 == 0}[mask]
    return R.Case(
        cell, params, rng.normal(size=(B, T, n)), loss=loss, Y=Y, G=G_, mask=steps, reduction=reduction,
        h0=rng.normal(size=(B, m)) * 0.5, c0=rng.normal(size=(B, m)) * 0.5 if cell == "lstm" else None,
    )


def assert_close(got, want, rtol=1e-10, what=""):
    """Elementwise |got − want| ≤ rtol·(|want| + max|want|): relative to the array's scale, so
    entries that saturation makes tiny are compared at the array's precision."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = np.abs(want).max() if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1e-300), err_msg=what)


def assert_fd(got, want, what=""):
    """Against central differences (eps 1e-6, losses of order 1): their error is ~1e-10 absolute."""
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=what)


# ---------------------------------------------------------------- elementwise functions


def test_sigmoid_is_exact_far_into_both_tails():
    import math

    z = np.array([-800.0, -745.0, -700.0, -100.0, -40.0, -38.0, -30.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0, 800.0])
    want = [math.exp(v) / (1 + math.exp(v)) if v < 0 else 1 / (1 + math.exp(-v)) for v in z]
    assert_close(R.sigmoid(z), want, rtol=1e-15)
    assert R.sigmoid(np.array([-38.0]))[0] > 0 and R.dsigmoid(np.array([40.0]))[0] > 0  # no rounding to 0
    assert_close(R.dsigmoid(z), [s * (1 - s) if v < 0 else math.exp(-v) / (1 + math.exp(-v)) ** 2
                                 for v, s in zip(z, want)], rtol=1e-14)
    # each value on its own scale: 1 − tanh²(20) rounds to 0, the true value is 1.7e-17
    for v, want_d in [(0.0, 1.0), (1.0, 1 - math.tanh(1) ** 2), (20.0, 4 * math.exp(-40) / (1 + math.exp(-40)) ** 2),
                      (-30.0, 4 * math.exp(-60) / (1 + math.exp(-60)) ** 2)]:
        assert R.dtanh(np.array([v]))[0] == pytest.approx(want_d, rel=1e-14, abs=0), v
    assert R.dtanh(np.array([800.0]))[0] == 0.0
    for v in (-40.0, 40.0, -700.0):
        e = math.exp(-abs(v))
        assert R.dsigmoid(np.array([v]))[0] == pytest.approx(e / (1 + e) ** 2, rel=1e-14, abs=0), v


# ---------------------------------------------------------------- PyTorch


def torch_modules(case):
    """(rnn module, linear or None, per-step cell module) loaded through state_dict names."""
    B, T, n, m = case.sizes
    Rnn, Cell = {"lstm": (torch.nn.LSTM, torch.nn.LSTMCell), "gru": (torch.nn.GRU, torch.nn.GRUCell)}[case.cell]
    rnn = Rnn(n, m, batch_first=True).double()
    rnn.load_state_dict({k: torch.tensor(case.params[k]) for k in R.CELL_PARAMS[case.cell]})
    cell = Cell(n, m).double()
    cell.load_state_dict({k.removesuffix("_l0"): torch.tensor(case.params[k]) for k in R.CELL_PARAMS[case.cell]})
    lin = None
    if case.has_output:
        p = case.params["linear.weight"].shape[0]
        lin = torch.nn.Linear(m, p).double()
        lin.load_state_dict({k: torch.tensor(case.params["linear." + k]) for k in ("weight", "bias")})
    return rnn, lin, cell


def torch_step_losses(case, lin, H, b, t):
    """w_t L_t of sequence b at step t from torch's h_t (a tensor (m,))."""
    w = float(case.step_weights[t])
    if case.loss == "upstream":
        return w * (torch.tensor(case.G[b, t]) * H).sum()
    o = lin(H)
    y = torch.tensor(case.Y[b, t])
    if case.loss == "mse":
        return w * 0.5 * ((o - y) ** 2).sum()
    return -w * (y * torch.log_softmax(o, -1)).sum()


@needs_torch
@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("m,B,T", SIZES)
@pytest.mark.parametrize("scale", (0.7, 6.0))
def test_forward_matches_torch(cell, m, B, T, scale):
    case = make_case(cell, m=m, B=B, T=T, n=3, scale=scale, seed=m * 100 + B * 10 + T)
    rnn, lin, _ = torch_modules(case)
    h0, c0 = case.initial()
    if cell == "lstm":
        fw = R.lstm_forward(case.params, case.X, h0, c0)
    else:
        fw = R.gru_forward(case.params, case.X, h0)
    X = torch.tensor(case.X)
    with torch.no_grad():
        if cell == "lstm":
            H, _ = rnn(X, (torch.tensor(h0)[None], torch.tensor(c0)[None]))
            # c_t: the final cell state of the prefix x_1 … x_t
            C = np.stack([rnn(X[:, : t + 1], (torch.tensor(h0)[None], torch.tensor(c0)[None]))[1][1][0].numpy()
                          for t in range(T)], axis=1)
            assert_close(fw["c"], C, 1e-13, "c")
        else:
            H, _ = rnn(X, torch.tensor(h0)[None])
        H = H.numpy()
        assert_close(fw["h"], H, 1e-13, "h")
        assert_close(fw["o"], lin(torch.tensor(H)).numpy(), 1e-13, "o")
        # the gates from torch's own h_{t−1}, c_{t−1}, bound to torch's cell by its state update
        Wi, Wh, bi, bh = (torch.tensor(case.params[k]) for k in R.CELL_PARAMS[cell])
        H_prev = np.concatenate([h0[:, None], H[:, :-1]], axis=1)
        gx = torch.nn.functional.linear(X, Wi, bi)
        gh = torch.nn.functional.linear(torch.tensor(H_prev), Wh, bh)
        if cell == "lstm":
            a = (gx + gh).numpy()
            i, f, g, o = (torch.tensor(v) for v in np.split(a, 4, axis=-1))
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            C_prev = np.concatenate([c0[:, None], C[:, :-1]], axis=1)
            assert_close(f.numpy() * C_prev + (i * g).numpy(), C, 1e-13, "c = f c + i g")
            assert_close((o * torch.tanh(torch.tensor(C))).numpy(), H, 1e-13, "h = o tanh c")
            want = {"i": i, "f": f, "g": g, "o": o}
        else:
            xr, xz, xn = gx.chunk(3, -1)
            hr, hz, hn = gh.chunk(3, -1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            nn_ = torch.tanh(xn + r * hn)
            assert_close(((1 - z) * nn_ + z * torch.tensor(H_prev)).numpy(), H, 1e-13, "h = (1−z) n + z h")
            want = {"r": r, "z": z, "n": nn_}
            a = torch.cat([xr + hr, xz + hz, xn + r * hn], -1).numpy()
        assert_close(fw["a"], a, 1e-12, "a")
        for name, v in want.items():
            assert_close(fw["gates"][name], v.numpy(), 1e-13, name)


GRAD_CASES = [
    (cell, loss, m, B, T, mask, reduction)
    for cell in GATED
    for (m, B, T), loss in zip(SIZES, itertools.cycle(LOSSES))
    for mask, reduction in (("all", "sum"), ("even", "mean"))
]


@needs_torch
@pytest.mark.parametrize("cell,loss,m,B,T,mask,reduction", GRAD_CASES)
@pytest.mark.parametrize("scale", (0.7, 4.0))
def test_gradients_match_torch(cell, loss, m, B, T, mask, reduction, scale):
    case = make_case(cell, m=m, B=B, T=T, n=3, p=4, loss=loss, scale=scale, seed=7 * m + B + 31 * T,
                     mask=mask, reduction=reduction)
    ref = R.bptt(case)
    rnn, lin, _ = torch_modules(case)
    h0, c0 = case.initial()
    X = torch.tensor(case.X, requires_grad=True)
    H0 = torch.tensor(h0[None], requires_grad=True)
    C0 = torch.tensor(c0[None], requires_grad=True)
    H, _ = rnn(X, (H0, C0)) if cell == "lstm" else rnn(X, H0)
    L = sum(torch_step_losses(case, lin, H[b, t], b, t) for b in range(B) for t in range(T) if case.S[t])
    L.backward()
    assert ref["loss"] == pytest.approx(L.item(), rel=1e-13)
    for name in R.CELL_PARAMS[cell]:
        assert_close(ref["grads"][name], getattr(rnn, name).grad.numpy(), what=name)
    if lin is not None:
        assert_close(ref["grads"]["linear.weight"], lin.weight.grad.numpy(), what="linear.weight")
        assert_close(ref["grads"]["linear.bias"], lin.bias.grad.numpy(), what="linear.bias")
    assert_close(ref["grads"]["X"], X.grad.numpy(), what="X")
    assert_close(ref["grads"]["h0"], H0.grad.numpy()[0], what="h0")
    if cell == "lstm":
        assert_close(ref["grads"]["c0"], C0.grad.numpy()[0], what="c0")


def torch_unrolled(case, cell_mod, probes=False):
    """The sequence through torch's cell one step at a time (LSTMCell / GRUCell), or through the
    same step in torch's functional ops with a zero probe added to every a_k (probes=True);
    returns per sequence the lists of states h_k, c_k (index 0 = h_0) and probes."""
    B, T, n, m = case.sizes
    h0, c0 = case.initial()
    Wi, Wh, bi, bh = (torch.tensor(case.params[k]) for k in R.CELL_PARAMS[case.cell])
    F = torch.nn.functional
    runs = []
    for b in range(B):
        h = torch.tensor(h0[b], requires_grad=True)
        c = torch.tensor(c0[b], requires_grad=True)
        hs, cs, ps = [h], [c], []
        for t in range(T):
            x = torch.tensor(case.X[b, t])
            if not probes:
                if case.cell == "lstm":
                    h, c = cell_mod(x, (h, c))
                else:
                    h = cell_mod(x, h)
            else:
                G = 4 if case.cell == "lstm" else 3
                pr = torch.zeros(G * m, dtype=torch.float64, requires_grad=True)
                ps.append(pr)
                gx, gh = F.linear(x, Wi, bi), F.linear(h, Wh, bh)
                if case.cell == "lstm":
                    i, f, g, o = (gx + gh + pr).chunk(4)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                else:
                    xr, xz, xn = gx.chunk(3)
                    hr, hz, hn = gh.chunk(3)
                    q_r, q_z, q_n = pr.chunk(3)
                    r, z = torch.sigmoid(xr + hr + q_r), torch.sigmoid(xz + hz + q_z)
                    h = (1 - z) * torch.tanh(xn + r * hn + q_n) + z * h
            hs.append(h)
            cs.append(c)
        runs.append((hs, cs, ps))
    return runs


@needs_torch
@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("m,B,T", [(1, 1, 1), (3, 2, 2), (5, 1, 7), (3, 2, 7)])
@pytest.mark.parametrize("loss,scale", [("mse", 0.7), ("softmax_ce", 0.7), ("upstream", 0.7), ("mse", 5.0)])
def test_per_loss_tables_match_torch_autograd(cell, m, B, T, loss, scale):
    case = make_case(cell, m=m, B=B, T=T, n=2, loss=loss, scale=scale, seed=m + 5 * T,
                     mask="even" if T > 2 else "all")
    ref = R.bptt(case)
    _, lin, cell_mod = torch_modules(case)
    stepwise = torch_unrolled(case, cell_mod)
    probed = torch_unrolled(case, cell_mod, probes=True)
    keys = ("eps_h", "eps_h0", "delta") + (("eps_c", "eps_c0") if cell == "lstm" else ())
    want = {k: np.zeros_like(ref[k]) for k in keys}
    for b in range(B):
        hs, cs, _ = stepwise[b]
        hp, _, ps = probed[b]
        assert_close(torch.stack(hp[1:]).detach().numpy(), torch.stack(hs[1:]).detach().numpy(), 1e-13, "h")
        for t in range(T):
            if not case.S[t]:
                continue
            Lt = torch_step_losses(case, lin, hs[t + 1], b, t)
            states = hs[: t + 2] + (cs[: t + 2] if cell == "lstm" else [])
            grads = torch.autograd.grad(Lt, states, allow_unused=True, retain_graph=True)
            g = [np.zeros(m) if v is None else v.numpy() for v in grads]
            want["eps_h0"][b, t] = g[0]
            want["eps_h"][b, t, : t + 1] = np.stack(g[1 : t + 2])
            if cell == "lstm":
                want["eps_c0"][b, t] = g[t + 2]
                want["eps_c"][b, t, : t + 1] = np.stack(g[t + 3 :])
            Lp = torch_step_losses(case, lin, hp[t + 1], b, t)
            dp = torch.autograd.grad(Lp, ps[: t + 1], retain_graph=True)
            want["delta"][b, t, : t + 1] = np.stack([v.numpy() for v in dp])
    for k, v in want.items():
        assert_close(ref[k], v, what=k)


@needs_torch
@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("T,K", [(7, 1), (7, 3), (5, 4), (2, 2), (4, 9)])
@pytest.mark.parametrize("loss", LOSSES)
def test_truncated_window_matches_torch_detach(cell, T, K, loss):
    """Window K in torch: for each loss t, run the K steps t−K+1 … t from the state before them,
    detached (or from h_0, c_0 when the window reaches the start); ε^h_{t,k} for t − k ≤ K."""
    B, m = 2, 3
    case = make_case(cell, m=m, B=B, T=T, n=2, loss=loss, seed=T * 10 + K, mask="even", reduction="mean")
    ref = R.bptt(case, K=K)
    _, lin, cell_mod = torch_modules(case)
    h0, c0 = case.initial()
    with torch.no_grad():  # the states, untruncated
        full = torch_unrolled(case, cell_mod)
    X = torch.tensor(case.X, requires_grad=True)
    H0 = torch.tensor(h0, requires_grad=True)
    C0 = torch.tensor(c0, requires_grad=True)
    eps_h = np.zeros_like(ref["eps_h"])
    for b in range(B):
        for t in range(T):
            if not case.S[t]:
                continue
            lo = max(0, t - K + 1)
            if lo == 0:
                h, c = H0[b], C0[b]
            else:
                h = full[b][0][lo].detach().requires_grad_(True)
                c = full[b][1][lo].detach().requires_grad_(True)
            hs = [h]
            for k in range(lo, t + 1):
                if cell == "lstm":
                    h, c = cell_mod(X[b, k], (h, c))
                else:
                    h = cell_mod(X[b, k], h)
                hs.append(h)
            Lt = torch_step_losses(case, lin, h, b, t)
            for v in hs:
                v.retain_grad()
            Lt.backward()
            for j, v in enumerate(hs):
                if v.grad is not None and lo + j - 1 >= 0:
                    eps_h[b, t, lo + j - 1] = v.grad.numpy()
    for name in R.CELL_PARAMS[cell]:
        assert_close(ref["grads"][name], getattr(cell_mod, name.removesuffix("_l0")).grad.numpy(), what=name)
    if lin is not None:
        assert_close(ref["grads"]["linear.weight"], lin.weight.grad.numpy(), what="linear.weight")
    assert_close(ref["grads"]["X"], X.grad.numpy(), what="X")
    assert_close(ref["grads"]["h0"], H0.grad.numpy(), what="h0")
    if cell == "lstm":
        assert_close(ref["grads"]["c0"], C0.grad.numpy(), what="c0")
    assert_close(ref["eps_h"], eps_h, what="eps_h")


@needs_torch
@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("T,C", [(7, 1), (7, 3), (6, 3), (5, 5), (4, 9)])
@pytest.mark.parametrize("loss", LOSSES)
def test_chunked_truncation_matches_torch_detach_every_C_steps(cell, T, C, loss):
    """Chunks of C steps as a PyTorch training loop makes them: one pass over the sequence,
    the state detached after every C steps, one backward of the whole loss."""
    B, m = 2, 3
    case = make_case(cell, m=m, B=B, T=T, n=2, loss=loss, seed=T * 10 + C, mask="even", reduction="mean")
    ref = R.bptt(case, chunk=C)
    _, lin, cell_mod = torch_modules(case)
    h0, c0 = case.initial()
    X = torch.tensor(case.X, requires_grad=True)
    H0 = torch.tensor(h0, requires_grad=True)
    C0 = torch.tensor(c0, requires_grad=True)
    L = 0.0
    nodes = []  # (b, k, tensor) for every state h_k that takes part, detached copies too
    for b in range(B):
        h, c = H0[b], C0[b]
        for k in range(T):
            if k > 0 and k % C == 0:
                h, c = h.detach().requires_grad_(True), c.detach().requires_grad_(True)
                nodes.append((b, k - 1, h))
            if cell == "lstm":
                h, c = cell_mod(X[b, k], (h, c))
            else:
                h = cell_mod(X[b, k], h)
            h.retain_grad()
            nodes.append((b, k, h))
            if case.S[k]:
                L = L + torch_step_losses(case, lin, h, b, k)
    L.backward()
    dh = np.zeros((B, T, m))
    for b, k, v in nodes:
        if v.grad is not None:
            dh[b, k] += v.grad.numpy()
    for name in R.CELL_PARAMS[cell]:
        assert_close(ref["grads"][name], getattr(cell_mod, name.removesuffix("_l0")).grad.numpy(), what=name)
    assert_close(ref["grads"]["X"], X.grad.numpy(), what="X")
    assert_close(ref["grads"]["h0"], H0.grad.numpy(), what="h0")
    if cell == "lstm":
        assert_close(ref["grads"]["c0"], C0.grad.numpy(), what="c0")
    assert_close(ref["dh"], dh, what="dh")


@needs_torch
@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("T,seed", [(1, 0), (4, 1), (7, 2), (7, 3)])
def test_edge_weights_match_torch_scaled_detach(cell, T, seed):
    """Randomized truncation with a drawn ξ: in torch the state into step k is
    ξ_k s + (1 − ξ_k) s.detach(), same value, gradient scaled by ξ_k."""
    B, m, pi = 2, 3, 0.6
    case = make_case(cell, m=m, B=B, T=T, n=2, loss="mse", seed=seed, mask="even")
    rng = np.random.default_rng(seed)
    xi = np.where(rng.random((B, T)) < pi, 1 / pi, 0.0)
    ref = R.bptt(case, xi=xi)
    _, lin, cell_mod = torch_modules(case)
    h0, c0 = case.initial()
    X = torch.tensor(case.X, requires_grad=True)
    H0 = torch.tensor(h0, requires_grad=True)
    C0 = torch.tensor(c0, requires_grad=True)
    L = 0.0
    for b in range(B):
        h, c = H0[b], C0[b]
        for k in range(T):
            x = float(xi[b, k])
            h, c = x * h + (1 - x) * h.detach(), x * c + (1 - x) * c.detach()
            if cell == "lstm":
                h, c = cell_mod(X[b, k], (h, c))
            else:
                h = cell_mod(X[b, k], h)
            if case.S[k]:
                L = L + torch_step_losses(case, lin, h, b, k)
    L.backward()
    for name in R.CELL_PARAMS[cell]:
        assert_close(ref["grads"][name], getattr(cell_mod, name.removesuffix("_l0")).grad.numpy(), what=name)
    assert_close(ref["grads"]["X"], X.grad.numpy(), what="X")
    assert_close(ref["grads"]["h0"], H0.grad.numpy(), what="h0")
    if cell == "lstm":
        assert_close(ref["grads"]["c0"], C0.grad.numpy(), what="c0")


# ---------------------------------------------------------------- finite differences (no torch needed)

FD_CASES = [
    ("vanilla", "mse", 3, 2, 4, "even", "mean", None),
    ("residual", "softmax_ce", 3, 1, 3, "all", "sum", None),
    ("lstm", "mse", 3, 2, 4, "even", "mean", None),
    ("lstm", "softmax_ce", 1, 1, 2, "all", "sum", None),
    ("lstm", "upstream", 3, 1, 7, "last", "sum", None),
    ("lstm", "mse", 5, 1, 2, "all", "sum", 4.0),
    ("gru", "mse", 3, 2, 4, "even", "mean", None),
    ("gru", "softmax_ce", 1, 1, 2, "all", "sum", None),
    ("gru", "upstream", 3, 1, 7, "last", "sum", None),
    ("gru", "mse", 5, 1, 2, "all", "sum", 4.0),
]


@pytest.mark.parametrize("cell,loss,m,B,T,mask,reduction,scale", FD_CASES)
def test_gradients_and_tables_match_finite_differences(cell, loss, m, B, T, mask, reduction, scale):
    case = make_case(cell, m=m, B=B, T=T, loss=loss, mask=mask, reduction=reduction, scale=scale or 0.7, seed=m + T)
    ref = R.bptt(case)
    fd = R.fd_grads(case)
    for name, v in fd.items():
        assert_fd(ref["grads"][name], v, name)
    for name, v in R.fd_tables(case).items():
        assert_fd(ref[name], v, name)
    # the unweighted L_t, weighted, are the per-step losses; the sums are the tables' sums
    assert_close((R.loss_t(case) * case.step_weights).sum(axis=0), R.step_losses(case), 1e-15, "loss_t")
    assert ref["loss"] == pytest.approx(R.step_losses(case).sum(), rel=1e-14)
    assert_close(ref["dh"], ref["eps_h"].sum(axis=1), 1e-15, "dh")
    for name in R.CELL_PARAMS[cell]:
        assert_close(ref["per_step"][name].sum(axis=0), ref["grads"][name], 1e-15, name)


@pytest.mark.parametrize("cell", ("vanilla", "lstm", "gru"))
@pytest.mark.parametrize("K", (1, 2, 3))
def test_truncated_gradients_match_finite_differences_of_the_copies(cell, K):
    case = make_case(cell, m=2, B=1, T=4, loss="mse", mask="even", seed=K)
    ref = R.bptt(case, K=K)
    for name, v in R.fd_truncated_grads(case, K).items():
        assert_fd(ref["grads"][name], v, name)
    # the window: δ_{t,k} only for t − k < K, ε^h_{t,k} only for t − k ≤ K
    t, k = np.indices((4, 4))
    assert not ref["delta"][:, (t - k >= K) | (k > t)].any()
    assert not ref["eps_h"][:, (t - k > K) | (k > t)].any()
    assert ref["delta"][:, (t - k < K) & (k <= t) & (t % 2 == 0)].any(axis=-1).all()


@pytest.mark.parametrize("cell", ("vanilla", "lstm", "gru"))
@pytest.mark.parametrize("C", (1, 2, 3))
def test_chunked_gradients_match_finite_differences_of_the_copies(cell, C):
    case = make_case(cell, m=2, B=1, T=5, loss="mse", mask="even", seed=C)
    ref = R.bptt(case, chunk=C)
    for name, v in R.fd_truncated_grads(case, chunk=C).items():
        assert_fd(ref["grads"][name], v, name)
    t, k = np.indices((5, 5))
    same = (t // C == k // C) & (k <= t)
    assert not ref["delta"][:, ~same].any()
    assert ref["delta"][:, same & (t % 2 == 0)].any(axis=-1).all()
    assert not ref["eps_h"][:, (k < (t // C) * C - 1) | (k > t)].any()


@pytest.mark.parametrize("cell", ("vanilla", "lstm", "gru"))
def test_edge_weights_zero_at_the_chunk_starts_are_the_chunks(cell):
    case = make_case(cell, m=3, B=2, T=7, mask="even", seed=4)
    C = 3
    xi = np.where(np.arange(7) % C == 0, 0.0, 1.0)
    xi[0] = 1.0  # the edge from h_0: the first chunk keeps it
    a, b = R.bptt(case, chunk=C), R.bptt(case, xi=xi)
    for name in a["grads"]:
        np.testing.assert_array_equal(a["grads"][name], b["grads"][name], err_msg=name)
    np.testing.assert_array_equal(a["delta"], b["delta"])
    ones = R.bptt(case, xi=np.ones(7))
    for name in a["grads"]:
        np.testing.assert_array_equal(ones["grads"][name], R.bptt(case)["grads"][name], err_msg=name)


def test_untruncated_window_is_the_full_pass():
    case = make_case("lstm", T=5, mask="even")
    full, wide, one_chunk = R.bptt(case), R.bptt(case, K=5), R.bptt(case, chunk=5)
    for name in full["grads"]:
        np.testing.assert_array_equal(full["grads"][name], wide["grads"][name])
        np.testing.assert_array_equal(full["grads"][name], one_chunk["grads"][name])


# ---------------------------------------------------------------- RTRL = BPTT


@pytest.mark.parametrize("cell", ("vanilla", "residual", "lstm", "gru"))
@pytest.mark.parametrize("m,B,T", [(1, 1, 1), (1, 2, 7), (3, 1, 2), (3, 2, 7), (5, 2, 7)])
@pytest.mark.parametrize(
    "loss,scale,mask", [("mse", 0.7, "all"), ("softmax_ce", 0.7, "even"), ("upstream", 0.7, "last"), ("mse", 5.0, "even")]
)
def test_rtrl_equals_bptt(cell, m, B, T, loss, scale, mask):
    case = make_case(cell, m=m, B=B, T=T, n=3, loss=loss, scale=scale, mask=mask, seed=m * T + B,
                     reduction="mean" if B == 2 else "sum")
    bp = R.bptt(case)["grads"]
    rt = R.rtrl_grads(case)
    assert set(rt) == set(bp) - {"X"}
    for name, v in rt.items():
        assert_close(v, bp[name], 1e-10, name)


@pytest.mark.parametrize("act", ("tanh", "sigmoid", "relu", "identity"))
def test_rtrl_equals_bptt_for_every_activation(act):
    from dataclasses import replace

    case = replace(make_case("vanilla", m=3, B=2, T=5, n=2, mask="even", seed=3), activation=act)
    bp, rt = R.bptt(case)["grads"], R.rtrl_grads(case)
    for name, v in rt.items():
        assert_close(v, bp[name], 1e-10, name)
