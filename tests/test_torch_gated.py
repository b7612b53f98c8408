"""LSTM and GRU against torch.nn.LSTM / nn.GRU through state_dict() names (optional: torch is a
bench extra; these tests skip where it is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import Problem, run
from app.engine.notation import from_canonical

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")

MODULES = {"lstm": "LSTM", "gru": "GRU"}


def torch_model(cell, n, m, p, seed):
    torch.manual_seed(seed)
    rnn = getattr(torch.nn, MODULES[cell])(n, m, batch_first=True).double()
    linear = torch.nn.Linear(m, p).double()
    state = {k: v.detach().numpy().copy() for k, v in rnn.state_dict().items()}
    state |= {f"linear.{k}": v.detach().numpy().copy() for k, v in linear.state_dict().items()}
    return rnn, linear, state


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("loss", ["mse", "softmax_ce"])
@pytest.mark.parametrize("B", [1, 3])
def test_gated_cells_equal_torch(cell, loss, B):
    T, n, m, p = 7, 3, 4, 5
    rng = np.random.default_rng(B)
    rnn, linear, state = torch_model(cell, n, m, p, seed=B)
    X = rng.normal(size=(B, T, n))
    h0 = rng.normal(size=(B, m)) * 0.5
    c0 = rng.normal(size=(B, m)) * 0.5
    mask = np.arange(T) % 3 != 1
    classes = rng.integers(0, p, size=(B, T))
    Y = np.eye(p)[classes] if loss == "softmax_ce" else rng.normal(size=(B, T, p))
    prob = Problem(
        cell=cell, activation="tanh", loss=loss, notation="pytorch", params=state, X=X, h0=h0,
        mask=mask, Y=Y, reduction="mean", c0=c0 if cell == "lstm" else None, eps_tables=True,
    )
    r = run(prob)

    x = torch.tensor(X, requires_grad=True)
    th0 = torch.tensor(h0[None], requires_grad=True)
    tc0 = torch.tensor(c0[None], requires_grad=True)
    out, last = rnn(x, (th0, tc0) if cell == "lstm" else th0)
    o = linear(out)[:, torch.tensor(mask)]  # (B, |S|, p)
    if loss == "mse":
        L = 0.5 * ((o - torch.tensor(Y[:, mask])) ** 2).sum(dim=-1).mean()
    else:
        L = torch.nn.functional.cross_entropy(o.reshape(-1, p), torch.tensor(classes[:, mask]).reshape(-1))
    L.backward()
    np.testing.assert_allclose(float(r.out.loss), L.item(), rtol=1e-13)
    np.testing.assert_allclose(r.forward.h, out.detach().numpy(), rtol=1e-13, atol=1e-15)
    if cell == "lstm":
        np.testing.assert_allclose(r.forward.states["c"][:, -1], last[1].detach().numpy()[0], rtol=1e-13)
    grads = from_canonical("pytorch", r.grads, ("W_ih", "W_hh", "b_ih", "b_hh"))
    named = dict(rnn.named_parameters()) | {f"linear.{k}": v for k, v in linear.named_parameters()}
    assert set(grads) == set(named) == set(state)
    for name, param in named.items():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(r.dX, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(r.table.ds0["h"], th0.grad.numpy()[0], rtol=1e-10, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(r.table.ds0["c"], tc0.grad.numpy()[0], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_delta_h_rows_equal_torch_per_loss(cell):
    """delta_h[t][k] = ∂L_t/∂h_k: torch's gradient of each w_t L_t with respect to the outputs h_k
    (through a loop of nn.LSTMCell/GRUCell with the same weights, keeping every h_k)."""
    T, n, m, p = 6, 2, 3, 2
    rng = np.random.default_rng(5)
    _, linear, state = torch_model(cell, n, m, p, seed=5)
    X, Y = rng.normal(size=(1, T, n)), rng.normal(size=(1, T, p))
    r = run(Problem(cell=cell, activation="tanh", loss="mse", notation="pytorch", params=state, X=X,
                    h0=np.zeros((1, m)), mask=np.ones(T, bool), Y=Y, eps_tables=True))
    step = getattr(torch.nn, MODULES[cell] + "Cell")(n, m).double()
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, k).copy_(torch.tensor(state[k + "_l0"]))
    h, c, hs, losses = torch.zeros(1, m, dtype=torch.float64), torch.zeros(1, m, dtype=torch.float64), [], []
    for t in range(T):
        if cell == "lstm":
            h, c = step(torch.tensor(X[:, t]), (h, c))
        else:
            h = step(torch.tensor(X[:, t]), h)
        hs.append(h)
        losses.append(0.5 * ((linear(h) - torch.tensor(Y[:, t])) ** 2).sum())
    for t in range(T):
        got = torch.autograd.grad(losses[t], hs[: t + 1], retain_graph=True)
        want = np.stack([g.numpy()[0] for g in got])
        np.testing.assert_allclose(r.table.eps["h"][0, t, : t + 1], want, rtol=1e-11, atol=1e-15)
