"""The PyTorch preset against torch itself (optional: torch is a bench extra, not a dependency)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[bench]')")

PRESET = Path(__file__).resolve().parent.parent / "app" / "presets" / "pytorch-rnn.json"


def test_pytorch_preset_matches_torch_backward(client):
    req = json.loads(PRESET.read_text())["request"]
    d = client.post("/api/v1/bptt", json=req).json()
    rnn = torch.nn.RNN(4, 5).double()
    with torch.no_grad():
        for name, value in req["params"].items():
            getattr(rnn, name).copy_(torch.tensor(value))
    x = torch.tensor(np.array(req["inputs"]).transpose(1, 0, 2), requires_grad=True)  # (T, B, n)
    h0 = torch.tensor(np.array(req["h0"])[None], requires_grad=True)
    dh = torch.tensor(np.array(req["upstream"]).transpose(1, 0, 2))
    h, _ = rnn(x, h0)
    h.backward(dh)
    np.testing.assert_allclose(np.array(d["forward"]["h"]).transpose(1, 0, 2), h.detach().numpy(), rtol=1e-12)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        np.testing.assert_allclose(d["grads"][name], getattr(rnn, name).grad.numpy(), rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(np.array(d["grads"]["inputs"]).transpose(1, 0, 2), x.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(d["grads"]["h0"], h0.grad.numpy()[0], rtol=1e-10)
