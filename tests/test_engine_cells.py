"""The cell protocol: the generic δ loop and dh_next pass (app/engine/bptt.py) over any cell,
the registered fast loop of the vanilla and residual cells (app/engine/fast.py) equal to them,
and the whole-state Jacobians that the generic code forms from ``backward_step``."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from test_engine_fd import make_problem

from app.engine import bptt, fast, run
from app.engine.activations import ACTIVATIONS
from app.engine.cells import CELLS
from app.engine.cells.base import Cell
from app.engine.notation import to_canonical
from app.engine.run import initial_states

CLOSE = dict(rtol=1e-14, atol=1e-300)


def traced(p):
    cell, act = CELLS[p.cell], ACTIVATIONS[p.activation]
    theta = to_canonical(p.notation, p.params, p.has_output, cell.hidden)
    r = run(dataclasses.replace(p, diagnostics=False))
    return cell, act, theta, r


@pytest.mark.parametrize(
    "cell,act,trunc,B,keep",
    list(itertools.product(["vanilla", "residual"], ["tanh", "relu"], [None, 1, 3], [1, 2], [True, False])),
)
def test_fast_table_equals_the_generic_loop(cell, act, trunc, B, keep):
    p = make_problem(cell, act, "mse", "mask", trunc, B, T=7, m=4)
    cell_, _, theta, r = traced(p)
    fw, eps_tt = r.forward, r.out.eps_tt
    generic = bptt.delta_table(cell_, fw, theta, eps_tt, trunc, keep)
    quick = fast.delta_table(cell_, fw.fprime, eps_tt, theta["W_hh"], trunc, keep)
    for f in ("delta", "delta_norm", "dz", "dh", "dh0"):
        a, b = getattr(quick, f), getattr(generic, f)
        assert (a is None) == (b is None), f
        if a is not None:
            np.testing.assert_allclose(a, b, **CLOSE, err_msg=f)
    dz, d, ds0 = bptt.dh_next_pass(cell_, fw, theta, eps_tt)
    dz_fast, dh_fast, dh0_fast = fast.dh_next_pass(cell_, fw.fprime, eps_tt, theta["W_hh"])
    # (a sum of terms of both signs: an entry that cancels to 1e-3 of the largest keeps the
    # largest's rounding, 1.8e-14 of itself here, so the tolerance is relative to the array)
    for a, b in ((dz, dz_fast), (d["h"], dh_fast), (ds0["h"], dh0_fast)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14 * np.abs(b).max())


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
def test_run_with_the_generic_loop_gives_the_same_result(cell):
    """dh_next_steps=True takes the generic loop; every gradient is the fast path's to 1e-14."""
    p = make_problem(cell, "tanh", "softmax_ce", "all", None, 2, T=6, m=3)
    fast_r = run(p)
    gen_r = run(dataclasses.replace(p, eps_tables=True, dh_next_steps=True))
    for k in fast_r.grads:
        np.testing.assert_allclose(gen_r.grads[k], fast_r.grads[k], **CLOSE, err_msg=k)
        np.testing.assert_allclose(gen_r.per_step[k], fast_r.per_step[k], **CLOSE, err_msg=k)
    np.testing.assert_allclose(gen_r.table.delta, fast_r.table.delta, **CLOSE)
    # ε_{t,k} = ∂L_t/∂h_k: δ_{t,k} = f'(z_k) ⊙ ε_{t,k}, and Σ_t ε_{t,k} = dh_k
    eps_h = gen_r.table.eps["h"]
    np.testing.assert_allclose(gen_r.forward.fprime[:, None] * eps_h, gen_r.table.delta, **CLOSE)
    np.testing.assert_allclose(eps_h.sum(axis=1), fast_r.table.dh, rtol=1e-13)


@pytest.mark.parametrize("cell", ["vanilla", "residual"])
def test_closed_form_jacobians_equal_the_generic_ones(cell):
    """The vanilla cell's J_k = diag(f') W_hh (residual: + I) and L_k = diag(f'(z_k)) against the
    protocol's generic forms from backward_step on the unit vectors of the state."""
    p = make_problem(cell, "tanh", "mse", "all", None, 2, T=5, m=4)
    c, _, theta, r = traced(p)
    for k in range(5):
        J, L = c.local_jacobians(r.forward, theta, k)
        J_gen, L_gen = Cell.local_jacobians(c, r.forward, theta, k)
        np.testing.assert_allclose(J, J_gen, **CLOSE)
        np.testing.assert_allclose(L, L_gen, **CLOSE)
    J_all, _ = c.step_jacobians(r.forward, theta, range(5))
    J_gen_all, L_gen_all = Cell.step_jacobians(c, r.forward, theta, range(5))
    np.testing.assert_allclose(J_all, J_gen_all, **CLOSE)
    np.testing.assert_allclose(c.gain_norms(r.forward, range(5), None), Cell.gain_norms(c, r.forward, range(5), L_gen_all), rtol=1e-14)


def test_initial_states_of_a_cell_without_cell_state():
    p = make_problem("vanilla", "tanh", "mse", "all", None, 1)
    assert set(initial_states(CELLS["vanilla"], p)) == {"h"}


def test_the_registry_is_the_one_list_of_cells():
    """The API's parser and schema read the registry: a cell added to CELLS is offered by both."""
    from app.api import parse, schemas

    enum = schemas.BPTTRequest.model_json_schema()["properties"]["cell"]["enum"]
    assert enum == list(CELLS)
    assert parse.CELLS is CELLS
