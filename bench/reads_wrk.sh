#!/usr/bin/env bash
# Reads only, the three apps side by side on one seeded scale: wrk -c32 on random readers
# (limit 50), the app on CPU 0 and wrk on CPU 1, each app on its own loaded stores.
#   bench/reads_wrk.sh [SCALE]      (default: default; needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-default}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
dir=$(mktemp -d /tmp/reads-wrk.XXXX)
free_port() { .venv/bin/python -c "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"; }
redis_port=$(free_port); port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no --daemonize yes --dir "$dir" --logfile "$dir/redis.log"
trap 'pkill -f "port $port" || true; redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
sleep 0.3
users=$(.venv/bin/python -c "from datagen.scales import SCALES; print(SCALES['$scale'].users)")
printf 'math.randomseed(42)\nrequest = function() return wrk.format("GET", "/timeline/" .. math.random(1, %d)) end\n' "$users" > "$dir/read.lua"
.venv/bin/python -m datagen "$scale" --database "$dir/join.db" > /dev/null 2>&1
.venv/bin/python -m datagen "$scale" --database "$dir/fanout.db" --redis-url "redis://127.0.0.1:$redis_port/1" --approach fanout > /dev/null 2>&1
.venv/bin/python -m datagen "$scale" --database "$dir/hybrid.db" --redis-url "redis://127.0.0.1:$redis_port/2" --approach hybrid > /dev/null 2>&1
for run in approach1:join:0 approach2:fanout:1 approach3_hybrid:hybrid:2; do
    IFS=: read -r module store db <<< "$run"
    DATABASE_URL="sqlite:///$dir/$store.db" REDIS_URL="redis://127.0.0.1:$redis_port/$db" \
        taskset -c 0 .venv/bin/uvicorn "$module:app" --port "$port" --log-level warning > "$dir/$store.log" 2>&1 &
    sleep 2.5
    taskset -c 1 wrk -t1 -c32 -d3s -s "$dir/read.lua" "http://127.0.0.1:$port" > /dev/null   # warm-up
    result=$(taskset -c 1 wrk -t1 -c32 -d10s --latency -s "$dir/read.lua" "http://127.0.0.1:$port")
    echo "$module: $(grep 'Requests/sec' <<< "$result" | tr -s ' ')  p50 $(grep ' 50%' <<< "$result" | awk '{print $2}')  p99 $(grep ' 99%' <<< "$result" | awk '{print $2}')"
    pkill -f "port $port"; sleep 1
done
