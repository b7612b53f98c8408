"""The largest singular value ‖J_k‖₂ of every step Jacobian, for all steps at once.

‖J_k‖₂ for every step is computed for all steps at once by the Lanczos method
(``spectral_norms``) on a symmetric matrix whose largest eigenvalue is ‖J_k‖₂²: J_k J_kᵀ =
diag(f') W_hh W_hhᵀ diag(f') for the vanilla cell (one matrix product over all steps per
Lanczos step), J_kᵀ J_k through ``Cell.jvp`` and ``Cell.carry`` for the residual cell; no
m × m matrix per step is formed. λ_max of the small tridiagonal matrix the method builds is
found by Laguerre's method and checked by Sturm sequences. Steps whose estimate has not
settled to rounding level, and steps whose J_k is not finite or very large or small, go to
``np.linalg.svd`` as before, so every ‖J_k‖₂ agrees with ``np.linalg.norm(J_k, 2)`` to
rounding (a few units in the last place; tested to 1e-12).
"""

from __future__ import annotations

import numpy as np

from .cells import Cell

#: relative width of the bracket the Lanczos estimate θ of ‖J_k‖₂² must stay in
_TOLERANCE = 4e-15
#: Lanczos steps: first estimate of ‖J_k‖₂²; then check the estimates every _CHECK_EVERY
#: steps, make new ones for the rows not accepted every _SOLVE_EVERY steps; at most _MAX_STEPS
_FIRST_SOLVE, _CHECK_EVERY, _SOLVE_EVERY, _MAX_STEPS = 20, 3, 6, 62
_LAGUERRE_ITERATIONS = 16
#: β_i ≤ _BREAKDOWN · max α: a breakdown of the Lanczos recurrence (rounding level)
_BREAKDOWN = 16 * np.finfo(float).eps
#: steps whose largest |entry of J_k| is outside this range go to the SVD: inside it neither
#: θ ≈ ‖J_k‖₂² nor the squares the Lanczos recurrence forms (≈ θ²) over- or underflow
_SAFE_RANGE = (1e-60, 1e60)
_EPS = np.finfo(float).eps
#: below these sizes the SVD is cheaper than the Lanczos loop (see ``spectral_norms``)
_LANCZOS_MIN_M, _LANCZOS_MIN_WORK = 32, 2e6


def _svd_norms(J: np.ndarray) -> np.ndarray:
    """Largest singular value of each (m, m) matrix in J (..., m, m); NaN where not finite."""
    out = np.full(J.shape[:-2], np.nan)
    ok = np.isfinite(J).all(axis=(-1, -2))
    if ok.any():
        out[ok] = np.linalg.svd(J[ok], compute_uv=False)[..., 0]
    return out


