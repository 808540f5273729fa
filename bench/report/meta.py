"""meta.json: everything needed to know what a run measured and to run it again."""

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.phases import Phase
from bench.plan import Plan
from rig.processes import ROOT, Cpus, RedisServer
from rig.redis_cluster import RedisCluster, servers_of


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def packages() -> dict[str, str]:
    names = [
        re.split(r"[=\[<>]", line)[0]
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {name: metadata.version(name) for name in names}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(cpus: Cpus, redis: RedisServer | RedisCluster) -> dict:
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": servers_of(redis)[0].client().info("server")["redis_version"],
        "pinning": cpus.describe(),
    }


def source_version() -> dict:
    """Read when the run starts: a commit made while it runs must not be credited with it."""
    return {
        "git_sha": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def write(
    folder: Path,
    plan: Plan,
    cpus: Cpus,
    started: datetime,
    phases: list[Phase],
    redis: RedisServer | RedisCluster,
    source: dict,
    experiments: tuple[str, ...] = (),
    facts: dict | None = None,
    workers: int = 0,
    store: str = "sqlite",
    postgres: dict | None = None,
    redis_nodes: int = 0,
    order: list[dict] | None = None,
) -> None:
    """order: every measurement in the order it ran (experiment, approach, mix, run,
    started_at; Session.ran).
    postgres: the server's version and settings (bench/stores.py), when it was the store.
    redis_nodes: the nodes of the Redis Cluster the caches ran on; 0, one redis-server (and
    meta.json as it was before clusters: no redis_nodes key)."""
    redis_name = f"{redis_nodes} redis-server cluster nodes" if redis_nodes else "redis-server"
    shares = f"app and {redis_name} share the 'app' CPUs"
    if postgres:
        shares = f"app, {redis_name} and postgres share the 'app' CPUs"
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **source,
        "command": "make bench SCALE="
        + plan.scale
        + ("" if store == "sqlite" else f" STORE={store}")
        + (f" WORKERS={workers}" if workers else "")
        + (f" REDIS_NODES={redis_nodes}" if redis_nodes else ""),
        "scale": plan.scale,
        "store": store,
        **({"postgres": postgres} if postgres else {}),
        **({"redis_nodes": redis_nodes} if redis_nodes else {}),
        "experiments": list(experiments),
        "plan": plan.as_json(),
        # Processes sending the load: 1 is one local Locust; N is a master's N workers.
        "load_processes": max(1, workers),
        # Equal resources: each design's app and its stores on one CPU set, the load on another.
        "cpus": {**cpus.as_json(), "server_side_shares": shares},
        "settings": {
            "TIMELINE_LENGTH": plan.timeline_length,
            "CELEBRITY_THRESHOLD": plan.celebrity_threshold,
            "uvicorn": "--host 127.0.0.1 --log-level warning --no-access-log (1 worker)",
        },
        "dataset_facts": facts or {},
        "machine": machine(cpus, redis),
        "packages": packages(),
        "order": order or [],
        "phases": [
            {
                key: value
                for key, value in phase.row().items()
                if key
                in (
                    "approach",
                    "phase",
                    "target_rate",
                    "achieved_rate",
                    "clients",
                    "seconds",
                    "errors",
                    "celebrity_threshold",
                    "app_cpu_s",
                    "redis_cpu_s",
                    "postgres_cpu_s",
                    "load_processes",
                )
            }
            for phase in phases
        ],
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
