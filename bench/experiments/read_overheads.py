"""python -m bench read-overheads [--rounds 12] [--calls 4000]

Each cut of issue 19 part 2, before against after, in one process, the two taking turns
round after round so that whatever else the machine does falls on both; the figure is the
event loop thread's CPU (time.thread_time) per call, median over the rounds:
  redis call   a cached page read (TimelineCache.read, the fanout read's one Lua call; 32 at
               a time, as wrk's connections) through redis-py's connection, which bounds each
               send with asyncio.wait_for and each reply with asyncio.timeout, against
               timelines.cache's (a send bounded only when it must wait, replies by ReplyWatch);
               and, for scale, with no socket_timeout at all: no bound;
  telemetry    a GET answered by the apps' stack (timelines.http.create_app, a page from
               memory as the ceiling answers it), driven as ASGI calls, with FastAPI's native
               OpenTelemetry on (its default) against off (the apps' setting).
Redis runs pinned to another CPU than this process when there are two.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from fastapi import Request
from fastapi.responses import Response

from bench.experiments.profile import profiled_cpus
from rig.processes import RedisServer
from timelines.cache import HiredisPackedConnection, TimelineCache, connect, encode_timeline, timeline_key
from timelines.http import create_app, tweet_list

PAGE = 50
TIMELINE = 800
CONCURRENCY = 32
BODY = b'{"id":%d,"user_id":7,"text":"%s","created_at":"2026-01-01T00:00:00.000000Z"}'


class RedisPyBounds(HiredisPackedConnection):
    """The connection as it was: hiredis's packer, redis-py's send (asyncio.wait_for) and
    read (asyncio.timeout)."""

    send_packed_command = HiredisPackedConnection.__mro__[1].send_packed_command
    read_response = HiredisPackedConnection.__mro__[1].read_response


def say(line: str) -> None:
    print(f"[read_overheads] {line}", flush=True)


async def cpu_per_call(call: Callable[[], Awaitable], calls: int) -> float:
    """µs of this thread's CPU per call, CONCURRENCY calls in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    began = time.thread_time()
    await asyncio.gather(*(worker(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.thread_time() - began) * 1e6 / (calls // CONCURRENCY * CONCURRENCY)


async def alternate(
    variants: dict[str, Callable[[], Awaitable]], rounds: int, calls: int
) -> dict[str, list[float]]:
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for call in variants.values():  # warm: connections made, code paths run once
        await cpu_per_call(call, CONCURRENCY * 10)
    for round_ in range(rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            spent[name].append(await cpu_per_call(variants[name], calls))
    return spent


async def seeded_cache(url: str) -> None:
    client = connect(url)
    ids = list(range(TIMELINE, 0, -1))
    await client.rpush(timeline_key(1), *encode_timeline(ids, TIMELINE))
    await client.mset({f"tweet:{i}": BODY % (i, b"x" * 100) for i in ids})
    await client.aclose()


async def redis_send(url: str, rounds: int, calls: int) -> dict:
    await seeded_cache(url)
    caches = {
        "redis-py's timers per call (before)": connect(url),
        "timelines.cache's bounds (after)": connect(url),
        "no timeout at all (for scale)": connect(url),
    }
    caches["redis-py's timers per call (before)"].connection_pool.connection_class = RedisPyBounds
    caches["no timeout at all (for scale)"].connection_pool.connection_kwargs["socket_timeout"] = None
    reads = {name: TimelineCache(client, TIMELINE) for name, client in caches.items()}
    try:
        return await alternate(
            {name: (lambda cache=cache: cache.read(1, 2**63 - 1, PAGE)) for name, cache in reads.items()},
            rounds,
            calls,
        )
    finally:
        for client in caches.values():
            await client.aclose()


def page_app(telemetry_on: bool):
    """The ceiling's route on the apps' stack; FastAPI's default telemetry switched back on."""
    app = create_app("read_overheads", None)
    if telemetry_on:
        app._telemetry.update(tracing=True, metrics=True, logs=True)  # FastAPI's defaults
    app.state.page = [BODY % (i, b"x" * 100) for i in range(PAGE, 0, -1)]

    @app.get("/timeline/{user_id}")
    async def home_timeline(user_id: int, request: Request, limit: int = 50) -> Response:
        return tweet_list(user_id, request.app.state.page[:limit])

    return app


def asgi_get(app) -> Callable[[], Awaitable]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/timeline/1",
        "raw_path": b"/timeline/1",
        "root_path": "",
        "query_string": b"limit=50",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"answered {message['status']}")

    return lambda: app(dict(scope), receive, send)


async def telemetry(rounds: int, calls: int) -> dict:
    variants = {"telemetry on (before)": page_app(True), "telemetry off (after)": page_app(False)}
    return await alternate({name: asgi_get(app) for name, app in variants.items()}, rounds, calls)


def report(what: str, spent: dict[str, list[float]]) -> None:
    """Medians over the rounds, and the median of each round's difference from the first
    variant: the rounds' own swings (other work on the machine) cancel within a round."""
    (first, baseline), *others = spent.items()
    say(f"{what}: {first} {statistics.median(baseline):.1f} µs a call")
    for name, values in others:
        saved = statistics.median(b - v for b, v in zip(baseline, values, strict=True))
        say(
            f"{what}: {name} {statistics.median(values):.1f} µs a call, {saved:.1f} µs less "
            f"(median of the rounds' differences; {saved / statistics.median(baseline):.0%})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench read-overheads")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=4000, help="calls per variant and round")
    args = parser.parse_args(argv)
    cpus = profiled_cpus()
    if cpus.app:
        os.sched_setaffinity(0, cpus.app)
    with (
        tempfile.TemporaryDirectory(prefix="read-overheads-") as tmp,
        RedisServer(Path(tmp), cpus.redis) as redis,
    ):
        report("redis call", uvloop.run(redis_send(redis.url(), args.rounds, args.calls)))
    report("telemetry", uvloop.run(telemetry(args.rounds, args.calls)))
    return 0
