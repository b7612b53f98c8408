"""The engine against the independent plain reference of tests/reference_gated.py (loops per
sequence, loss and step; checked against torch.nn.LSTM/GRU on its own): every cell, loss,
loss steps, truncation and batch; tables ε^h, ε^c, δ; sums; every gradient; per-step
gradients; RTRL."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import reference_gated as ref
from test_engine_fd import make_problem
from test_engine_gated import make_gated

from app.engine import run
from app.engine.notation import from_canonical

CLOSE = dict(rtol=1e-12, atol=1e-14)


def case_of(p):
    """The reference's Case for an engine Problem (its parameters under its own names)."""
    hidden = ("W_ih", "W_hh", "b_ih", "b_hh") if p.cell in ("lstm", "gru") else ("W_xh", "W_hh", "b_h")
    notation = "pytorch" if p.cell in ("lstm", "gru") else "canonical"
    params = from_canonical(notation, p.params, hidden)
    return ref.Case(cell=p.cell, params=params, X=p.X, loss=p.loss, Y=p.Y, G=p.G, mask=p.mask,
                    reduction=p.reduction, h0=p.h0, c0=p.c0, activation=p.activation)


def problem(cell, loss, steps, trunc, B):
    reduction = "mean" if B == 2 else "sum"
    if cell in ("lstm", "gru"):
        return make_gated(cell, loss, steps, trunc, B, reduction, T=5)
    p = make_problem(cell, "tanh", loss, steps, trunc, B, reduction, T=5)
    return dataclasses.replace(p, eps_tables=True)


@pytest.mark.parametrize(
    "cell,loss,steps,trunc,B",
    list(itertools.product(["vanilla", "residual", "lstm", "gru"], ["softmax_ce", "mse", "upstream"],
                           ["all", "mask"], [None, 2], [1, 2])),
)
def test_engine_equals_the_plain_reference(cell, loss, steps, trunc, B):
    p = problem(cell, loss, steps, trunc, B)
    r = run(p)
    want = ref.bptt(case_of(p), trunc)
    notation = "pytorch" if cell in ("lstm", "gru") else "canonical"
    hidden = ("W_ih", "W_hh", "b_ih", "b_hh") if cell in ("lstm", "gru") else ("W_xh", "W_hh", "b_h")
    np.testing.assert_allclose(r.table.delta, want["delta"], **CLOSE)
    np.testing.assert_allclose(r.table.eps["h"], want["eps_h"], **CLOSE)
    np.testing.assert_allclose(r.table.dz, want["da"], **CLOSE)
    if cell == "lstm":
        np.testing.assert_allclose(r.table.eps["c"], want["eps_c"], **CLOSE)
    if trunc is None:  # (truncated, dh sums the rows t − k < K: see DeltaTable.eps)
        np.testing.assert_allclose(r.table.dh, want["dh"], **CLOSE)
    grads = from_canonical(notation, r.grads, hidden)
    per_step = from_canonical(notation, r.per_step, hidden)
    for name in grads:
        np.testing.assert_allclose(grads[name], want["grads"][name], **CLOSE, err_msg=name)
        np.testing.assert_allclose(per_step[name], want["per_step"][name], **CLOSE, err_msg=name)
    np.testing.assert_allclose(r.ds0["h"], want["grads"]["h0"], **CLOSE)
    if cell == "lstm":
        np.testing.assert_allclose(r.ds0["c"], want["grads"]["c0"], **CLOSE)
    np.testing.assert_allclose(r.dX, want["grads"]["X"], **CLOSE)
    if trunc is None:
        rt = run(dataclasses.replace(p, method="rtrl"))
        want_rtrl = ref.rtrl_grads(case_of(p))
        for name, g in from_canonical(notation, rt.grads, hidden).items():
            np.testing.assert_allclose(g, want_rtrl[name], rtol=1e-10, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_gates_and_states_equal_the_reference(cell):
    p = make_gated(cell, "mse", "all", None, 2, T=5)
    fw, want = run(p).forward, ref.forward(case_of(p))
    np.testing.assert_allclose(fw.h, want["h"], rtol=1e-14)
    np.testing.assert_allclose(fw.z, want["a"], rtol=1e-14)
    names = {"u": "z"}  # the GRU's update gate: u here, z in PyTorch (and the reference)
    for g, a in fw.gates.items():
        np.testing.assert_allclose(a, want["gates"][names.get(g, g)], rtol=1e-14, err_msg=g)
    if cell == "lstm":
        np.testing.assert_allclose(fw.states["c"], want["c"], rtol=1e-14)
