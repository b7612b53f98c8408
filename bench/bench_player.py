"""The step-by-step player's cost: a step (→ / ←) with the player on, beside the same arrow key
with it off, and a model change (a new seed) with it on and off; and the response's size with
and without the player's fields (delta_h and dh_next_pass are asked for only while it is on).

Starts the real app (tests/server.py), headless Chromium at 1366×768, loads a model of
T steps (n=4, m=16, p=4) through the page's JSON box, then --rounds alternating rounds
(player off, player on), each of --keys arrow keys and --changes seed changes. A key is timed
from keydown to the page's view counter (document.body.dataset.views) and the next frame; a
change by the page's own window.bptt.perf.lastMs (change → every plot redrawn, with the 60 ms
debounce). Prints medians and ranges.

    python bench/bench_player.py [--T 32 256] [--rounds 3] [--keys 8] [--changes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_page import ONE_CHANGE, ONE_KEY  # noqa: E402
from browser import VIEWPORT, launch, open_page, wait_render  # noqa: E402
from server import running_server  # noqa: E402

PAGE_FIELDS = ["params", "forward", "delta_norm", "eps_tt", "clip", "diagnostics", "delta", "e", "grads",
               "grads_unclipped", "dh", "dz", "grads_per_step"]
PLAYER = ["delta_h", "dh_next_pass"]


def body(T: int, n: int = 4, m: int = 16, p: int = 4) -> dict:
    r = random.Random(T)
    g = lambda: round(r.gauss(0, 1), 3)  # noqa: E731
    return {"inputs": [[g() for _ in range(n)] for _ in range(T)], "targets": [[g() for _ in range(p)] for _ in range(T)],
            "init": {"seed": 1, "hidden": m, "outputs": p}}


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):7.1f} ms  range {min(xs):.0f}–{max(xs):.0f} (n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--changes", type=int, default=3)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with running_server() as base, sync_playwright() as pw:
        b = launch(pw)
        page = b.new_page(viewport=VIEWPORT)
        for T in a.T:
            req = body(T)
            sizes = {}
            for name, fields in (("off", PAGE_FIELDS), ("on", PAGE_FIELDS + PLAYER)):
                r = httpx.post(f"{base}/api/v1/bptt", json=req | {"fields": fields}, timeout=60)
                sizes[name] = len(r.content)
            open_page(page, base, "/?preset=note-003")
            page.click("#box-json summary")
            page.fill("#json-box", json.dumps(req))
            n = page.evaluate("() => Number(document.body.dataset.renders || 0)")
            page.click("#json-apply")
            wait_render(page, n, timeout=60_000)
            keys = {"off": [], "on": []}
            changes = {"off": [], "on": []}
            seed = 10
            for _ in range(a.rounds):
                for mode in ("off", "on"):
                    on = page.evaluate("() => Number.isInteger(window.bptt.state.view.player?.k)")
                    if (mode == "on") != on:
                        n = page.evaluate("() => Number(document.body.dataset.renders || 0)")
                        page.click("#player-start")
                        if mode == "on":
                            wait_render(page, n, timeout=60_000)
                        else:
                            page.wait_for_timeout(300)
                    page.evaluate("() => document.activeElement && document.activeElement.blur()")
                    for i in range(a.keys):
                        key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
                        if mode == "off":
                            key = "ArrowLeft" if i % 2 == 0 else "ArrowRight"
                        keys[mode].append(page.evaluate(ONE_KEY, key)["frame"])
                    for _ in range(a.changes):
                        seed += 1
                        changes[mode].append(page.evaluate(ONE_CHANGE, seed)["lastMs"])
            print(f"T={T}, n=4, m=16, p=4: response {sizes['off'] / 1e6:.2f} MB (player off) → {sizes['on'] / 1e6:.2f} MB (on)")
            for mode in ("off", "on"):
                print(f"  player {mode:3}: arrow key {spread(keys[mode])};  change {spread(changes[mode])}")
        b.close()


if __name__ == "__main__":
    main()
