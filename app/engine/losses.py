"""Output layer and per-step losses.

    o_t = W_hy h_t + b_y,   ŷ_t = g(o_t),   e_t = ∂L_t/∂o_t

| loss       | ŷ_t          | L_t                       | e_t        |
| softmax_ce | softmax(o_t) | −Σ_i y_{t,i} log ŷ_{t,i}  | ŷ_t − y_t  |
| mse        | o_t          | ½‖o_t − y_t‖²             | o_t − y_t  |
| upstream   | (none)       | ⟨g_t, h_t⟩                | ∂L_t/∂h_t = g_t |

Targets arrive here as rows Y (B, T, p): class indices are one-hot rows by then.
``w`` (T,) weights each step's loss: 0 where the step carries no loss, 1 (sum) or
1/(|S|·B) (mean) where it does, so L = Σ_b Σ_t w_t L_t and every error term below is
already an error term of L.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("softmax_ce", "mse", "upstream")


@dataclass(frozen=True)
class LossOut:
    #: (..., B, T, p) outputs o_t (None with upstream)
    o: np.ndarray | None
    #: (..., B, T, p) predictions ŷ_t (None with upstream)
    y_hat: np.ndarray | None
    #: (..., B, T) per-step losses L_t, unweighted; 0 where the step carries no loss
    loss_t: np.ndarray
    #: (...) total loss L = Σ_b Σ_t w_t L_t
    loss: np.ndarray
    #: (..., B, T, p) weighted output errors w_t e_t (None with upstream)
    e: np.ndarray | None
    #: (..., B, T, m) ε_{t,t} = ∂(w_t L_t)/∂h_t = W_hyᵀ w_t e_t (upstream: w_t g_t)
    eps_tt: np.ndarray


def _log_softmax(o: np.ndarray) -> np.ndarray:
    shifted = o - o.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def compute(
    loss: str, h: np.ndarray, w: np.ndarray, *, W_hy: np.ndarray | None = None,
    b_y: np.ndarray | None = None, Y: np.ndarray | None = None, G: np.ndarray | None = None,
) -> LossOut:
    """h (..., B, T, m) hidden states; w (T,) step weights; W_hy (..., p, m); b_y (..., p);
    Y (B, T, p) target rows; G (B, T, m) upstream gradients ∂L_t/∂h_t."""
    active = w != 0
    if loss == "upstream":
        loss_t = np.where(active, np.einsum("...i,...i->...", G, h), 0.0)
        return LossOut(
            o=None, y_hat=None, loss_t=loss_t, loss=(loss_t * w).sum(axis=(-1, -2)),
            e=None, eps_tt=G * w[:, None],
        )
    o = h @ np.swapaxes(W_hy, -1, -2)[..., None, :, :] + b_y[..., None, None, :]
    if loss == "mse":
        y_hat = o
        e = o - Y
        loss_t = 0.5 * np.einsum("...i,...i->...", e, e)
    elif loss == "softmax_ce":
        log_y_hat = _log_softmax(o)
        y_hat = np.exp(log_y_hat)
        # 0·log ŷ counts as 0 even where ŷ underflowed to 0 (log ŷ = −inf).
        loss_t = -np.where(Y > 0, Y * log_y_hat, 0.0).sum(axis=-1)
        e = y_hat - Y
    else:  # pragma: no cover - the API refuses unknown losses
        raise ValueError(f"unknown loss {loss!r}")
    loss_t = np.where(active, loss_t, 0.0)
    # np.where, not a product: an overflowed e_t of a step without loss must not leak in.
    e = np.where(active[:, None], e * w[:, None], 0.0)
    return LossOut(
        o=o, y_hat=y_hat, loss_t=loss_t, loss=(loss_t * w).sum(axis=(-1, -2)), e=e,
        eps_tt=e @ W_hy[..., None, :, :],
    )
