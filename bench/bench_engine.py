"""In-process benchmark: our numpy engine against PyTorch autograd computing the same numbers.

Cases (vanilla tanh cell, mse loss on every step, one sequence, float64, seeded parameters
drawn from U(-1/sqrt(m), 1/sqrt(m)) so tanh does not saturate):

- full:  T=64,  n=16, m=32, p=8, detail "full": every δ_{t,k} = ∂L_t/∂z_k (k ≤ t) and the
         summed parameter gradients.
- norms: T=512, n=16, m=64, p=8, detail "norms": the T×T matrix ‖δ_{t,k}‖ and the gradients.

Ours is timed as parse+run (request dict → Problem → Result), run alone, and the whole
in-process pipeline (orjson bytes → decode+parse+run+respond.build+respond.dumps → bytes).
PyTorch (float64, default threads) is timed as (a) a loop of one autograd.grad(L_t, z[:t+1])
per t plus one backward of L, and (b) torch.func.jacrev of the vector (L_1 … L_T) with
respect to a zero perturbation added to every z_k (which gives δ[t, k]) plus one backward of
L; the faster of the two is "PyTorch" in the ratios. Before timing, both are checked against
ours (max abs diff of the table and of the gradients < 1e-10).
Every figure is the median wall time of --repeat runs (after one warm-up run), in ms.

    python bench/bench_engine.py [--repeat 20] [--repeat-norms 5]
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
    """(a) One autograd.grad(L_t, z_0..z_t) per t, then one backward of L for the gradients.
    Returns the δ table (T, T, m), or ‖δ‖ (T, T) when norms, and the summed gradients."""
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
    """(b) torch.func.jacrev of (L_1 … L_T) w.r.t. a zero perturbation eps_k added to every
    z_k, so that ∂L_t/∂eps_k = δ_{t,k}; then one backward of L for the gradients (a jacrev
    w.r.t. the parameters too would form every per-step gradient: ~8× slower at T=512)."""
    import torch
    from torch.func import jacrev

    P, X, Y = _tensors(body)
    P0 = {k: v.detach() for k, v in P.items()}
    eps = X.new_zeros(X.shape[0], P0["W_hh"].shape[0])
    d = jacrev(lambda e: torch.stack(_forward(P0, X, Y, e)[1]))(eps)
    return (d.norm(dim=2) if norms else d).numpy(), _param_grads(body)


TORCH_VARIANTS = {"autograd.grad loop": torch_loop, "func.jacrev": torch_jacrev}


def ours(body: dict, norms: bool):
    """Our δ table (T, T, m), or ‖δ‖ (T, T) when norms, and summed gradients: the reference."""
    r = run(parse(body, SETTINGS).problem)
    return (r.table.delta_norm[0] if norms else r.table.delta[0]), r.grads


def check(name: str, got, ref, norms: bool) -> bool:
    """Print max|Δ| of a (table, grads) pair from the reference; True when both < TOL."""
    d_tab = float(np.abs(got[0] - ref[0]).max())
    d_grad = max(float(np.abs(got[1][k] - ref[1][k]).max()) for k in PARAMS)
    ok = d_tab < TOL and d_grad < TOL
    print(f"  check {name:<26}max|Δ| {'‖δ‖' if norms else 'δ'} table {d_tab:.2e}, "
          f"grads {d_grad:.2e}  {'OK' if ok else 'MISMATCH'}")
    return ok


def verify_torch(body: dict, norms: bool, ref) -> bool:
    return all([check(f"torch {name}", fn(body, norms), ref, norms) for name, fn in TORCH_VARIANTS.items()])


def time_torch(body: dict, norms: bool, repeat: int) -> dict[str, float]:
    return {f"torch {name}": median_ms(lambda fn=fn: fn(body, norms), repeat)
            for name, fn in TORCH_VARIANTS.items()}


def title(case: dict, repeat: int) -> str:
    return (f"\n{case['detail']}: T={case['T']} n={case['n']} m={case['m']} p={case['p']}, "
            f"median of {repeat} runs (ms)")


def print_times(t: dict[str, float], ok: bool) -> None:
    """The medians, then PyTorch (the faster variant) over each of ours."""
    for name, ms in t.items():
        print(f"  {name:<28} {ms:10.2f}")
    best = min((k for k in t if k.startswith("torch")), key=t.get)
    for k in (k for k in t if not k.startswith("torch")):
        print(f"  PyTorch ({best}) / {k}: {t[best] / t[k]:.1f}×")
    if not ok:
        print("  VERIFICATION FAILED: the figures above compare different numbers")


def bench_case(case: dict, repeat: int) -> None:
    body = make_body(**case)
    raw = orjson.dumps(body)
    norms = case["detail"] == "norms"
    print(title(case, repeat))
    ok = verify_torch(body, norms, ours(body, norms))
    problem = parse(body, SETTINGS).problem
    t = {
        "ours parse+run": median_ms(lambda: run(parse(body, SETTINGS).problem), repeat),
        "ours run": median_ms(lambda: run(problem), repeat),
        "ours bytes→bytes": median_ms(lambda: pipeline(raw), repeat),
    }
    print_times(t | time_torch(body, norms, repeat), ok)


def have_torch() -> bool:
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch, or the 'bench' extra): nothing to compare.")
        return False
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20, help="runs per figure, full case")
    ap.add_argument("--repeat-norms", type=int, default=5, help="runs per figure, norms case")
    args = ap.parse_args()
    if not have_torch():
        return
    bench_case(FULL, args.repeat)
    bench_case(NORMS, args.repeat_norms)


if __name__ == "__main__":
    main()
