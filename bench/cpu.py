"""What the server side spent during a phase, read from outside it: CPU seconds of the app's
process tree and of redis-server (psutil, user + system), and Redis's own count of the
commands that write a cached timeline (INFO commandstats), so that a phase's figures per
request do not rest on the app's word.

    meter = Meter(app.process.pid, redis)
    before = meter.read()
    ...the phase...
    spent = meter.read() - before     # Usage(app_s=..., redis_s=..., timeline_writes=...)
"""

from dataclasses import dataclass

import psutil

from bench.processes import RedisServer

# A cached list gains an id by LPUSH (the common push, a celebrity's `recent:` list too) or
# LINSERT (an id older than the head); rebuilds after a miss use RPUSH and are not counted.
TIMELINE_WRITES = ("lpush", "linsert")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its living children (uvicorn, taskset's child)."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in family:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@dataclass(frozen=True)
class Usage:
    app_s: float = 0.0
    redis_s: float = 0.0
    timeline_writes: int = 0

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(self.app_s - other.app_s, self.redis_s - other.redis_s,
                     self.timeline_writes - other.timeline_writes)


@dataclass(frozen=True)
class Meter:
    app_pid: int
    redis: RedisServer

    def read(self) -> Usage:
        with self.redis.client() as client:
            stats = client.info("commandstats")
        writes = sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in TIMELINE_WRITES)
        return Usage(tree_cpu_seconds(self.app_pid), tree_cpu_seconds(self.redis.process.pid), writes)
