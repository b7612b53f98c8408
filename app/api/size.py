"""The size in bytes of a response of ``POST /api/v1/bptt``, from the request's sizes alone
(before any work), as an upper bound that is tight for the widest numbers.

orjson writes a float64 in at most 24 characters (``-1.2345678901234567e-300``: a sign, 17
significant digits, the point, ``e-`` and three digits; NaN and ±Infinity as ``null``), and an
array's bytes follow from its shape: its entries, two brackets per array, a comma between
entries. Strings (warnings, names, the paths in
``nonfinite``) and the small fields are a fixed allowance: the long fields are the arrays.
"""

from __future__ import annotations

import math


#: bytes of the widest float orjson writes (``-1.2345678901234567e-300``)
NUMBER = 24
#: ``null`` (entries above the diagonal, k > t)
NULL = 4
#: keys, the fields that describe the request, warnings, the check's and the clip's reports,
#: nonfinite's paths, the diagnostics' scalars: an allowance, measured well under it
FIXED = 16 * 1024


def _list(count: int, each: int) -> int:
    """Bytes of a JSON array of count entries of each bytes: brackets and count − 1 commas."""
    return 2 + count * each + max(count - 1, 0)


def array(shape: tuple[int, ...], per_entry: int = NUMBER) -> int:
    """Bytes of a dense array of this shape (orjson writes an empty one as [])."""
    each = per_entry
    for length in reversed(shape):
        each = _list(length, each)
    return each


def lower_triangle(B: int, T: int) -> int:
    """B×T×T matrices with k ≤ t numbers and nulls above the diagonal (k > t): row t holds
    t + 1 numbers and T − t − 1 nulls."""
    numbers, nulls = T * (T + 1) // 2, T * (T - 1) // 2
    matrix = 2 + T * (2 + T - 1) + numbers * NUMBER + nulls * NULL + (T - 1)
    return _list(B, matrix)


def ragged_delta(B: int, T: int, m: int) -> int:
    """δ as sent: delta[b][t] is the (t+1)×m array of δ_{t,k}, k ≤ t."""
    vector = _list(m, NUMBER)
    vectors = T * (T + 1) // 2
    # Σ_t (2 + (t+1)·vector + t), and the T − 1 commas between the steps
    sequence = 2 + T * 2 + vectors * vector + T * (T - 1) // 2 + (T - 1)
    return _list(B, sequence)


