"""The residual cell (exercise 6-3): z_t = W_xh x_t + W_hh h_{t−1} + b_h,  h_t = h_{t−1} + f(z_t).

Backward, for rows t:   δ_{t,k} = f'(z_k) ⊙ ε_{t,k}     ε_{t,k−1} = ε_{t,k} + W_hhᵀ δ_{t,k}

J_k = I + diag(f'(z_k)) W_hh: the identity path carries the gradient across steps unscaled.
"""

from __future__ import annotations

import numpy as np

from .vanilla import VanillaCell


class ResidualCell(VanillaCell):
    name = "residual"
    summary = "h_t = h_{t−1} + f(W_xh x_t + W_hh h_{t−1} + b_h)"
    carry_is_product = False
    h_is_activation = False

    parts = ("eps_h", "fprime", "delta", "WT_delta", "eps_h_prev")

    def backward_parts(self, tr, theta, k, eps):
        """ε_{t,k}, f'(z_k), δ_{t,k} = f'(z_k) ⊙ ε_{t,k}, W_hhᵀ δ_{t,k} (WT_delta) and
        ε_{t,k−1} = ε_{t,k} + W_hhᵀ δ_{t,k} (the identity path and the product)."""
        fprime = tr.fprime[:, k, None, :]
        delta = fprime * eps["h"]
        WT_delta = delta @ theta["W_hh"]
        return {"eps_h": eps["h"], "fprime": fprime, "delta": delta, "WT_delta": WT_delta,
                "eps_h_prev": np.add(eps["h"], WT_delta)}

    def _step(self, h_prev: np.ndarray, a_t: np.ndarray, out: np.ndarray) -> None:
        np.add(h_prev, a_t, out=out)  # h_t = h_{t−1} + f(z_t)

    def carry(self, delta_next, eps_next, W_hh, out=None):
        """ε_{t,k} = ε_{t,k+1} + W_hhᵀ δ_{t,k+1} (``out`` may be eps_next: the product is formed first)."""
        return np.add(eps_next, delta_next @ W_hh, out=out)

    def _dot_applies(self, one_sequence: bool, m: int) -> bool:
        return False

    def jvp(self, fprime_k, v, W_hh):
        """J_k v = f'(z_k) ⊙ (W_hh v) + v."""
        return super().jvp(fprime_k, v, W_hh) + v

    def jacobian(self, fprime_k, W_hh):
        """J_k = I + diag(f'(z_k)) W_hh."""
        return super().jacobian(fprime_k, W_hh) + np.eye(W_hh.shape[-1])
