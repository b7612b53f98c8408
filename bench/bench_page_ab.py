"""Two versions of the page side by side in one headless Chromium, changes and arrow keys
alternated between them, so a shared machine's load (other jobs, CPU frequency) hits both
alike: the figures of README "Issue 12's page work".

Each root is a checkout with a .venv (e.g. `git worktree add /tmp/before <commit>` and a
symlink to this .venv); each is served by its own uvicorn on a free loopback port. Per round,
on each page in turn (the order alternates): a seed change (bench_page.ONE_CHANGE: change → all
plots redrawn, perf.lastMs) and two arrow keys (a move of k, then of t: keydown → views
redrawn). Prints the medians.

    python bench/bench_page_ab.py --before /tmp/before --after . --T 256 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_page import ONE_CHANGE, ONE_KEY, make_body  # noqa: E402
from browser import VIEWPORT, launch, open_page, wait_render  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([str(root / ".venv/bin/python"), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=root)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/healthz", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    sys.exit(f"{root}: the server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, default=ROOT)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    procs = []
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            pages = {}
            for name, root in (("before", a.before.resolve()), ("after", a.after.resolve())):
                proc, base = serve(root)
                procs.append(proc)
                page = browser.new_page(viewport=VIEWPORT)
                open_page(page, base)
                page.click("#box-json > summary")
                page.fill("#json-box", json.dumps(make_body(a.T, 4, a.m, 4)))
                n = page.evaluate("() => window.bptt.perf.renders")
                page.click("#json-apply")
                wait_render(page, n, timeout=120_000)
                page.evaluate("() => document.activeElement && document.activeElement.blur()")
                pages[name] = page
            res = {name: {"change": [], "key": []} for name in pages}
            order = list(pages.items())
            for i in range(a.warmup + a.rounds):
                for name, page in (order if i % 2 == 0 else order[::-1]):
                    page.bring_to_front()
                    r = page.evaluate(ONE_CHANGE, 2000 + i)
                    k = page.evaluate(ONE_KEY, "ArrowLeft" if i % 2 == 0 else "ArrowRight")
                    t = page.evaluate(ONE_KEY, "ArrowUp" if i % 2 == 0 else "ArrowDown")
                    if i >= a.warmup:
                        res[name]["change"].append(r["lastMs"])
                        res[name]["key"] += [k["observed"], t["observed"]]
            browser.close()
    finally:
        for p in procs:
            p.terminate()
    print(f"page before/after, interleaved: T={a.T}, n=4, m={a.m}, p=4; {a.rounds} rounds after {a.warmup} warm-up")
    for name, r in res.items():
        print(f"  {name:<7} change → redrawn median {statistics.median(r['change']):7.0f} ms   "
              f"arrow key → redrawn median {statistics.median(r['key']):6.0f} ms")


if __name__ == "__main__":
    main()
