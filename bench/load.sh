#!/usr/bin/env bash
# Load figures: the real server with 2 workers on loopback, wrk with 8 connections.
#   bash bench/load.sh [seconds per case, default 15] [soak seconds, default 60]
# Prints wrk's req/s and latency percentiles for the classroom default (T=10, m=4) and for
# T=64, m=32 (detail full), then a soak of the classroom request with the workers' memory
# (RSS) sampled every 10 s. Needs wrk (apt-get install wrk). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-15}"
SOAK="${2:-60}"
PORT="${PORT:-8765}"
PY="${PYTHON:-python3}"
OUT="$(mktemp -d)"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

"$PY" - "$OUT" <<'PYEOF'
import json, sys, numpy as np
out = sys.argv[1]
classroom = json.load(open("app/presets/classroom.json"))["request"]
rng = np.random.default_rng(0)
T, n, m, p = 64, 16, 32, 8
s = 1 / np.sqrt(m)
big = {"inputs": rng.standard_normal((T, n)).round(6).tolist(), "targets": rng.standard_normal((T, p)).round(6).tolist(),
       "init": {"seed": 1, "hidden": m, "outputs": p, "scale": float(s)}}
for name, body in (("classroom", classroom), ("t64", big)):
    text = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    open(f"{out}/{name}.lua", "w").write(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = "{text}"\n'
        'done = function(summary, latency, requests)\n'
        '  io.write(string.format("errors: connect %d, read %d, write %d, status %d, timeout %d\\n",\n'
        '    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))\n'
        'end\n')
PYEOF

OPENBLAS_NUM_THREADS=1 BPTT_PORT="$PORT" BPTT_WORKERS=2 BPTT_LOG_LEVEL=warning "$PY" -m app.cli >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
URL="http://127.0.0.1:$PORT/api/v1/bptt"
echo "machine: $(nproc) cores, $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), server: 2 uvicorn workers (uvloop, httptools)"
for name in classroom t64; do
  wrk -t1 -c8 -d2s -s "$OUT/$name.lua" "$URL" >/dev/null   # warm-up
  echo "== $name: wrk -t1 -c8 -d${DUR}s --latency"
  wrk -t1 -c8 -d"${DUR}s" --latency -s "$OUT/$name.lua" "$URL" | grep -E "Requests/sec|Latency  |50%|90%|99%|requests in|errors|Non-2xx"
done
if [ "$SOAK" -gt 0 ]; then
  echo "== soak: classroom for ${SOAK}s, worker RSS (MiB) every 10 s"
  PIDS=$(pgrep -P "$SERVER" -f "multiprocessing" || pgrep -P "$SERVER" || true)
  rss() { for p in $PIDS; do awk '/VmRSS/{printf "%.1f ", $2/1024}' "/proc/$p/status"; done; echo; }
  echo "before: $(rss)"
  wrk -t1 -c8 -d"${SOAK}s" -s "$OUT/classroom.lua" "$URL" > "$OUT/soak.txt" &
  W=$!
  for i in $(seq 10 10 "$SOAK"); do sleep 10; echo "t=${i}s: $(rss)"; done
  wait $W
  grep -E "Requests/sec|requests in|errors" "$OUT/soak.txt"
  echo "after: $(rss)"
fi
