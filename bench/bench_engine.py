"""In-process benchmark: our numpy engine against PyTorch autograd computing the same numbers.

Cases (vanilla tanh cell, mse loss on every step, one sequence, float64, seeded parameters
drawn from U(-1/sqrt(m), 1/sqrt(m)) so tanh does not saturate):

- full:  T=64,  n=16, m=32, p=8, detail "full", timed twice:
         (a) the issue's "full δ table + gradients": every δ_{t,k} = ∂L_t/∂z_k (k ≤ t) and the
             summed gradients (what a request with fields ["delta", "grads"] computes);
         (b) the whole full response's numbers: (a) and the per-step gradients ∂L_t/∂θ
             (grads_per_step).
- norms: T=512, n=16, m=64, p=8, detail "norms": the T×T matrix ‖δ_{t,k}‖ and the summed
         gradients (a norms response has no per-step gradients).

Ours is timed as
  core            forward + losses + δ table + summed (and, in (b), per-step) gradients:
                  ``app.engine.run.core``, the numbers PyTorch computes too;
  run             the whole engine run: core + diagnostics (‖J_k‖₂ for every step, spectral
                  radius, σ_max, the T×T bound on ‖δ_{t,k}‖), which PyTorch is not asked for;
  parse+run       request dict → Problem → Result;
  bytes→bytes     the whole in-process pipeline (orjson bytes → decode+parse+run+
                  respond.build+respond.dumps → bytes), of the whole response, and of the
                  response with only the fields PyTorch computes ((a): delta, grads; norms:
                  delta_norm, grads).
PyTorch (float64, default threads) is timed as (a) a loop of one autograd.grad per t of L_t
with respect to z_0 … z_t and (full) the parameters, which gives row t of the δ table and
∂L_t/∂θ, the summed gradients being the sum of the per-step ones (norms: one backward of L
gives them); (b) torch.func.jacrev of the vector (L_1 … L_T) with respect to a zero
perturbation added to every z_k (which gives δ[t, k]) and (full) the parameters (which gives
∂L_t/∂θ), the summed gradients again being their sum (norms: one backward of L); and, for
the full case's δ table + summed gradients only, (c) jacrev with respect to the perturbation
alone and one backward of L = Σ_t L_t for the summed gradients (no per-step gradients). The
fastest variant that computes a row's numbers is "PyTorch" in its ratios. Before timing, every
variant is checked against ours (max abs difference of the table, the summed gradients and
the per-step gradients < 1e-10).
Every figure is the median wall time of --repeat runs (after one warm-up run), in ms.

The machine is printed first: cores, load average, OpenBLAS threads (numpy) and torch
threads. --blas-threads N sets OPENBLAS_NUM_THREADS=N for numpy (before it is imported);
the server of bench_http.py runs one process per core, where 1 is the realistic setting.

    python bench/bench_engine.py [--repeat 100] [--repeat-norms 5] [--blas-threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def blas_threads_from_argv() -> None:
    """--blas-threads N → OPENBLAS_NUM_THREADS=N, which OpenBLAS reads when numpy loads it."""
    for i, a in enumerate(sys.argv):
        if a == "--blas-threads" and i + 1 < len(sys.argv):
            os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[i + 1]
        elif a.startswith("--blas-threads="):
            os.environ["OPENBLAS_NUM_THREADS"] = a.split("=", 1)[1]


if __name__ == "__main__":
    blas_threads_from_argv()

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from app.api import respond  # noqa: E402
from app.api.parse import decode, parse  # noqa: E402
from app.engine import run  # noqa: E402
from app.engine.run import core  # noqa: E402
from app.runtime import tune_malloc  # noqa: E402
from app.settings import Settings  # noqa: E402

FULL = {"T": 64, "n": 16, "m": 32, "p": 8, "detail": "full"}
NORMS = {"T": 512, "n": 16, "m": 64, "p": 8, "detail": "norms"}
PARAMS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
TOL = 1e-10
SETTINGS = Settings()
tune_malloc()  # the allocator settings the server's workers run with (app/main.py)


def make_body(T: int, n: int, m: int, p: int, detail: str, seed: int = 0) -> dict:
    """A request body with seeded inputs, targets and parameters U(-1/√m, 1/√m)."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(m)
    shapes = {"W_xh": (m, n), "W_hh": (m, m), "b_h": (m,), "W_hy": (p, m), "b_y": (p,)}
    return {
        "cell": "vanilla", "activation": "tanh", "loss": "mse", "detail": detail,
        "inputs": rng.standard_normal((T, n)).tolist(),
        "targets": rng.standard_normal((T, p)).tolist(),
        "params": {k: rng.uniform(-s, s, shape).tolist() for k, shape in shapes.items()},
    }


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def pipeline(raw: bytes) -> bytes:
    """What the server does with a body, minus HTTP."""
    parsed = parse(decode(raw), SETTINGS)
    return respond.dumps(respond.build(run(parsed.problem), parsed))


