"""How a course server holds under abuse: a real bptt-explorer on loopback, bounded in time.

    python bench/abuse.py [--seconds 10] [--parts classroom,unread,idle,kill,sigterm,bodies]

Parts (each prints its figures; every server is started and stopped here, on a free port):
  classroom  classroom requests (the 'classroom' preset, T=10, m=4) from 4 clients, alone and
             with 2 and 4 maximal requests looping beside them, one worker: p50/p99/max of the
             light ones, what the maximal ones got (200/503), the peak RSS of the worker and of
             its heavy processes (--cases picks them, e.g. work:2,size:2)
  unread     8 clients that send a maximal request and never read: RSS over time, classroom
             latency meanwhile, when the connections are dropped (BPTT_SEND_TIMEOUT)
  idle       2,000 idle connections (RLIMIT_NOFILE raised): a new client's latency, and how
             many of them the server still holds after a while
  kill       kill -9 of one of 2 workers under classroom load: errors, answers meanwhile, restart
  sigterm    SIGTERM to bptt-explorer --workers 2 while clients hold unread responses: time to exit
  bodies     8 MB request bodies: how long the event loop stalls while they are parsed
Loopback only (127.0.0.1). The machine's other load shows in every figure: say so with them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLASSROOM = json.dumps(json.loads((ROOT / "app/presets/classroom.json").read_text())["request"]).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def body(B: int, T: int, m: int, p: int, **extra) -> bytes:
    b = {"loss": "softmax_ce", "inputs": [[[0.5]] * T] * B, "targets": [[1] * T] * B,
         "init": {"seed": 0, "hidden": m, "outputs": p}} | extra
    return json.dumps(b).encode()


#: the largest answers the default limits allow: by size (a 170 MB response, estimated just under
#: BPTT_MAX_RESPONSE_MB's 200; T=256 is refused since the default response carries delta_h_norm
#: and the vanishing diagnostics) and by work (near BPTT_MAX_WORK: 5.5e9)
MAXIMAL = {
    "size": body(64, 192, 1, 96),
    "work": body(4, 1024, 30, 8, fields=["delta_norm", "grads"]),
}


@contextlib.contextmanager
def explorer(workers: int = 1, **env: str):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--host", HOST, "--port", str(port), "--workers", str(workers),
         "--log-level", "error"],
        cwd=ROOT, env={**os.environ, **{f"BPTT_{k.upper()}": str(v) for k, v in env.items()}},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90  # (a loaded machine: each worker starts its heavy processes too)
        while True:
            try:
                if get(port, "/healthz")[0] == 200 and (workers == 1 or len(workers_of(proc)) == workers):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield proc, port
    finally:
        pids = workers_of(proc)
        extra = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        pids += [int(x) for x in extra.split()]
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def workers_of(proc) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    pids = []
    for pid in map(int, out.split()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmd:
            pids.append(pid)
    return pids


def mem(pid: int, key: str = "VmRSS") -> float:
    """MB of a /proc status line (VmRSS now, VmHWM the peak)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def heavy_processes(pid: int) -> list[int]:
    """A worker's processes for heavy requests (app/api/heavy.py; not multiprocessing's tracker)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    pids = []
    for k in map(int, out.split()):
        try:
            if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes():
                pids.append(k)
        except OSError:
            pass
    return pids


def peaks(pid: int) -> str:
    """A worker's peak RSS and its heavy processes' (VmHWM), and their sum."""
    kids = [mem(k, "VmHWM") for k in heavy_processes(pid)]
    me = mem(pid, "VmHWM")
    return f"{me + sum(kids):.0f} MB (worker {me:.0f}" + "".join(f" + {k:.0f}" for k in kids) + ")"


def get(port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post(conn: http.client.HTTPConnection, data: bytes) -> tuple[int, int]:
    conn.request("POST", "/api/v1/bptt", data, {"content-type": "application/json"})
    r = conn.getresponse()
    return r.status, len(r.read())


def server_connections(port: int) -> int:
    """Established connections on the server's side of port (ss)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len(out.splitlines())


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def summary(lat: list[float]) -> str:
    if not lat:
        return "no requests"
    return (f"{len(lat)} requests, p50 {statistics.median(lat) * 1e3:.1f} ms, p99 {pct(lat, 0.99) * 1e3:.1f} ms, "
            f"max {max(lat) * 1e3:.1f} ms")


