"""The BPTT engine: numpy, scipy and stdlib only, no web imports.

Modules, one job each:

- ``activations``  f and f' for tanh, sigmoid, relu, identity
- ``cells``        the recurrent cells (vanilla, residual): forward pass, step Jacobians
- ``losses``       output layer and per-step losses (softmax_ce, mse, upstream): L_t and e_t
- ``bptt``         the δ_{t,k} recursion (the table, vectorised) and the dh_next pass
- ``gradients``    parameter gradients as sums over the unrolled copies
- ``clipping``     clipping by global norm or by value
- ``diagnostics``  ‖J_k‖₂, spectral radius, σ_max, the Pascanu bound on ‖δ_{t,k}‖ (‖J_k‖₂ by batched LAPACK SVD)
- ``gradcheck``    central finite differences
- ``init``         seeded parameter initialisation
- ``notation``     canonical names ↔ the names of each textbook
- ``problem``      the validated input (``Problem``) and the output (``Result``)
- ``run``          runs a ``Problem`` through all of the above
"""

from .problem import Problem, Result
from .run import run

__all__ = ["Problem", "Result", "run"]