def _negative_definite(alpha: np.ndarray, beta2: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sturm test on symmetric tridiagonal matrices T (diagonal alpha (N, j), squared
    off-diagonal beta2 (N, j−1)) at x (N,): the pivots of T − xI = LDLᵀ, d_1 = α_1 − x,
    d_i = α_i − x − β_{i−1}²/d_{i−1}, count the eigenvalues below x (Sylvester's law of inertia).
    Returns (all pivots < 0: every eigenvalue < x, some pivot ≥ 0: an eigenvalue ≥ x); a NaN
    pivot answers False to both."""
    d = alpha[:, 0] - x
    below, reached = d < 0, d >= 0
    for i in range(1, alpha.shape[1]):
        d = alpha[:, i] - x - beta2[:, i - 1] / d
        below &= d < 0
        reached |= d >= 0
    return below, reached


def _top_eigenvalue_tridiagonal(alpha: np.ndarray, beta2: np.ndarray) -> np.ndarray:
    """λ_max of symmetric tridiagonal matrices (diagonal alpha (N, j), squared off-diagonal
    beta2 (N, j−1)) by Laguerre's method on p(x) = det(T − xI) = Π d_i (pivots as in
    ``_negative_definite``) from Gershgorin's upper bound: for a polynomial with real roots it
    converges monotonically, and cubically, to the largest root. The callers check the result
    with ``_negative_definite``; NaN where the iteration has not settled."""
    N, j = alpha.shape
    beta = np.sqrt(beta2)
    radius = np.zeros((N, j))
    radius[:, 1:] += beta
    radius[:, :-1] += beta
    x = (alpha + radius).max(axis=1)  # no eigenvalue above x
    x += 4 * _EPS * np.abs(x) + np.finfo(float).tiny
    moving = np.ones(N, bool)
    for _ in range(_LAGUERRE_ITERATIONS):
        # G = p'/p = Σ 1/(x − λ_i), H = Σ 1/(x − λ_i)², from r_i = d_i'/d_i and c_i = d_i''/d_i:
        # d_i' = −1 + (β²/d_{i−1}) r_{i−1},  d_i'' = (β²/d_{i−1}) (c_{i−1} − 2 r_{i−1}²)
        ax = alpha - x[:, None]
        d = ax[:, 0]
        r = -1.0 / d
        c = np.zeros(N)
        G, H = r.copy(), r * r
        for i in range(1, j):
            q = beta2[:, i - 1] / d
            d = ax[:, i] - q
            c = q * (c - 2.0 * r * r) / d
            r = (q * r - 1.0) / d
            G += r
            H += r * r - c
        root = np.sqrt(np.maximum((j - 1) * (j * H - G * G), 0.0))
        step = j / (G + np.copysign(root, G))
        step = np.where(moving & np.isfinite(step), step, 0.0)
        x -= step
        # cubic convergence: after a step of relative size 1e-7 the error is far below ε
        # (and _in_bracket checks the result anyway)
        moving &= np.abs(step) > 1e-7 * np.abs(x)
        if not moving.any():
            break
    x[moving] = np.nan
    return x


def spectral_norms(cell: Cell, fprime: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """‖J_k‖₂ for every row of fprime (N, m) = f'(z_k); NaN where J_k is not finite.

    ‖J_k‖₂² is the largest eigenvalue of a symmetric m × m matrix A_k (``_lanczos``), and the
    Lanczos method gives it for all rows at once: λ_max of the tridiagonal T_j it builds rises
    to λ_max(A_k) as j grows. At step _FIRST_SOLVE (then every _SOLVE_EVERY steps for the rows
    not accepted yet) θ = λ_max(T_j) is computed by Laguerre's method; every _CHECK_EVERY steps
    a row is accepted when Sturm sequences put λ_max(T_j) within θ(1 ± _TOLERANCE): it has
    stopped moving, at rounding level. Rows not accepted within _MAX_STEPS, and rows whose J_k
    is not finite or very large or small, go to ``np.linalg.svd`` (``_svd_norms``).

    Small problems go to the SVD directly: below m = 32 or N·m³ = 2e6 its per-call cost is lower
    than the Lanczos loop's fixed numpy overhead (measured: T=10, m=4 0.03 ms against 0.3 ms;
    T=512, m=64 9 ms against 77 ms the other way).
    """
    N, m = fprime.shape
    if m < _LANCZOS_MIN_M or N * m**3 < _LANCZOS_MIN_WORK:
        return _svd_norms(cell.jacobian(fprime, W_hh))
    with np.errstate(all="ignore"):  # the recurrences divide by zero where a step is settled
        return _spectral_norms(cell, fprime, W_hh)


def _spectral_norms(cell: Cell, fprime: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    N, m = fprime.shape
    out = np.full(N, np.nan)
    finite = np.isfinite(fprime).all(axis=1) & bool(np.isfinite(W_hh).all())
    # largest |entry| of diag(f'(z_k)) W_hh: row i holds |f'_i| · max_j |W_ij|
    entries = np.abs(fprime) * np.abs(W_hh).max(axis=1, initial=0.0)
    size = np.where(finite[:, None], entries, 0.0).max(axis=1, initial=0.0)
    lanczos = finite & (size > _SAFE_RANGE[0]) & (size < _SAFE_RANGE[1])
    if cell.residual:
        lanczos |= finite & (size <= _SAFE_RANGE[0])  # J_k ≈ I
    else:
        out[finite & (size == 0)] = 0.0  # J_k = 0
    svd = np.isnan(out) & ~lanczos

    rows = np.flatnonzero(lanczos)
    if rows.size:
        accepted, theta = _lanczos(cell, fprime[rows], W_hh)
        out[rows[accepted]] = np.sqrt(theta[accepted])
        svd[rows[~accepted]] = True
    if svd.any():
        out[svd] = _svd_norms(cell.jacobian(fprime[svd], W_hh))
    return out


def _lanczos(cell: Cell, F: np.ndarray, W_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos on one m × m symmetric matrix per row of F (n, m) = f'(z_k), all rows at once:
    vanilla A_k = J_k J_kᵀ = diag(f') W_hh W_hhᵀ diag(f') (one matrix product per step),
    residual A_k = J_kᵀ J_k (``Cell.jvp`` then ``Cell.carry``); λ_max(A_k) = ‖J_k‖₂² either way.

        A_k q_i = β_{i−1} q_{i−1} + α_i q_i + β_i q_{i+1},   T_j = tridiag(β, α, β)

    Returns (accepted (n,), θ (n,)): θ ≈ λ_max(A_k) where accepted (see ``spectral_norms``).
    """
    n, m = F.shape
    if cell.residual:

        def apply(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # A_k q and qᵀ A_k q
            u = cell.jvp(F, q, W_hh)  # J_k q
            return cell.carry(F * u, u, W_hh), np.einsum("nm,nm->n", u, u)  # J_kᵀ J_k q, ‖J_k q‖²
    else:
        WWt = W_hh @ W_hh.T

        def apply(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            w = (q * F) @ WWt  # row form of W Wᵀ diag(f') q (W Wᵀ is symmetric)
            w *= F  # diag(f') W Wᵀ diag(f') q
            return w, np.einsum("nm,nm->n", q, w)

    q = np.broadcast_to(_start_vector(m), (n, m))
    q_prev = np.zeros((n, m))
    steps = _MAX_STEPS
    alpha = np.empty((n, steps))
    beta2 = np.empty((n, steps))  # β_i²
    beta = np.zeros((n, 1))
    theta = np.full(n, np.nan)  # the estimate of λ_max(A_k) under test, NaN before the first
    accepted = np.zeros(n, bool)
    first = min(m, _FIRST_SOLVE)
    scale = np.zeros(n)  # max α so far ≤ ‖A_k‖
    for i in range(steps):
        w, alpha[:, i] = apply(q)
        w -= alpha[:, i, None] * q
        w -= beta * q_prev
        beta2[:, i] = np.einsum("nm,nm->n", w, w)
        np.maximum(scale, alpha[:, i], out=scale)
        # β at rounding level: the Krylov space is invariant (it holds λ_max); stop there
        # (q = 0 from now on) rather than go on from rounding noise
        stop = beta2[:, i] <= (_BREAKDOWN * scale) ** 2
        if stop.any():
            beta2[stop, i] = 0.0
            w[stop] = 0.0
        beta = np.sqrt(beta2[:, i, None])
        q_prev, q = q, w / np.where(beta > 0, beta, 1.0)
        j = i + 1
        if j < first or (j - first) % _CHECK_EVERY:
            continue
        T = alpha[:, :j], beta2[:, : j - 1]
        if j > first:  # has λ_max(T_j) stayed in the bracket since θ was computed?
            todo = np.flatnonzero(~accepted & ~np.isnan(theta))
            accepted[todo] = _in_bracket(T[0][todo], T[1][todo], theta[todo])
            if accepted.all():
                break
        if (j - first) % _SOLVE_EVERY == 0:  # a new θ for the others
            todo = np.flatnonzero(~accepted)
            theta[todo] = _top_eigenvalue_tridiagonal(T[0][todo], T[1][todo])
            theta[todo[~_in_bracket(T[0][todo], T[1][todo], theta[todo])]] = np.nan
    return accepted, theta


def _in_bracket(alpha: np.ndarray, beta2: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """λ_max(T) ∈ [θ(1 − _TOLERANCE), θ(1 + _TOLERANCE)]"""
    below_hi, _ = _negative_definite(alpha, beta2, theta * (1 + _TOLERANCE))
    _, reaches_lo = _negative_definite(alpha, beta2, theta * (1 - _TOLERANCE))
    return below_hi & reaches_lo


def _start_vector(m: int) -> np.ndarray:
    """A fixed unit vector with no special direction (seeded), the same for every run."""
    v = np.random.default_rng(0).standard_normal(m)
    return v / np.sqrt(v @ v)