class Clients:
    """n threads sending one request in a loop (each on its own keep-alive connection), with
    think seconds between requests, until stop; latencies and statuses recorded."""

    def __init__(self, port: int, data: bytes, n: int, think: float = 0.0, timeout: float = 60) -> None:
        self.port, self.data, self.think, self.timeout = port, data, think, timeout
        self.lat: list[float] = []
        self.codes: dict[int | str, int] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                code, _ = post(conn, self.data)
            except (OSError, http.client.HTTPException) as e:
                code = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            dt = time.perf_counter() - t0
            self.codes[code] = self.codes.get(code, 0) + 1
            if code == 200:
                self.lat.append(dt)
            if self.think:
                time.sleep(self.think)
        conn.close()

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)


def _clients_for(port: int, data: bytes, n: int, seconds: float, out) -> None:
    c = Clients(port, data, n)
    time.sleep(seconds)
    c.end()
    out.put(dict(c.codes))


class ClientsElsewhere:
    """Clients in a process of their own: the maximal requests' clients read 157 MB answers
    (http.client decodes chunks in Python), which in the measuring process would hold its GIL
    and count in the light requests' latency."""

    def __init__(self, port: int, data: bytes, n: int, seconds: float) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.out = ctx.Queue()
        self.proc = ctx.Process(target=_clients_for, args=(port, data, n, seconds, self.out), daemon=True)
        self.proc.start()
        self.codes: dict = {}

    def end(self) -> None:
        try:
            self.codes = self.out.get(timeout=120)
        except Exception:
            self.codes = {"no report": 1}
        self.proc.join(10)


def unread_client(port: int, data: bytes) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((HOST, port))
    s.sendall(b"POST /api/v1/bptt HTTP/1.1\r\nhost: b\r\ncontent-type: application/json\r\n"
              b"content-length: %d\r\n\r\n" % len(data) + data)
    return s


CASES = "alone,size:2,size:4,work:2,work:4"


def part_classroom(seconds: float, cases: str = CASES) -> None:
    print("\n## classroom requests beside maximal ones (one worker, 4 classroom clients, 20 ms think)")
    for case in cases.split(","):
        kind, _, n = case.partition(":")
        heavy = int(n or 0)
        with explorer(1) as (proc, port):
            big = ClientsElsewhere(port, MAXIMAL[kind], heavy, seconds) if heavy else None
            light = Clients(port, CLASSROOM, 4, think=0.02)
            time.sleep(seconds)
            light.end()
            if big:
                big.end()
            peak = peaks(proc.pid)
        beside = f"{heavy} maximal ({kind}) beside: {dict(big.codes)}" if big else "alone"
        print(f"{beside:>48} | classroom: {summary(light.lat)} | peak RSS {peak}", flush=True)


def part_unread(seconds: float) -> None:
    print("\n## 8 clients that send a maximal request and never read (2 workers, BPTT_SEND_TIMEOUT=20)")
    with explorer(2) as (proc, port):
        pids = workers_of(proc)
        light = Clients(port, CLASSROOM, 2, think=0.05)
        socks = [unread_client(port, MAXIMAL["size"]) for _ in range(8)]
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < max(seconds, 40):
            time.sleep(2)
            samples.append((time.monotonic() - t0, [mem(p) for p in pids], server_connections(port)))
        light.end()
        peak = [peaks(p) for p in pids]
        for s in socks:
            s.close()
    for t, rss, conns in samples:
        print(f"  t = {t:5.1f} s: worker RSS " + ", ".join(f"{x:.0f}" for x in rss) + f" MB; "
              f"connections the server holds {conns} (2 of them the classroom clients')")
    print(f"  classroom meanwhile: {summary(light.lat)} {dict(light.codes)}; peak RSS per worker "
          + ", ".join(peak))


