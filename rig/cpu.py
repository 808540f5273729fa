"""What the server side spent during a phase, read from outside it: CPU seconds of the app's
process tree, of redis-server and, when it is the apps' store, of the PostgreSQL server (the
kernel's per-thread run time in /proc/PID/task/*/schedstat, in nanoseconds, where psutil's
cpu_times counts 10 ms ticks: too coarse for one tweet; psutil where /proc has no schedstat),
and Redis's own count of the commands that write a cached timeline (INFO commandstats), so
that a phase's figures per request do not rest on the app's word. On a Redis Cluster both
Redis figures are the sums over its nodes.

    meter = Meter(app.process.pid, redis)
    before = meter.read()
    ...the phase...
    spent = meter.read() - before     # Usage(app_s=..., redis_s=..., timeline_writes=...)
"""

from dataclasses import dataclass
from pathlib import Path

import psutil

from rig.processes import RedisServer
from rig.redis_cluster import RedisCluster, servers_of

# A cached list gains an id by LPUSH (the common push, a celebrity's `recent:` list too) or
# LINSERT (an id older than the head); rebuilds after a miss use RPUSH and are not counted.
TIMELINE_WRITES = ("lpush", "linsert")


def scheduled_seconds(pid: int) -> float | None:
    """CPU time of all of a process's threads, from schedstat; None where it cannot be read."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended while we read
    except OSError:
        return None
    return total / 1e9


def process_cpu_seconds(process: psutil.Process) -> float:
    scheduled = scheduled_seconds(process.pid)
    if scheduled is not None:
        return scheduled
    times = process.cpu_times()
    return times.user + times.system


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its living children (uvicorn under taskset, --workers' children)."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in family:
        try:
            total += process_cpu_seconds(member)
        except psutil.NoSuchProcess:
            continue
    return total


def server_cpu_seconds(pid: int) -> float:
    """CPU of a forking server (PostgreSQL's postmaster) and of every child it ever had: the
    living ones, and those it has reaped (the kernel adds theirs to its children's times), so
    that a backend ending between two readings does not take its CPU out of the total."""
    try:
        reaped = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return tree_cpu_seconds(pid) + reaped.children_user + reaped.children_system


@dataclass(frozen=True)
class Usage:
    app_s: float = 0.0
    redis_s: float = 0.0
    timeline_writes: int = 0
    postgres_s: float | None = None  # None: no database server, SQLite's CPU is the app's

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(
            self.app_s - other.app_s,
            self.redis_s - other.redis_s,
            self.timeline_writes - other.timeline_writes,
            None if self.postgres_s is None else self.postgres_s - (other.postgres_s or 0.0),
        )


@dataclass(frozen=True)
class Meter:
    app_pid: int
    redis: RedisServer | RedisCluster  # a cluster's figures are the sums over its nodes
    postgres_pid: int | None = None  # the postmaster, when the apps' store is PostgreSQL

    def read(self) -> Usage:
        servers = servers_of(self.redis)
        writes = sum(timeline_writes(server) for server in servers)
        postgres = server_cpu_seconds(self.postgres_pid) if self.postgres_pid else None
        redis_s = sum(tree_cpu_seconds(server.process.pid) for server in servers)
        return Usage(tree_cpu_seconds(self.app_pid), redis_s, writes, postgres)


def timeline_writes(server: RedisServer) -> int:
    with server.client() as client:
        stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in TIMELINE_WRITES)