# ---------------------------------------------------------------- PyTorch (imported lazily)

def _tensors(body: dict):
    import torch

    P = {k: torch.tensor(body["params"][k], dtype=torch.float64, requires_grad=True) for k in PARAMS}
    X = torch.tensor(body["inputs"], dtype=torch.float64)
    Y = torch.tensor(body["targets"], dtype=torch.float64)
    return P, X, Y


def _forward(P: dict, X, Y, eps=None):
    """z_k, L_t for every step: z_t = W_xh x_t + W_hh h_{t−1} (+ eps_t) + b_h, h_0 = 0."""
    import torch

    # unbind, not xw[t]: under vmap each xw[t] backward would fill a zero (batch, T, m) tensor
    xw = (X @ P["W_xh"].T + P["b_h"]).unbind(0)
    eps = None if eps is None else eps.unbind(0)
    h = X.new_zeros(P["W_hh"].shape[0])
    zs, Ls = [], []
    for t in range(X.shape[0]):
        z = xw[t] + P["W_hh"] @ h
        if eps is not None:
            z = z + eps[t]
        h = torch.tanh(z)
        o = P["W_hy"] @ h + P["b_y"]
        zs.append(z)
        Ls.append(0.5 * ((o - Y[t]) ** 2).sum())
    return zs, Ls


def _param_grads(body: dict) -> dict:
    """Summed parameter gradients: one forward, one backward of L = Σ_t L_t."""
    import torch

    P, X, Y = _tensors(body)
    grads = torch.autograd.grad(torch.stack(_forward(P, X, Y)[1]).sum(), [P[k] for k in PARAMS])
    return {k: g.numpy() for k, g in zip(PARAMS, grads)}


def torch_loop(body: dict, norms: bool = False):
    """(a) One autograd.grad(L_t, z_0..z_t [, θ]) per t. Returns the δ table (T, T, m), or ‖δ‖
    (T, T) when norms; the summed gradients; the per-step gradients (T, *shape) (None when
    norms: one backward of L then gives the summed gradients)."""
    import torch

    P, X, Y = _tensors(body)
    zs, Ls = _forward(P, X, Y)
    T, m = len(zs), zs[0].shape[0]
    out = torch.zeros((T, T) if norms else (T, T, m), dtype=torch.float64)
    if norms:
        for t in range(T):
            d = torch.stack(torch.autograd.grad(Ls[t], zs[: t + 1], retain_graph=True))
            out[t, : t + 1] = d.norm(dim=1)
        grads = torch.autograd.grad(torch.stack(Ls).sum(), [P[k] for k in PARAMS])
        return out.numpy(), {k: g.numpy() for k, g in zip(PARAMS, grads)}, None
    params = [P[k] for k in PARAMS]
    per_step = {k: torch.empty((T,) + P[k].shape, dtype=torch.float64) for k in PARAMS}
    for t in range(T):
        g = torch.autograd.grad(Ls[t], zs[: t + 1] + params, retain_graph=True)
        out[t, : t + 1] = torch.stack(g[: t + 1])
        for k, gk in zip(PARAMS, g[t + 1 :]):
            per_step[k][t] = gk
    return (out.numpy(), {k: v.sum(0).numpy() for k, v in per_step.items()},
            {k: v.numpy() for k, v in per_step.items()})


