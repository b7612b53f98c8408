"""Recurrent cells: the forward pass and how an error term crosses one step backwards.

Vectors are rows (numpy convention): ``z_t = x_t W_xhᵀ + h_{t−1} W_hhᵀ + b_h`` is the row
form of ``z_t = W_xh x_t + W_hh h_{t−1} + b_h``, and ``δ @ W_hh`` is the row form of ``W_hhᵀ δ``.

Every function accepts optional leading axes ("...") on parameters and inputs, so that the
finite-difference check can run many perturbed copies of the network in one vectorised pass.

A cell exposes these, which is all ``bptt`` and ``diagnostics`` need; a gated cell (LSTM, GRU)
would add its own state to ``carry`` and its gate pre-activations to ``z`` without changing the API:

- ``forward``   z, a = f(z), h for every step
- ``carry``     ε_{t,k} from δ_{t,k+1} (and ε_{t,k+1}); with δ = f' ⊙ u it is J_{k+1}ᵀ u
- ``jvp``       J_k v without forming J_k
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
    #: (..., B, T, m) f(z_t) (vanilla cell: the same array as h)
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
        h = np.empty_like(z)
        a = np.empty_like(z) if self.residual else h  # vanilla: h_t = f(z_t), the same numbers
        h_t = np.broadcast_to(h0, lead + (m,))  # h_{t−1}, read from h itself after step 0
        if z.ndim == 3 and z.shape[0] == 1 and W_hhT.ndim == 2:
            # one sequence, no perturbed copies: the rows of (T, m) arrays, and np.dot, which
            # costs numpy less than matmul per call (the loop is most of the time for small m)
            steps = zip(xw[0], z[0], a[0], h[0])
            h_t, product = h_t[0], np.dot
        else:  # views of step t, t = 0 … T−1 (the step axis moved to the front)
            steps = zip(*(np.moveaxis(v, -2, 0) for v in (xw, z, a, h)))
            product = np.matmul
        f, add = act.f, np.add
        for xw_t, z_t, a_t, h_next in steps:
            product(h_t, W_hhT, out=z_t)
            z_t += xw_t  # z_t = W_xh x_t + W_hh h_{t−1} + b_h
            f(z_t, out=a_t)
            if self.residual:
                add(h_t, a_t, out=h_next)  # h_t = h_{t−1} + f(z_t)
            h_t = h_next
        h_prev = np.empty_like(z)
        h_prev[..., 0, :] = h0
        h_prev[..., 1:, :] = h[..., :-1, :]
        return Forward(z=z, a=a, h=h, h_prev=h_prev, fprime=act.fprime(z, a))

    def carry(
        self, delta_next: np.ndarray, eps_next: np.ndarray, W_hh: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """ε_{t,k} from δ_{t,k+1} and ε_{t,k+1} (rows t); written into ``out`` when given
        (``out`` may be ``eps_next``: ε_{t,k} replaces ε_{t,k+1}).

        vanilla:  ε_{t,k} = W_hhᵀ δ_{t,k+1}
        residual: ε_{t,k} = ε_{t,k+1} + W_hhᵀ δ_{t,k+1}
        """
        if self.residual:  # out may be eps_next itself: the product is formed first
            return np.add(eps_next, delta_next @ W_hh, out=out)
        one_sequence = delta_next.ndim == 2 and (out is None or out.flags.c_contiguous)
        return (_dot_carry if self._dot_applies(one_sequence, W_hh.shape[-1]) else _matmul_carry)(
            delta_next, eps_next, W_hh, out)

    def _dot_applies(self, one_sequence: bool, m: int) -> bool:
        """The vanilla cell with one sequence (2-D rows, ``out`` C-ordered): np.dot costs numpy
        less than matmul per call. Not for m = 1, where OpenBLAS scales by W_hh instead of
        multiplying (inf · 0 would give 0, not NaN)."""
        return not self.residual and one_sequence and m > 1

    def carry_loop(self, one_sequence: bool, m: int):
        """``carry`` for a loop that calls it once per step with the same kind of arrays, the
        choice made once instead of at every call (a microsecond a step)."""
        return _dot_carry if self._dot_applies(one_sequence, m) else self.carry

    def jvp(self, fprime_k: np.ndarray, v: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """J_k v for row vectors v, without forming J_k: fprime_k (..., m), v (..., m).

        vanilla:  J_k v = f'(z_k) ⊙ (W_hh v)       residual: + v
        (and J_kᵀ u = W_hhᵀ (f'(z_k) ⊙ u) (+ u) is ``carry(fprime_k * u, u, W_hh)``)
        """
        u = (v @ W_hh.T) * fprime_k
        if self.residual:
            u += v
        return u

    def jacobian(self, fprime_k: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh  (residual: I + diag(f'(z_k)) W_hh).

        fprime_k (..., m) → (..., m, m)
        """
        J = fprime_k[..., :, None] * W_hh
        if self.residual:
            J = J + np.eye(W_hh.shape[-1])
        return J


def _dot_carry(delta_next, eps_next, W_hh, out=None):
    """Vanilla ε_{t,k} = W_hhᵀ δ_{t,k+1} for rows of one sequence (``Cell._dot_applies``)."""
    return np.dot(delta_next, W_hh, out=out)


def _matmul_carry(delta_next, eps_next, W_hh, out=None):
    """Vanilla ε_{t,k} = W_hhᵀ δ_{t,k+1} for any leading axes."""
    return np.matmul(delta_next, W_hh, out=out)


CELLS: dict[str, Cell] = {
    "vanilla": Cell("vanilla", residual=False),
    "residual": Cell("residual", residual=True),
}
