"""The vanilla cell: z_t = W_xh x_t + W_hh h_{t−1} + b_h,  h_t = f(z_t).

Backward (min-char-rnn's ``dhraw = (1 - h*h) * dh; dhnext = Whh.T @ dhraw``), for rows t:

    δ_{t,k} = f'(z_k) ⊙ ε_{t,k}        ε_{t,k−1} = W_hhᵀ δ_{t,k}

Step Jacobian J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh, and L_k = ∂h_k/∂z_k = diag(f'(z_k)).

Besides the protocol the cell has the closed forms the fast δ loop (``app/engine/fast.py``,
registered as this cell's table) and the diagnostics use: ``carry`` (ε_{t,k} from δ_{t,k+1}),
``jvp`` (J_k v), ``jacobian`` (J_k from f'), each accepting leading axes.

Vectors are rows: ``δ @ W_hh`` is the row form of ``W_hhᵀ δ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import Activation
from .base import Cell, ParamSpec, Trace


@dataclass(frozen=True)
class Forward(Trace):
    """The vanilla/residual trace: besides z, h, h_prev (all (..., B, T, m))."""

    #: (..., B, T, m) f(z_t) (vanilla cell: the same array as h)
    a: np.ndarray | None = None
    #: (..., B, T, m) f'(z_t)
    fprime: np.ndarray | None = None


class VanillaCell(Cell):
    name = "vanilla"
    activations = ("tanh", "sigmoid", "relu", "identity")
    summary = "h_t = f(W_xh x_t + W_hh h_{t−1} + b_h)"
    #: ε_{t,k} = W_hhᵀ δ_{t,k+1} alone (no + ε_{t,k+1}): the fast loop may sum dz first and
    #: form dh_k = ε_{k,k} + W_hhᵀ dz_{k+1} after it
    carry_is_product = True
    #: h_t = f(z_t): h and f(z) are one array
    h_is_activation = True

    def specs(self, n: int, m: int) -> tuple[ParamSpec, ...]:
        return (
            ParamSpec("W_xh", lambda n, m: (m, n), "input", "input weights"),
            ParamSpec("W_hh", lambda n, m: (m, m), "recurrent", "recurrent weights"),
            ParamSpec("b_h", lambda n, m: (m,), "input_bias", "hidden bias"),
        )

    def _step(self, h_prev: np.ndarray, a_t: np.ndarray, out: np.ndarray) -> None:
        """h_t from h_{t−1} and f(z_t): the vanilla cell has h_t = f(z_t), already in place."""

    def forward(self, act: Activation, theta: dict[str, np.ndarray], X: np.ndarray,
                s0: dict[str, np.ndarray]) -> Forward:
        """theta W_xh (..., m, n), W_hh (..., m, m), b_h (..., m); X (..., B, T, n); s0 {"h": (..., B, m)}."""
        W_xh, W_hh, b_h, h0 = theta["W_xh"], theta["W_hh"], theta["b_h"], s0["h"]
        # Input projections of all steps at once: x_t W_xhᵀ + b_h, shape (..., B, T, m).
        xw = X @ np.swapaxes(W_xh, -1, -2)[..., None, :, :] + b_h[..., None, None, :]
        W_hhT = np.swapaxes(W_hh, -1, -2)
        T = X.shape[-2]
        lead = np.broadcast_shapes(xw.shape[:-2], h0.shape[:-1], W_hh.shape[:-2] + (1,))
        m = xw.shape[-1]
        z = np.empty(lead + (T, m))
        h = np.empty_like(z)
        a = h if self.h_is_activation else np.empty_like(z)  # vanilla: h_t = f(z_t), the same numbers
        h_t = np.broadcast_to(h0, lead + (m,))  # h_{t−1}, read from h itself after step 0
        if z.ndim == 3 and z.shape[0] == 1 and W_hhT.ndim == 2:
            # one sequence, no perturbed copies: the rows of (T, m) arrays, and np.dot, which
            # costs numpy less than matmul per call (the loop is most of the time for small m)
            steps = zip(xw[0], z[0], a[0], h[0])
            h_t, product = h_t[0], np.dot
        else:  # views of step t, t = 0 … T−1 (the step axis moved to the front)
            steps = zip(*(np.moveaxis(v, -2, 0) for v in (xw, z, a, h)))
            product = np.matmul
        f, cell_step = act.f, self._step
        for xw_t, z_t, a_t, h_next in steps:
            product(h_t, W_hhT, out=z_t)
            z_t += xw_t  # z_t = W_xh x_t + W_hh h_{t−1} + b_h
            f(z_t, out=a_t)
            cell_step(h_t, a_t, h_next)
            h_t = h_next
        h_prev = np.empty_like(z)
        h_prev[..., 0, :] = h0
        h_prev[..., 1:, :] = h[..., :-1, :]
        return Forward(z=z, h=h, h_prev=h_prev, states={"h": h}, states_prev={"h": h_prev},
                       a=a, fprime=act.fprime(z, a))

    parts = ("eps_h", "fprime", "delta", "eps_h_prev")

    def backward_parts(self, tr: Forward, theta, k, eps):
        """ε_{t,k} (eps_h), f'(z_k) (fprime), δ_{t,k} = f'(z_k) ⊙ ε_{t,k} (delta),
        ε_{t,k−1} = W_hhᵀ δ_{t,k} (eps_h_prev)."""
        fprime = tr.fprime[:, k, None, :]
        delta = fprime * eps["h"]
        return {"eps_h": eps["h"], "fprime": fprime, "delta": delta,
                "eps_h_prev": self.carry(delta, eps["h"], theta["W_hh"])}

    def backward_step(self, tr: Forward, theta, k, eps):
        """δ_{t,k} = f'(z_k) ⊙ ε_{t,k};  ε_{t,k−1} = W_hhᵀ δ_{t,k} (residual: + ε_{t,k})."""
        delta = tr.fprime[:, k, None, :] * eps["h"]
        return delta, {"h": self.carry(delta, eps["h"], theta["W_hh"])}

    # ---------------------------------------------------------------- closed forms

    def local_jacobians(self, tr: Forward, theta, k):
        f = tr.fprime[:, k]
        return self.jacobian(f, theta["W_hh"]), f[..., :, None] * np.eye(f.shape[-1])

    def step_jacobians(self, tr: Forward, theta, steps: range):
        """J_k for the steps; L_k = diag(f'(z_k)) is not formed (``gain_norms`` has its norm)."""
        return self.jacobian(tr.fprime[:, steps.start : steps.stop], theta["W_hh"]), None

    def gain_norms(self, tr: Forward, steps: range, L: np.ndarray) -> np.ndarray:
        """‖diag(f'(z_k))‖₂ = max|f'(z_k)|."""
        return np.abs(tr.fprime[:, steps.start : steps.stop]).max(axis=-1)

    def carry(self, delta_next: np.ndarray, eps_next: np.ndarray, W_hh: np.ndarray,
              out: np.ndarray | None = None) -> np.ndarray:
        """ε_{t,k} = W_hhᵀ δ_{t,k+1} from δ_{t,k+1} (rows t); written into ``out`` when given
        (``out`` may be ``eps_next``: ε_{t,k} replaces ε_{t,k+1})."""
        one_sequence = delta_next.ndim == 2 and (out is None or out.flags.c_contiguous)
        return (_dot_carry if self._dot_applies(one_sequence, W_hh.shape[-1]) else _matmul_carry)(
            delta_next, eps_next, W_hh, out)

    def _dot_applies(self, one_sequence: bool, m: int) -> bool:
        """One sequence (2-D rows, ``out`` C-ordered): np.dot costs numpy less than matmul per
        call. Not for m = 1, where OpenBLAS scales by W_hh instead of multiplying (inf · 0
        would give 0, not NaN)."""
        return one_sequence and m > 1

    def carry_loop(self, one_sequence: bool, m: int):
        """``carry`` for a loop that calls it once per step with the same kind of arrays, the
        choice made once instead of at every call (a microsecond a step)."""
        return _dot_carry if self._dot_applies(one_sequence, m) else self.carry

    def jvp(self, fprime_k: np.ndarray, v: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """J_k v = f'(z_k) ⊙ (W_hh v) for row vectors v, without forming J_k: fprime_k (..., m),
        v (..., m). (J_kᵀ u = W_hhᵀ (f'(z_k) ⊙ u) is ``carry(fprime_k * u, u, W_hh)``.)"""
        return (v @ W_hh.T) * fprime_k

    def jacobian(self, fprime_k: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
        """J_k = ∂h_k/∂h_{k−1} = diag(f'(z_k)) W_hh: fprime_k (..., m) → (..., m, m)."""
        return fprime_k[..., :, None] * W_hh

    def fast_table(self):
        """The registered fast δ loop of this cell (tested equal to the generic one)."""
        from .. import fast

        return fast.delta_table


def _dot_carry(delta_next, eps_next, W_hh, out=None):
    """Vanilla ε_{t,k} = W_hhᵀ δ_{t,k+1} for rows of one sequence (``VanillaCell._dot_applies``)."""
    return np.dot(delta_next, W_hh, out=out)


def _matmul_carry(delta_next, eps_next, W_hh, out=None):
    """Vanilla ε_{t,k} = W_hhᵀ δ_{t,k+1} for any leading axes."""
    return np.matmul(delta_next, W_hh, out=out)