def fields(
    B: int, T: int, n: int, m: int, p: int | None, param_shapes: list[tuple[int, ...]], *,
    detail: str, clip: bool, G: int = 1, states: int = 1, gates: int = 0, parts: int = 5,
) -> dict[str, int]:
    """Response field → upper bound of its bytes. param_shapes: the arrays of params under the
    notation's names, which are also the arrays of grads (PyTorch's b_h gradient twice).
    G: blocks of the pre-activations (a gated cell's δ_{t,k} has G·m entries), states: 1 (h) or
    2 (h, c), gates: the gates whose activations forward.gates carries (B×T×m each)."""
    q = p or 0
    bt = (B, T)
    grads = sum(array(s) for s in param_shapes)
    # the per-gate arrays of forward.gates and a key (≤ 8 bytes) each
    gate_arrays = gates * (array(bt + (m,)) + 8)
    out = {
        "params": sum(array(s) for s in param_shapes),
        # z (B×T×G·m), h, f'(z), c (B×T×m); the gates; o and ŷ (B×T×p, null with loss upstream); L_t; L
        "forward": array(bt + (G * m,)) + (1 + states) * array(bt + (m,)) + gate_arrays
        + 2 * array(bt + (q,)) + array(bt) + NUMBER,
        "e": array(bt + (q,)),
        "eps_tt": array(bt + (m,)),
        "delta": ragged_delta(B, T, G * m) if detail == "full" else NULL,
        "delta_norm": lower_triangle(B, T),
        # ε^h_{t,k} and ε^c_{t,k} (ragged like δ), ‖ε^h_{t,k}‖ (B×T×T)
        "delta_h": ragged_delta(B, T, m) if detail == "full" else NULL,
        "delta_h_norm": lower_triangle(B, T),
        "delta_h_row": array((T, m)),  # row t of one sequence: at most T vectors
        "delta_row": array((T, G * m)),
        "delta_c": ragged_delta(B, T, m) if states > 1 and detail == "full" else NULL,
        "delta_c_norm": lower_triangle(B, T) if states > 1 else NULL,
        # BPTT beside RTRL: a few numbers per array (in the fixed allowance)
        "methods": 0,
        "dz": array(bt + (G * m,)),
        "dh": array(bt + (m,)),
        "dc": array(bt + (m,)) if states > 1 else NULL,
        # dh, dh_next (dc, dc_next) B×T×m; dz B×T×G·m; dz_gap B×T; keys ≤ 16 bytes each
        "dh_next_pass": 2 * states * array(bt + (m,)) + array(bt + (G * m,)) + array(bt) + 16 * (2 * states + 2),
        "grads": grads + states * array((B, m)) + array(bt + (n,)),
        "grads_unclipped": grads if clip else NULL,
        "grads_per_step": sum(array((T,) + s) for s in param_shapes) if detail == "full" else NULL,
        "clip": 0,
        # ‖J_k‖ (B×T) and their median (B); the bound on ‖δ_{t,k}‖ (B×T×T, in either detail); γ·σ_max
        "diagnostics": array(bt) + array((B,)) + lower_triangle(B, T) + NUMBER,
        # the reading of the last loss row per sequence: ten keys, four numbers, two words
        "vanish": _list(B, VANISH),
        "gradient_check": 0,
        "grads_per_copy": sum(array((T,) + s) for s in param_shapes),
        "backward_parts": backward_parts(T, n, m, q, param_shapes, G, parts),
    }
    return out


def total(sizes: dict[str, int], wanted, T: int) -> int:
    """Bytes of the whole response: the fields asked for, loss_steps (T booleans)
    and the fixed allowance."""
    return FIXED + array((T,), 5) + sum(v for k, v in sizes.items() if wanted(k))


#: bytes of one sequence's ``vanish`` object: its keys and braces (≤ 160), four numbers, two
#: words (≤ 20 each), three counts and a boolean (≤ 24 each)
VANISH = 160 + 4 * NUMBER + 2 * 20 + 4 * NUMBER


#: bytes of a key and its quotes and colon in the small objects of backward_parts (names ≤ 24)
KEY = 28


def backward_parts(T: int, n: int, m: int, p: int, param_shapes: list[tuple[int, ...]], G: int,
                   parts: int) -> int:
    """One δ_{t,k}'s numbers: the cell's parts at k and k + 1 (each at most G·m long) and their
    norms, five vectors (e_t, ε_{t,t}, h_t, h_{k−1}, x_k) and theirs, copy k's terms of every
    parameter and their norms, the gradients' norms before and after clipping, at most T − 1
    Jacobian norms, and the scalars (the allowance FIXED covers the keys of the object)."""
    named = len(param_shapes)
    vector = array((max(G * m, n, p),))
    return (2 * parts * (vector + NUMBER + 2 * KEY) + 5 * (vector + NUMBER + 2 * KEY)
            + sum(array(s) for s in param_shapes) + 3 * named * (NUMBER + KEY) + array((T,)))


# ---- the npz archive (``Accept: application/x-npz``, app/api/npz.py) ----------------------------

#: bytes of a number in the archive (float64; the gradient check's counts int64)
NPZ_NUMBER = 8
#: bytes around one member besides its numbers: the .npy header (128 for these shapes), the
#: zip's local header with its zip64 extra (50 + the name), the data descriptor (24), the
#: central directory's entry (46 + the name, ≤ 28 of zip64 extra), names up to 100 bytes
NPZ_MEMBER = 512
#: the ``__meta__`` member: the JSON of the fields that describe the request (the allowance
#: FIXED, loss_steps) as a unicode array, 4 bytes a character, and the end of the zip
def npz_meta(T: int) -> int:
    return 4 * (FIXED + array((T,), 5)) + NPZ_MEMBER


