"""In-process benchmark: our numpy engine against PyTorch autograd computing the same numbers.

Cases (vanilla tanh cell, mse loss on every step, one sequence, float64, seeded parameters
drawn from U(-1/sqrt(m), 1/sqrt(m)) so tanh does not saturate):

- full:  T=64,  n=16, m=32, p=8, detail "full": every δ_{t,k} = ∂L_t/∂z_k (k ≤ t) and the
         summed parameter gradients.
- norms: T=512, n=16, m=64, p=8, detail "norms": the T×T matrix ‖δ_{t,k}‖ and the gradients.

Ours is timed as parse+run (request dict → Problem → Result), run alone, and the whole
in-process pipeline (orjson bytes → decode+parse+run+respond.build+respond.dumps → bytes).
PyTorch is timed as (a) a loop of one autograd.grad(L_t, z[:t+1]) per t plus one backward of
L, and (b) torch.func.jacrev of the vector (L_1 … L_T) with respect to a zero perturbation
added to every z_k (which gives δ[t, k]) and the parameters (summed over t afterwards).
Before timing, the PyTorch numbers are checked against ours (max abs diff < 1e-10).
Every figure is the median wall time of --repeat runs (after one warm-up run), in ms.

    python bench/bench_engine.py [--repeat 20] [--repeat-norms 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from app.api import respond  # noqa: E402
from app.api.parse import decode, parse  # noqa: E402
from app.engine import run  # noqa: E402
from app.settings import Settings  # noqa: E402

FULL = {"T": 64, "n": 16, "m": 32, "p": 8, "detail": "full"}
NORMS = {"T": 512, "n": 16, "m": 64, "p": 8, "detail": "norms"}
PARAMS = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
TOL = 1e-10
SETTINGS = Settings()


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

    xw = X @ P["W_xh"].T + P["b_h"]
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


def torch_loop(body: dict, norms: bool = False):
    """(a) One autograd.grad(L_t, z_0..z_t) per t, then one backward of L.
    Returns (δ table (T, T, m), or ‖δ‖ (T, T) when norms, and the summed gradients)."""
    import torch

    P, X, Y = _tensors(body)
    zs, Ls = _forward(P, X, Y)
    T, m = len(zs), zs[0].shape[0]
    out = torch.zeros((T, T) if norms else (T, T, m), dtype=torch.float64)
    for t in range(T):
        d = torch.stack(torch.autograd.grad(Ls[t], zs[: t + 1], retain_graph=True))
        out[t, : t + 1] = d.norm(dim=1) if norms else d
    grads = torch.autograd.grad(torch.stack(Ls).sum(), [P[k] for k in PARAMS])
    return out.numpy(), {k: g.numpy() for k, g in zip(PARAMS, grads)}


def torch_jacrev(body: dict, norms: bool = False):
    """(b) torch.func.jacrev of (L_1 … L_T) w.r.t. a zero perturbation of every z_k and the
    parameters: ∂L_t/∂eps_k = δ_{t,k}; the per-step parameter gradients are summed over t."""
    import torch
    from torch.func import jacrev

    P, X, Y = _tensors(body)
    P = {k: v.detach() for k, v in P.items()}
    eps = X.new_zeros(X.shape[0], P["W_hh"].shape[0])

    def losses(eps, P):
        return torch.stack(_forward(P, X, Y, eps)[1])

    d, per_step = jacrev(losses, argnums=(0, 1))(eps, P)
    if norms:
        d = d.norm(dim=2)
    return d.numpy(), {k: per_step[k].sum(0).numpy() for k in PARAMS}


TORCH_VARIANTS = {"autograd.grad loop": torch_loop, "func.jacrev": torch_jacrev}


def verify(name: str, fn, body: dict, norms: bool) -> bool:
    """Max abs difference of PyTorch's table and gradients from ours; True when both < TOL."""
    r = run(parse(body, SETTINGS).problem)
    ours = r.table.delta_norm[0] if norms else r.table.delta[0]
    table, grads = fn(body, norms)
    d_tab = float(np.abs(table - ours).max())
    d_grad = max(float(np.abs(grads[k] - r.grads[k]).max()) for k in PARAMS)
    ok = d_tab < TOL and d_grad < TOL
    what = "‖δ‖ table" if norms else "δ table"
    print(f"  check {name:<20} max|Δ| {what} {d_tab:.2e}, grads {d_grad:.2e}  "
          f"{'OK' if ok else 'MISMATCH'}")
    return ok


def bench_case(case: dict, repeat: int, variants: dict) -> dict[str, float]:
    """Verify, then time ours and the given PyTorch variants; print and return the medians."""
    body = make_body(**case)
    raw = orjson.dumps(body)
    norms = case["detail"] == "norms"
    print(f"\n{case['detail']}: T={case['T']} n={case['n']} m={case['m']} p={case['p']}, "
          f"median of {repeat} (ms)")
    ok = all(verify(name, fn, body, norms) for name, fn in variants.items())
    problem = parse(body, SETTINGS).problem
    t = {
        "ours parse+run": median_ms(lambda: run(parse(body, SETTINGS).problem), repeat),
        "ours run": median_ms(lambda: run(problem), repeat),
        "ours bytes→bytes": median_ms(lambda: pipeline(raw), repeat),
    }
    for name, fn in variants.items():
        t[f"torch {name}"] = median_ms(lambda fn=fn: fn(body, norms), repeat)
    for name, ms in t.items():
        print(f"  {name:<28} {ms:10.2f}")
    best = min((k for k in t if k.startswith("torch")), key=t.get)
    t["PyTorch"] = t[best]
    print(f"  PyTorch = {best}: {t['PyTorch'] / t['ours parse+run']:.1f}× ours parse+run, "
          f"{t['PyTorch'] / t['ours run']:.1f}× ours run")
    if not ok:
        print("  VERIFICATION FAILED: the figures above compare different numbers")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20, help="runs per figure, full case")
    ap.add_argument("--repeat-norms", type=int, default=3, help="runs per figure, norms case")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch, or the 'bench' extra): nothing to compare.")
        sys.exit(0)
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    bench_case(FULL, args.repeat, TORCH_VARIANTS)
    bench_case(NORMS, args.repeat_norms, TORCH_VARIANTS)


if __name__ == "__main__":
    main()