def torch_jacrev(body: dict, norms: bool = False):
    """(b) torch.func.jacrev of (L_1 … L_T) w.r.t. a zero perturbation eps_k added to every
    z_k, so that ∂L_t/∂eps_k = δ_{t,k}, and (full) w.r.t. the parameters, which gives ∂L_t/∂θ;
    the summed gradients are their sum. norms: one backward of L gives the summed gradients
    (a jacrev w.r.t. the parameters too would form every per-step gradient: ~8× slower at
    T=512, and a norms response has none)."""
    import torch
    from torch.func import jacrev

    P, X, Y = _tensors(body)
    P0 = {k: v.detach() for k, v in P.items()}
    eps = X.new_zeros(X.shape[0], P0["W_hh"].shape[0])
    if norms:
        d = jacrev(lambda e: torch.stack(_forward(P0, X, Y, e)[1]))(eps)
        return d.norm(dim=2).numpy(), _param_grads(body), None
    d, per_step = jacrev(lambda e, P: torch.stack(_forward(P, X, Y, e)[1]), argnums=(0, 1))(eps, P0)
    return (d.numpy(), {k: per_step[k].sum(0).numpy() for k in PARAMS},
            {k: per_step[k].numpy() for k in PARAMS})


def torch_jacrev_delta(body: dict, norms: bool = False):
    """(c) full only: torch.func.jacrev of (L_1 … L_T) w.r.t. the zero perturbation alone, which
    gives the δ table, and one backward of L for the summed gradients; no per-step gradients."""
    import torch
    from torch.func import jacrev

    P, X, Y = _tensors(body)
    P0 = {k: v.detach() for k, v in P.items()}
    eps = X.new_zeros(X.shape[0], P0["W_hh"].shape[0])
    d = jacrev(lambda e: torch.stack(_forward(P0, X, Y, e)[1]))(eps)
    return d.numpy(), _param_grads(body), None


TORCH_VARIANTS = {"autograd.grad loop": torch_loop, "func.jacrev": torch_jacrev}
#: the variants that give the δ table and the summed gradients (two of them give more)
TORCH_SUMMED_VARIANTS = TORCH_VARIANTS | {"func.jacrev δ + backward": torch_jacrev_delta}


def ours(body: dict, norms: bool):
    """Our δ table (T, T, m), or ‖δ‖ (T, T) when norms, summed gradients and per-step
    gradients (None when norms): the reference."""
    r = run(parse(body, SETTINGS).problem)
    if norms:
        return r.table.delta_norm[0], r.grads, None
    return r.table.delta[0], r.grads, r.per_step


def check(name: str, got, ref, norms: bool, per_step: bool | None = None) -> bool:
    """Print max|Δ| of a (table, grads, per-step grads) triple from the reference (the per-step
    gradients when per_step, by default unless norms); True when all are < TOL."""
    per_step = not norms if per_step is None else per_step
    d_tab = float(np.abs(got[0] - ref[0]).max())
    d_grad = max(float(np.abs(got[1][k] - ref[1][k]).max()) for k in PARAMS)
    d_step = max(float(np.abs(got[2][k] - ref[2][k]).max()) for k in PARAMS) if per_step else 0.0
    ok = d_tab < TOL and d_grad < TOL and d_step < TOL
    print(f"  check {name:<32} max|Δ| {'‖δ‖' if norms else 'δ'} table {d_tab:.2e}, "
          f"grads {d_grad:.2e}" + (f", per-step grads {d_step:.2e}" if per_step else "")
          + f"  {'OK' if ok else 'MISMATCH'}")
    return ok


def verify_torch(body: dict, norms: bool, ref, variants: dict = TORCH_VARIANTS) -> bool:
    """Check each variant's numbers against ref (per-step gradients where both have them)."""
    oks = []
    for name, fn in variants.items():
        got = fn(body, norms)
        per_step = not norms and got[2] is not None and ref[2] is not None
        oks.append(check(f"torch {name}", got, ref, norms, per_step))
    return all(oks)


def time_torch(body: dict, norms: bool, repeat: int, variants: dict = TORCH_VARIANTS) -> dict[str, float]:
    return {f"torch {name}": median_ms(lambda fn=fn: fn(body, norms), repeat)
            for name, fn in variants.items()}


