"""backward_parts and grads_per_copy against PyTorch autograd (optional: skips without torch):
the unrolled graph built from torch.nn.LSTMCell / GRUCell / RNNCell with one parameter copy per
step (torch.func.functional_call), so that each copy's .grad is its term; and the states h_k,
c_k kept, so that their .grad for the loss L_t alone is ε^h_{t,k} and ĉ_{t,k} (all of ∂L_t/∂c_k)."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import Problem, parts, run
from app.engine.cells import CELLS
from app.engine.notation import from_canonical

torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")

MODULES = {"lstm": "LSTMCell", "gru": "GRUCell", "vanilla": "RNNCell"}
CLOSE = dict(rtol=1e-11, atol=1e-14)


def setup(cell, T=6, n=2, m=3, p=2, seed=0):
    torch.manual_seed(seed)
    rnn = getattr(torch.nn, MODULES[cell])(n, m).double()
    linear = torch.nn.Linear(m, p).double()
    state = {f"{k}_l0": v.detach().numpy().copy() for k, v in rnn.state_dict().items()}
    state |= {f"linear.{k}": v.detach().numpy().copy() for k, v in linear.state_dict().items()}
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(1, T, n)), rng.normal(size=(1, T, p))
    h0 = rng.normal(size=(1, m)) * 0.5
    prob = Problem(cell=cell, activation="tanh", loss="mse", notation="pytorch", params=state, X=X, h0=h0,
                   mask=np.ones(T, bool), Y=Y, per_copy=True)
    return rnn, linear, state, prob


def unrolled(rnn, linear, prob, only_t=None):
    """(loss, per-step copies {name: [T leaf tensors]}, states [(h_k, c_k)]) with h_k, c_k retaining grad."""
    T = prob.X.shape[1]
    names = dict(rnn.named_parameters())
    copies = {k: [v.detach().clone().requires_grad_(True) for _ in range(T)] for k, v in names.items()}
    lin = {k: [v.detach().clone().requires_grad_(True) for _ in range(T)] for k, v in linear.named_parameters()}
    x = torch.tensor(prob.X[0])
    h = torch.tensor(prob.h0[0])[None]
    c = torch.zeros_like(h)
    loss, states = 0.0, []
    for t in range(T):
        args = (x[t][None], (h, c)) if isinstance(rnn, torch.nn.LSTMCell) else (x[t][None], h)
        out = torch.func.functional_call(rnn, {k: v[t] for k, v in copies.items()}, args)
        h, c = out if isinstance(out, tuple) else (out, c)
        h.retain_grad()
        if c.requires_grad:  # (an LSTM's)
            c.retain_grad()
        states.append((h, c))
        o = torch.func.functional_call(linear, {k: v[t] for k, v in lin.items()}, (h,))
        L = 0.5 * ((o[0] - torch.tensor(prob.Y[0, t])) ** 2).sum()
        if only_t is None or t == only_t:
            loss = loss + L
    return loss, copies, lin, states


@pytest.mark.parametrize("cell", ["vanilla", "lstm", "gru"])
def test_per_copy_terms_are_torchs_per_copy_grads(cell):
    rnn, linear, state, prob = setup(cell)
    r = run(prob)
    hidden = CELLS[cell].hidden
    got = from_canonical("pytorch", r.per_copy, hidden)
    loss, copies, lin, _ = unrolled(rnn, linear, prob)
    loss.backward()
    for k, vs in copies.items():
        want = np.stack([v.grad.numpy() for v in vs])
        np.testing.assert_allclose(got[f"{k}_l0"], want, **CLOSE, err_msg=k)
    for k, vs in lin.items():
        np.testing.assert_allclose(got[f"linear.{k}"], np.stack([v.grad.numpy() for v in vs]), **CLOSE, err_msg=k)


@pytest.mark.parametrize("cell", ["vanilla", "lstm", "gru"])
def test_the_step_parts_are_torchs_state_grads(cell):
    """ε^h_{t,k} = ∂L_t/∂h_k and ε^h_{t,k−1}, for the LSTM ĉ_{t,k} and ĉ_{t,k+1};
    copy k's terms are the .grad of copy k for L_t alone."""
    rnn, linear, state, prob = setup(cell, seed=1)
    r = run(prob)
    T = prob.X.shape[1]
    hidden = CELLS[cell].hidden
    for t, k in ((T - 1, 2), (T - 1, T - 1), (3, 1)):
        loss, copies, lin, states = unrolled(rnn, linear, prob, only_t=t)
        loss.backward()
        s = parts.compute(CELLS[cell], r.forward, r.theta, prob.X, r.out.eps_tt, r.out.e, prob.mask, None, t, k, 0)
        np.testing.assert_allclose(s.step["eps_h"], states[k][0].grad[0].numpy(), **CLOSE)
        if k > 0:
            np.testing.assert_allclose(s.step["eps_h_prev"], states[k - 1][0].grad[0].numpy(), **CLOSE)
        if cell == "lstm":
            # ĉ_{t,k} is all of ∂L_t/∂c_k: c_k's .grad (h_k = o_k ⊙ tanh(c_k) is formed from c_k)
            np.testing.assert_allclose(s.step["c_hat"], states[k][1].grad[0].numpy(), **CLOSE)
            if k < t:
                np.testing.assert_allclose(s.step_from["c_hat"], states[k + 1][1].grad[0].numpy(), **CLOSE)
        terms = from_canonical("pytorch", s.terms, hidden)
        for name, vs in copies.items():
            np.testing.assert_allclose(terms[f"{name}_l0"], vs[k].grad.numpy(), **CLOSE, err_msg=name)
