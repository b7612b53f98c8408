"""The BPTT engine: numpy, scipy and stdlib only, no web imports.

Modules, one job each:

- ``cells/``       the recurrent cells behind one protocol (``cells/base.py``): parameter specs,
                   states, gates, forward, backward_step; ``CELLS`` is the registry
    - ``vanilla``   h_t = f(z_t) (and the closed forms its fast loop uses)
    - ``residual``  h_t = h_{t−1} + f(z_t)
    - ``lstm``      torch.nn.LSTM (i, f, g, o), state (h, c)
    - ``gru``       torch.nn.GRU (r, u, n; u is PyTorch's z), b_hn inside r ⊙ (…)
- ``bptt``         the generic δ_{t,k} loop over any cell (the table, ε tables) and dh_next pass
- ``fast``         the vanilla/residual δ loop, registered as their table, tested equal to ``bptt``
- ``rtrl``         real-time recurrent learning over any cell (forward sensitivities) and its price
- ``methods``      BPTT beside RTRL on one problem: their largest relative difference and costs
- ``activations``  f and f' for tanh, sigmoid (scipy's expit), relu, identity
- ``losses``       output layer and per-step losses (softmax_ce, mse, upstream): L_t and e_t
- ``gradients``    parameter gradients as sums over the unrolled copies (only the terms that exist)
- ``clipping``     clipping by global norm or by value
- ``diagnostics``  ‖J_k‖₂ of the whole state's step Jacobian (batched LAPACK SVD), spectral
                   radius, σ_max, the Pascanu bound on ‖δ_{t,k}‖
- ``gradcheck``    central finite differences
- ``init``         seeded parameter initialisation
- ``notation``     canonical names ↔ the names of each textbook
- ``problem``      the validated input (``Problem``) and the output (``Result``)
- ``run``          runs a ``Problem`` through all of the above
"""

from .problem import Problem, Result
from .run import run

__all__ = ["Problem", "Result", "run"]