def time_core(problem) -> None:
    with np.errstate(all="ignore"):  # as run does
        core(problem)


def title(case: dict, repeat: int) -> str:
    return (f"\n{case['detail']}: T={case['T']} n={case['n']} m={case['m']} p={case['p']}, "
            f"median of {repeat} runs (ms)")


def print_times(t: dict[str, float], ok: bool) -> None:
    """The medians, then PyTorch over each of ours: the faster variant first, then the other."""
    width = max(map(len, t))
    for name, ms in t.items():
        print(f"  {name:<{width}} {ms:10.2f}")
    variants = sorted((k for k in t if k.startswith("torch")), key=t.get)
    for k in (k for k in t if not k.startswith("torch")):
        others = "".join(f", {t[v] / t[k]:.1f}× ({v})" for v in variants[1:])
        print(f"  PyTorch / {k}: {t[variants[0]] / t[k]:.1f}× ({variants[0]}, the faster){others}")
    if not ok:
        print("  VERIFICATION FAILED: the figures above compare different numbers")


#: the response fields holding the numbers PyTorch computes in the summed comparisons
FIELDS_OF = {"full": ["delta", "grads"], "norms": ["delta_norm", "grads"]}


def bench_case(case: dict, repeat: int) -> None:
    body = make_body(**case)
    raw = orjson.dumps(body)
    norms = case["detail"] == "norms"
    fields = FIELDS_OF[case["detail"]]
    raw_fields = orjson.dumps(body | {"fields": fields})
    print(title(case, repeat))
    ref = ours(body, norms)
    problem = parse(body, SETTINGS).problem
    summed = parse(body | {"fields": fields}, SETTINGS).problem  # no per-step gradients, no diagnostics
    if not norms:
        print("  (a) the δ table + the summed gradients (the issue's \"full δ table + gradients\")")
        ok = verify_torch(body, norms, ref[:2] + (None,), TORCH_SUMMED_VARIANTS)
        t = {
            "ours core": median_ms(lambda: time_core(summed), repeat),
            f"ours bytes→bytes, fields {fields}": median_ms(lambda: pipeline(raw_fields), repeat),
        }
        print_times(t | time_torch(body, norms, repeat, TORCH_SUMMED_VARIANTS), ok)
        print("  (b) the same and the per-step gradients (every number of the full response)")
    ok = verify_torch(body, norms, ref)
    t = {
        "ours core": median_ms(lambda: time_core(problem), repeat),
        "ours run": median_ms(lambda: run(problem), repeat),
        "ours parse+run": median_ms(lambda: run(parse(body, SETTINGS).problem), repeat),
        "ours bytes→bytes": median_ms(lambda: pipeline(raw), repeat),
    }
    if norms:
        t[f"ours bytes→bytes, fields {fields}"] = median_ms(lambda: pipeline(raw_fields), repeat)
    print_times(t | time_torch(body, norms, repeat), ok)


def machine() -> str:
    """Cores, load, and the thread counts of both libraries."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    blas = os.environ.get("OPENBLAS_NUM_THREADS", f"default = {os.cpu_count()}")
    return (f"{os.cpu_count()} cores, load average {load}; numpy {np.__version__}, "
            f"OpenBLAS threads {blas}")


def have_torch() -> bool:
    try:
        import torch
    except ImportError:
        print(machine())
        print("PyTorch is not installed (pip install torch, or the 'bench' extra): nothing to compare.")
        return False
    print(f"{machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return True


def arguments(doc: str, blas_threads_of: str) -> argparse.Namespace:
    """The arguments both benches take (bench_http.py's threads are the server's)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=100, help="runs per figure, full case")
    ap.add_argument("--repeat-norms", type=int, default=5, help="runs per figure, norms case")
    ap.add_argument("--blas-threads", type=int, help=f"OPENBLAS_NUM_THREADS {blas_threads_of} (default: unset)")
    return ap.parse_args()


def main() -> None:
    args = arguments(__doc__, "for numpy")
    if not have_torch():
        return
    bench_case(FULL, args.repeat)
    bench_case(NORMS, args.repeat_norms)


if __name__ == "__main__":
    main()
