#!/usr/bin/env bash
# Does the fanout keep up while the app is saturated? One app on a fresh `tiny` dataset and
# its own redis-server, 20 closed-loop Locust users, 1 tweet per 10 reads, for 15 s, the
# app on CPU 0 and Locust on CPU 1. Prints read/tweet latency and the fanout backlog/lag.
#   bench/write_under_load.sh [approach2|approach3_hybrid]
set -euo pipefail
cd "$(dirname "$0")/.."
app=${1:-approach2}
approach=$([ "$app" = approach3_hybrid ] && echo hybrid || echo fanout)
dir=$(mktemp -d /tmp/write-under-load.XXXX)
free_port() { .venv/bin/python -c "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"; }
port=$(free_port); redis_port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no --daemonize yes --dir "$dir" --logfile "$dir/redis.log"
trap 'pkill -f "uvicorn $app:app --port $port" || true; redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true' EXIT
sleep 0.3
.venv/bin/python -m datagen tiny --database "$dir/app.db" --redis-url "redis://127.0.0.1:$redis_port/0" --approach "$approach" >/dev/null
DATABASE_URL="sqlite:///$dir/app.db" REDIS_URL="redis://127.0.0.1:$redis_port/0" \
    taskset -c 0 .venv/bin/uvicorn "$app:app" --port "$port" --log-level warning > "$dir/app.log" 2>&1 &
sleep 2
taskset -c 1 .venv/bin/locust -f loadtest/ --headless -u 20 -r 20 -t 15s --host "http://127.0.0.1:$port" \
    --read-ratio 10 --database "$dir/app.db" --samples-csv "$dir/run.csv" > "$dir/locust.log" 2>&1 || true
.venv/bin/python - "$dir" <<'PY'
import csv, json, sys
import numpy as np
run = sys.argv[1]
rows = list(csv.DictReader(open(f"{run}/run.csv")))
for operation in ("read", "tweet"):
    ms = np.array([int(r["latency_us"]) for r in rows if r["operation"] == operation]) / 1000
    print(f"{operation:5} n={len(ms):6}  p50={np.percentile(ms, 50):7.1f} ms  p99={np.percentile(ms, 99):7.1f} ms")
stats = json.load(open(f"{run}/run.stats.json"))
print(f"requests/s {len(rows) / 15:.0f}; fanout backlog at the end {stats['fanout_backlog']}; "
      f"tweets fanned out {stats['tweets_fanned_out']}; fanout lag ms {stats['fanout_lag_ms']}")
PY
