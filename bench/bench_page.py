"""Page-speed benchmark: how long the page at "/" takes from a change to all plots redrawn.

Starts the real app under uvicorn (tests/server.py running_server), opens the page in headless
Debian Chromium (Playwright) at 1366×768, loads a model with T=32, n=4, m=16, p=4 through the
page's own JSON box (#json-box + #json-apply: {"inputs", "targets", "init": {"seed", "hidden",
"outputs"}}), then --repeat times (after --warmup unrecorded ones) sets #seed to a new value
and dispatches 'change' — the same path as a person editing the seed: new random weights, the
editor's grids rebuilt, the 60 ms debounce, POST /api/v1/bptt, every Plotly view redrawn.

Per change it reads what the page measures itself (window.bptt.perf after the render counter
document.body.dataset.renders increases):
  lastMs        change → every plot in view redrawn (Plotly.react resolved), including the
                debounce (a plot out of view, 200 px beyond the window, is drawn when it comes
                near it or when the page is idle: main.js drawOrDefer);
  lastComputeMs the fetch of POST /api/v1/bptt (request → JSON parsed);
and, measured by the bench in the page: the time to the render counter bump seen by a
MutationObserver and to the next frame after it (two requestAnimationFrame), plus the
server's own Server-Timing (parse + compute + serialize) of each POST, and the time until no
plot is left to draw (document.body.dataset.pending 0: out of view ones too). --scroll Y times
the page scrolled to y (other plots in view).

Then --select times an arrow key (ArrowLeft and ArrowRight in turn, with the page's focus on
the body): from the keydown to the page's view counter (document.body.dataset.views, bumped
when every view that depends on the selection is redrawn) and to the next frame after it.

Prints median and p90 of each, "minus the debounce", the response size (bytes of JSON as
parsed, and as sent on the wire), and the machine (cores, CPU, headless Chromium version).
Targets of issue 12: T=32, m=16 change ≤ 300 ms, selection ≤ 100 ms; T=256, m=16 change ≤ 1 s,
selection ≤ 150 ms; T=1024 usable.

    python bench/bench_page.py [--repeat 20] [--warmup 3] [--select 20] [--T 32 --n 4 --m 16 --p 4] [--scroll Y]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser import DEBOUNCE_MS, IN_VIEW, VIEWPORT, launch, open_page, settled, wait_render  # noqa: E402
from server import running_server  # noqa: E402

TARGETS = {32: (300, 100), 256: (1000, 150)}  # T → (change, selection) ms, issue 12

# in the page: until(attr, ok) resolves when ok() holds, checked at each change of the body's
# attribute attr (20 s at most); settled(): no plot left to draw (data-pending 0, out of view too)
UNTIL = """const until = (attr, ok) => new Promise((resolve, reject) => {
    if (ok()) return resolve();
    const timer = setTimeout(() => { obs.disconnect(); reject(new Error(`no ${attr} within 20 s`)); }, 20000);
    const obs = new MutationObserver(() => { if (ok()) { obs.disconnect(); clearTimeout(timer); resolve(); } });
    obs.observe(document.body, { attributes: true, attributeFilter: [attr] });
  });
  const settled = () => until('data-pending', () => document.body.dataset.pending === '0');"""

ONE_KEY = """async (key) => {
  """ + UNTIL + """
  const before = Number(document.body.dataset.views || 0);
  const done = until('data-views', () => Number(document.body.dataset.views || 0) > before);
  const t0 = performance.now();
  document.body.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
  await done;
  const t1 = performance.now();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const tf = performance.now();
  await settled();
  const t3 = performance.now();
  return { observed: t1 - t0, frame: tf - t0, settled: t3 - t0, sel: [window.bptt.state.sel.t, window.bptt.state.sel.k] };
}"""

ONE_CHANGE = """async (seed) => {
  """ + UNTIL + """
  const el = document.getElementById('seed');
  const perf = window.bptt.perf;
  const before = perf.renders;
  const done = until('data-renders', () => perf.renders > before);
  const t0 = performance.now();
  el.value = String(seed);
  el.dispatchEvent(new Event('change', { bubbles: true }));
  await done;
  const t1 = performance.now();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t2 = performance.now();
  await settled();
  const t3 = performance.now();
  return { lastMs: perf.lastMs, lastComputeMs: perf.lastComputeMs, observed: t1 - t0, frame: t2 - t0, settled: t3 - t0,
           renders: perf.renders, seed: window.bptt.state.req.init && window.bptt.state.req.init.seed };
}"""


def make_body(T: int, n: int, m: int, p: int, seed: int = 1) -> dict:
    r = random.Random(seed)
    g = lambda: round(r.gauss(0, 1), 3)  # noqa: E731
    return {"inputs": [[g() for _ in range(n)] for _ in range(T)],
            "targets": [[g() for _ in range(p)] for _ in range(T)],
            "init": {"seed": seed, "hidden": m, "outputs": p}}


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def server_ms(header: str | None) -> float | None:
    if not header:
        return None
    return sum(float(x) for x in re.findall(r"dur=([0-9.]+)", header))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--p", type=int, default=4)
    ap.add_argument("--select", type=int, default=20, help="arrow keys to time (0: none)")
    ap.add_argument("--scroll", type=int, default=0,
                    help="scroll the page to this y (px) before timing: other plots are in view")
    a = ap.parse_args()

    from playwright.sync_api import sync_playwright

    body = make_body(a.T, a.n, a.m, a.p)
    timings: list[str | None] = []
    wire: list[int] = []
    with running_server() as base, sync_playwright() as pw:
        browser = launch(pw)
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        def on_response(r) -> None:
            if r.request.method == "POST" and "/api/v1/bptt" in r.url:
                timings.append(r.headers.get("server-timing"))
                wire.append(int(r.headers.get("content-length") or 0))
        page.on("response", on_response)
        open_page(page, base)
        # load the model through the page's JSON box
        page.click("#box-json > summary")
        page.fill("#json-box", json.dumps(body))
        n0 = page.evaluate("() => window.bptt.perf.renders")
        page.click("#json-apply")
        wait_render(page, n0, timeout=30_000)
        shapes = page.evaluate("() => window.bptt.response().shapes")
        want = {"T": a.T, "n": a.n, "m": a.m, "p": a.p}
        got = {k: shapes.get(k) for k in want}
        if got != want:
            sys.exit(f"the page did not load the model: shapes {shapes}, wanted {want}")
        resp_bytes = page.evaluate("() => JSON.stringify(window.bptt.response()).length")
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        if a.scroll:
            page.evaluate("(y) => window.scrollTo(0, y)", a.scroll)
            settled(page)
        in_view = page.evaluate(IN_VIEW)

        rows = []
        timings.clear()
        for i in range(a.warmup + a.repeat):
            seed = 1000 + i
            r = page.evaluate(ONE_CHANGE, seed)
            if r["seed"] != seed:
                sys.exit(f"change {i}: the page computed seed {r['seed']}, not {seed}")
            if i >= a.warmup:
                rows.append(r)
        keys = []
        for i in range(a.select + 2):
            r = page.evaluate(ONE_KEY, "ArrowLeft" if i % 2 == 0 else "ArrowRight")
            if i >= 2:
                keys.append(r)
        wire_bytes = statistics.median(wire[a.warmup:]) if wire[a.warmup:] else 0
        srv = [server_ms(h) for h in timings[a.warmup:]]
        srv = [x for x in srv if x is not None]
        version = browser.version
        hw = page.evaluate("() => navigator.hardwareConcurrency")
        browser.close()

    if errors:
        print("page errors during the bench:", *errors, sep="\n  ")

    def line(label: str, xs: list[float]) -> None:
        print(f"  {label:<44} median {statistics.median(xs):7.1f} ms   p90 {pct(xs, 90):7.1f} ms"
              f"   min {min(xs):6.1f}   max {max(xs):6.1f}")

    last = [r["lastMs"] for r in rows]
    comp = [r["lastComputeMs"] for r in rows]
    print(f"BPTT Explorer page speed: T={a.T}, n={a.n}, m={a.m}, p={a.p}; {a.repeat} seed changes "
          f"after {a.warmup} warm-up; viewport {VIEWPORT['width']}×{VIEWPORT['height']}")
    print(f"machine: {os.cpu_count()} cores ({cpu_model()}), navigator.hardwareConcurrency {hw}; "
          f"headless Chromium {version} ({platform.system()} {platform.release()}); Python {platform.python_version()}")
    print(f"scrolled to y={a.scroll}: plots in view (200 px margin) {', '.join(in_view)}")
    print(f"response: {resp_bytes / 1024:.0f} KiB of JSON as parsed; on the wire "
          f"{wire_bytes / 1024:.0f} KiB (Content-Length; 0: chunked)")
    line("change → plots in view redrawn (perf.lastMs)", last)
    line(f"  same minus the {DEBOUNCE_MS} ms debounce", [x - DEBOUNCE_MS for x in last])
    line("API round trip (perf.lastComputeMs)", comp)
    if srv:
        line("  of which server (Server-Timing sum)", srv)
    line("page work (lastMs − debounce − round trip)", [x - DEBOUNCE_MS - c for x, c in zip(last, comp)])
    line("change → render counter seen (bench)", [r["observed"] for r in rows])
    line("change → next frame after it (bench)", [r["frame"] for r in rows])
    line("change → every plot drawn, out of view too", [r["settled"] for r in rows])
    if keys:
        line("arrow key → selection redrawn (bench)", [r["observed"] for r in keys])
        line("arrow key → next frame after it (bench)", [r["frame"] for r in keys])
        line("arrow key → every plot drawn, out of view too", [r["settled"] for r in keys])
    change_t, select_t = TARGETS.get(a.T, (None, None))
    for what, xs, target in (("change → redrawn (debounce included)", last, change_t),
                             ("arrow key → redrawn", [r["observed"] for r in keys], select_t)):
        if target is None or not xs:
            continue
        med, p90 = statistics.median(xs), pct(xs, 90)
        verdict = "meets" if med <= target else "misses"
        print(f"target median ≤ {target} ms {what}: {verdict} (median {med:.0f} ms, p90 {p90:.0f} ms)")


if __name__ == "__main__":
    main()