def npz_fields(
    B: int, T: int, n: int, m: int, p: int | None, param_shapes: list[tuple[int, ...]], *,
    detail: str, clip: bool, G: int = 1, states: int = 1, gates: int = 0, parts: int = 5,
) -> dict[str, int]:
    """Response field → upper bound of its bytes in the archive: NPZ_NUMBER a number of the
    arrays as sent (δ dense, B·T·T·G·m) and NPZ_MEMBER a member (arguments as ``fields``)."""
    q = p or 0
    full = detail == "full"
    P = sum(math.prod(s) for s in param_shapes)
    k = len(param_shapes)
    bt = B * T
    # field → (numbers, members)
    counts = {
        "params": (P, k),
        # z, h, f'(z), c; the gates; o, ŷ; L_t; L
        "forward": (bt * (G * m + (1 + states) * m + gates * m + 2 * q + 1) + 1, 7 + states + gates),
        "e": (bt * q, 1),
        "eps_tt": (bt * m, 1),
        "delta": (bt * T * G * m if full else 0, 1),
        "delta_norm": (bt * T, 1),
        "delta_h": (bt * T * m if full else 0, 1),
        "delta_h_norm": (bt * T, 1),
        "delta_h_row": (T * m, 1),
        "delta_row": (T * G * m, 1),
        "delta_c_norm": (bt * T if states > 1 else 0, 1),
        # dh, dh_next (dc, dc_next) B×T×m; dz B×T×G·m; dz_gap B×T
        "dh_next_pass": (2 * states * bt * m + bt * G * m + bt, 2 * states + 2),
        # BPTT beside RTRL: a few numbers per array and per route
        "methods": (8 * (k + states) + 16, 8 * (k + states) + 16),
        "delta_c": (bt * T * m if states > 1 and full else 0, 1),
        "dz": (bt * G * m, 1),
        "dh": (bt * m, 1),
        "dc": (bt * m if states > 1 else 0, 1),
        "grads": (P + states * B * m + bt * n, k + states + 1),
        "grads_unclipped": (P if clip else 0, k),
        "grads_per_step": (T * P if full else 0, k),
        "clip": (3, 3),
        # ‖J_k‖, their median (B), the bound (B×T×T), ρ, σ_max, γ
        "diagnostics": (bt + B + bt * T + 3, 6),
        # the reading: one sequence's numbers are members (at most seven), its words in __meta__;
        # a batch's list of objects stays whole in __meta__ (4 bytes a character: VANISH / 2 numbers)
        "vanish": (7 + B * VANISH // 2, 7),
        # step, tolerance, max_rel_error; four numbers per array checked
        "gradient_check": (3 + 4 * (k + states + 1), 3 + 4 * (k + states + 1)),
        "grads_per_copy": (T * P, k),
        # backward_parts (one δ_{t,k}): the parts at k and k + 1 and their norms, five vectors and
        # theirs, copy k's terms of every parameter and their norms, the gradients' norms, ‖J‖ row
        "backward_parts": (2 * parts * (max(G * m, n, q) + 1) + 5 * (max(G * m, n, q) + 1) + P
                           + 3 * k + T + 8, 4 * parts + 10 + 4 * k + 12),
    }
    return {f: NPZ_NUMBER * numbers + NPZ_MEMBER * members for f, (numbers, members) in counts.items()}


def npz_total(sizes: dict[str, int], wanted, T: int) -> int:
    """Bytes of the whole archive: the fields asked for and ``__meta__``."""
    return npz_meta(T) + sum(v for k, v in sizes.items() if wanted(k))
