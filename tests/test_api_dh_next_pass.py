"""The response field dh_next_pass (what the page's step-by-step player shows for course note
003's efficient route): dh_k = ε_{k,k} + dh_next_k, dz_k = f'(z_k) ⊙ dh_k, computed apart from
the δ table, with dz_gap saying how far its dz is from the table's Σ_t δ_{t,k}.

Checked by hand (note 003), by central finite differences of the plain reference for every
cell (dh_next_k = Σ_{t>k} ∂L_t/∂h_k: the losses after k reach h_k only through copy k + 1),
and against PyTorch's autograd where torch is installed."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest
import reference_gated as ref
from fastapi.testclient import TestClient
from test_engine_vs_reference_gated import case_of, problem

from app.engine import run
from app.main import create_app
from app.settings import Settings

J = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings())) as c:
        yield c


def post(client, body):
    r = client.post("/api/v1/bptt", content=orjson.dumps(body), headers=J)
    assert r.status_code == 200, r.text
    return r.json()


def test_note_003_by_hand(client):
    """W_hh = 0.8, one unit: dh_next_k = 0.8 · dz_{k+1}, dh_k = ε_{k,k} + dh_next_k, and the
    pass's dz_k = f'(z_k) dh_k equals the table's Σ_t δ_{t,k} to rounding."""
    body = client.get("/api/v1/presets/note-003").json()
    d = post(client, body | {"fields": ["dh_next_pass", "dz", "eps_tt", "forward", "delta"]})
    p = d["dh_next_pass"]
    assert set(p) == {"dh", "dh_next", "dz", "dz_gap"}
    dz, eps, f = (np.array(x)[:, 0] for x in (p["dz"], d["eps_tt"], d["forward"]["fprime"]))
    dh_next, dh = np.array(p["dh_next"])[:, 0], np.array(p["dh"])[:, 0]
    assert dh_next[2] == 0.0  # nothing comes from after T
    np.testing.assert_allclose(dh_next[:2], 0.8 * dz[1:], rtol=1e-15)
    np.testing.assert_allclose(dh, eps + dh_next, rtol=1e-15)
    np.testing.assert_allclose(dz, f * dh, rtol=1e-15)
    column_sums = [sum(d["delta"][t][k][0] for t in range(k, 3)) for k in range(3)]
    np.testing.assert_allclose(dz, column_sums, rtol=1e-14)
    np.testing.assert_allclose(dz, np.array(d["dz"])[:, 0], rtol=1e-14)
    assert max(p["dz_gap"]) < 1e-16
    # the numbers a student checks by hand (tanh, targets 0.5, 0.8, 0.9)
    np.testing.assert_allclose(dz, [-0.01809849978551882, 0.01858733822263736, 0.003616143348959174], rtol=1e-12)


@pytest.mark.parametrize("cell", ["vanilla", "residual", "lstm", "gru"])
@pytest.mark.parametrize("B", [1, 2])
def test_the_pass_equals_finite_differences(cell, B):
    """For every cell: dh_k = Σ_{t≥k} ∂L_t/∂h_k, dh_next_k = Σ_{t>k} ∂L_t/∂h_k (dc likewise),
    dz_k = Σ_t ∂L_t/∂a_k, by central differences of the plain reference."""
    p = dataclasses.replace(problem(cell, "mse", "mask", None, B), dh_next_steps=True)
    r = run(p)
    fd = ref.fd_tables(case_of(p))
    T = p.X.shape[1]
    later = np.tri(T, k=-1, dtype=bool).T[None, :, :, None].swapaxes(1, 2)  # [t, k]: t > k
    close = dict(rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(r.dh_next.d["h"], fd["eps_h"].sum(axis=1), **close)
    np.testing.assert_allclose(r.dh_next.d_next["h"], (fd["eps_h"] * later).sum(axis=1), **close)
    np.testing.assert_allclose(r.dh_next.dz, fd["delta"].sum(axis=1), **close)
    if cell == "lstm":
        np.testing.assert_allclose(r.dh_next.d["c"], fd["eps_c"].sum(axis=1), **close)
        np.testing.assert_allclose(r.dh_next.d_next["c"], (fd["eps_c"] * later).sum(axis=1), **close)
    assert np.all(r.dz_gap < 1e-14)


def test_the_pass_equals_torch_autograd():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")
    rng = np.random.default_rng(4)
    T, n, m, p = 6, 2, 3, 2
    W = {"W_xh": rng.uniform(-1, 1, (m, n)), "W_hh": rng.uniform(-1, 1, (m, m)), "b_h": rng.uniform(-1, 1, m),
         "W_hy": rng.uniform(-1, 1, (p, m)), "b_y": rng.uniform(-1, 1, p)}
    X, Y = rng.normal(size=(T, n)), rng.normal(size=(T, p))
    mask = [True, False, True, True, False, True]
    with TestClient(create_app(Settings())) as c:
        d = post(c, {"inputs": X.tolist(), "targets": Y.tolist(), "loss_steps": mask,
                     "params": {k: v.tolist() for k, v in W.items()}, "fields": ["dh_next_pass"]})
    tw = {k: torch.tensor(v) for k, v in W.items()}
    hs, h, losses = [], torch.zeros(m, dtype=torch.float64, requires_grad=True), []
    for t in range(T):
        h = torch.tanh(tw["W_xh"] @ torch.tensor(X[t]) + tw["W_hh"] @ h + tw["b_h"])
        hs.append(h)
        o = tw["W_hy"] @ h + tw["b_y"]
        losses.append(0.5 * ((o - torch.tensor(Y[t])) ** 2).sum() if mask[t] else torch.zeros((), dtype=torch.float64))
    for k in range(T - 1):
        later = sum(losses[k + 1:])
        (g,) = torch.autograd.grad(later, hs[k], retain_graph=True)
        np.testing.assert_allclose(d["dh_next_pass"]["dh_next"][k], g.numpy(), rtol=1e-12, atol=1e-15)
    total = torch.autograd.grad(sum(losses), hs)
    np.testing.assert_allclose(d["dh_next_pass"]["dh"], np.stack([g.numpy() for g in total]), rtol=1e-12, atol=1e-15)


def test_with_truncation_the_pass_stays_exact_and_dz_gap_says_what_truncation_drops(client):
    body = client.get("/api/v1/presets/note-003").json()
    exact = post(client, body | {"fields": ["dz"]})
    d = post(client, body | {"truncation": 1, "fields": ["dh_next_pass", "dz"]})
    np.testing.assert_allclose(d["dh_next_pass"]["dz"], exact["dz"], rtol=1e-14)  # the pass knows no truncation
    gap = np.abs(np.array(d["dh_next_pass"]["dz"]) - np.array(d["dz"])).max(axis=-1)
    np.testing.assert_allclose(d["dh_next_pass"]["dz_gap"], gap, rtol=1e-15)
    assert gap[0] > 1e-3 and gap[2] == 0.0  # K = 1 keeps δ_{t,t} only: the last step loses nothing


def test_only_when_asked_for_and_absent_with_rtrl(client):
    body = client.get("/api/v1/presets/note-003").json()
    assert "dh_next_pass" not in post(client, body)
    d = post(client, body | {"method": "rtrl", "fields": ["dh_next_pass"]})
    assert d["dh_next_pass"] is None and any("dh_next_pass" in w for w in d["warnings"])
    b = post(client, body | {"inputs": [body["inputs"]] * 2, "targets": [body["targets"]] * 2,
                             "fields": ["dh_next_pass"]})["dh_next_pass"]
    assert np.array(b["dh"]).shape == (2, 3, 1) and np.array(b["dz_gap"]).shape == (2, 3)
