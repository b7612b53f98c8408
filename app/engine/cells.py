"""Recurrent cells: the forward pass and how an error term crosses one step backwards.

Vectors are rows (numpy convention): ``z_t = x_t W_xhᵀ + h_{t−1} W_hhᵀ + b_h`` is the row
form of ``z_t = W_xh x_t + W_hh h_{t−1} + b_h``, and ``δ @ W_hh`` is the row form of ``W_hhᵀ δ``.

Every function accepts optional leading axes ("...") on parameters and inputs, so that the
finite-difference check can run many perturbed copies of the network in one vectorised pass.

A cell exposes three things, which is all ``bptt`` needs; a gated cell (LSTM, GRU) would add
its own state to ``carry`` and its gate pre-activations to ``z`` without changing the API:

- ``forward``   z, a = f(z), h for every step
- ``carry``     ε_{t,k} from δ_{t,k+1} (and ε_{t,k+1})
- ``jacobian``  J_k = ∂h_k/∂h_{k−1}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import Activation


@dataclass(frozen=True)
class Forward:
    """Forward-pass record of one run; B = batch, T = steps, m = hidden units."""

    #: (..., B, T, m) pre-activations z_t ("net input")
    z: np.ndarray
    #: (..., B, T, m) f(z_t)
    a: np.ndarray
    #: (..., B, T, m) hidden states h_t
    h: np.ndarray
    #: (..., B, T, m) hidden states h_{t−1} (h_prev[:, 0] = h_0)
    h_prev: np.ndarray
    #: (..., B, T, m) f'(z_t)
    fprime: np.ndarray


@dataclass(frozen=True)
class Cell:
    name: str
    #: residual cell: h_t = h_{t−1} + f(z_t); vanilla: h_t = f(z_t)
    residual: bool

    def forward(
        self, act: Activation, W_xh: np.ndarray, W_hh: np.ndarray, b_h: np.ndarray,
        X: np.ndarray, h0: np.ndarray,
    ) -> Forward:
        """W_xh (..., m, n), W_hh (..., m, m), b_h (..., m), X (..., B, T, n), h0 (..., B, m)."""
        # Input projections of all steps at once: x_t W_xhᵀ + b_h, shape (..., B, T, m).
        xw = X @ np.swapaxes(W_xh, -1, -2)[..., None, :, :] + b_h[..., None, None, :]
        W_hhT = np.swapaxes(W_hh, -1, -2)
        T = X.shape[-2]
        lead = np.broadcast_shapes(xw.shape[:-2], h0.shape[:-1], W_hh.shape[:-2] + (1,))
        m = xw.shape[-1]
        z = np.empty(lead + (T, m))
        a = np.empty_like(z)
        h = np.empty_like(z)
        h_prev = np.empty_like(z)
        h_t = np.broadcast_to(h0, lead + (m,))
        for t in range(T):
            h_prev[..., t, :] = h_t
            z_t = xw[..., t, :] + h_t @ W_hhT  # z_t = W_xh x_t + W_hh h_{t−1} + b_h
            a_t = act.f(z_t)
            h_t = h_t + a_t if self.residual else a_t
            z[..., t, :] = z_t
            a[..., t, :] = a_t
            h[..., t, :] = h_t
        return Forward(z=z, a=a, h=h, h_prev=h_prev, fprime=act.fprime(z, a))

    def carry(self, delta_next: np.ndarray, eps_next: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """ε_{t,k} from δ_{t,k+1} and ε_{t,k+1} (rows t).

        vanilla:  ε_{t,k} = W_hhᵀ δ_{t,k+1}
        residual: ε_{t,k} = ε_{t,k+1} + W_hhᵀ δ_{t,k+1}
        """
        eps = delta_next @ W_hh
        if self.residual:
            eps += eps_next
        return eps

    def jacobian(self, fprime_k: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh  (residual: I + diag(f'(z_k)) W_hh).

        fprime_k (..., m) → (..., m, m)
        """
        J = fprime_k[..., :, None] * W_hh
        if self.residual:
            J = J + np.eye(W_hh.shape[-1])
        return J


CELLS: dict[str, Cell] = {
    "vanilla": Cell("vanilla", residual=False),
    "residual": Cell("residual", residual=True),
}