def part_idle(seconds: float) -> None:
    print("\n## 2,000 idle connections (2 workers)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    with explorer(2) as (proc, port):
        idle = []
        for _ in range(2000):
            s = socket.socket()
            s.connect((HOST, port))
            idle.append(s)
        time.sleep(1)
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        lat = []
        for _ in range(50):
            t0 = time.perf_counter()
            post(conn, CLASSROOM)
            lat.append(time.perf_counter() - t0)
        conn.close()
        print(f"  a new client with 2,000 idle beside: {summary(lat)}")
        wait = max(seconds, 15)
        time.sleep(wait)
        open_ = 0
        for s in idle:
            s.setblocking(False)
            try:
                open_ += 0 if s.recv(1) == b"" else 1  # b"": the server closed it
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
            s.close()
        print(f"  still held by the server after {wait + 1:.0f} s: {open_} of 2,000")


def part_kill(seconds: float) -> None:
    print("\n## kill -9 of one of 2 workers under classroom load")
    with explorer(2) as (proc, port):
        before = workers_of(proc)
        light = Clients(port, CLASSROOM, 4, think=0.01, timeout=10)
        time.sleep(seconds / 2)
        n0 = len(light.lat)
        t_kill = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        restarted = None
        while time.monotonic() - t_kill < 15:
            now = workers_of(proc)
            if len(now) == 2 and set(now) != set(before):
                restarted = time.monotonic() - t_kill
                break
            time.sleep(0.05)
        time.sleep(seconds / 2)
        light.end()
        after = workers_of(proc)
    print(f"  answers before the kill {n0}, after {len(light.lat) - n0}; statuses and errors {dict(light.codes)}")
    print(f"  worker restarted in {restarted:.2f} s" if restarted else "  worker NOT restarted within 15 s",
          f"(workers {before} → {after})")


def part_sigterm(seconds: float) -> None:
    print("\n## SIGTERM with clients holding unread responses (2 workers, BPTT_SHUTDOWN_TIMEOUT=30, send timeout 120)")
    with explorer(2, send_timeout=120) as (proc, port):
        pids = [proc.pid, *workers_of(proc)]
        socks = [unread_client(port, MAXIMAL["size"]) for _ in range(4)]
        time.sleep(5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        time.sleep(0.3)
        alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
        for s in socks:
            s.close()
    print(f"  supervisor exited after {took:.1f} s; processes left: {alive or 'none'}")


def part_bodies(seconds: float) -> None:
    print("\n## 8 MB bodies parsed beside /healthz probes (one worker)")
    import numpy as np

    rng = np.random.default_rng(0)
    n = 512
    T = (8 * 1024 * 1024 - 4096) // (n * 21)
    X = rng.standard_normal((T, n)).tolist()
    data = json.dumps({"inputs": X, "targets": [[0.0]] * T, "init": {"seed": 0, "hidden": 1}}).encode()
    print(f"  body {len(data) / 1e6:.1f} MB (T={T}, n={n}: {T * n} numbers)")
    with explorer(1) as (proc, port):
        heavy = Clients(port, data, 2, timeout=60)
        lat = []
        t_end = time.monotonic() + seconds
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            lat.append(time.perf_counter() - t0)
            time.sleep(0.005)
        heavy.end()
        peak = peaks(proc.pid)
    print(f"  /healthz beside 2 clients posting them: {summary(lat)}; the bodies got {dict(heavy.codes)}")
    print(f"  peak RSS: {peak}")


PARTS = {"classroom": part_classroom, "unread": part_unread, "idle": part_idle, "kill": part_kill,
         "sigterm": part_sigterm, "bodies": part_bodies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="length of each timed case (default 10)")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    ap.add_argument("--cases", default=CASES, help=f"the classroom part's cases (default {CASES})")
    args = ap.parse_args()
    print(f"bench/abuse.py on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {os.getloadavg()[0]:.2f} (other processes share the machine)")
    for name in args.parts.split(","):
        if name == "classroom":
            part_classroom(args.seconds, args.cases)
        else:
            PARTS[name](args.seconds)


if __name__ == "__main__":
    main()
