"""A phase: one headless run of the load suite against one running app (rig/locust.py
starts it), writing its per-request samples and the app's /stats to the run folder. A
bench run is a sequence of phases (warm-up, fixed, celebrities, each step, each sweep point).

Around it the runner reads /stats itself, so that a phase knows what the app did during
it (fanout writes, tweets fanned out), not only what the clients saw.
"""

import gzip
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bench.delivery import Delivery
from rig.cpu import Meter, Usage
from rig.locust import start_locust
from rig.processes import AppServer

BAR = "{desc}: {bar} {n}/{total} s"
TOO_FEW_USERS = "too few users"
# Little's law: a phase holds rate x mean latency requests in flight. Within the SLO (p99 50 ms)
# that is under rate x 0.05; users for rate x 0.5 leave ten times that, so Locust can run out
# of users only where the app is far past the SLO already.
USER_SECONDS = 0.5
# Locust's -t runs from the master's start, and its workers get their spawn message 0.5-2 s
# into it (measured with 2 workers sharing one CPU): without this margin a 1 s phase sent
# nothing at all. The figures count from each worker's first request, not from -t.
WORKER_START_S = 2


@dataclass
class Load:
    """What the clients do: open loop at `rate` (requests/s) or closed loop with `clients`."""

    seconds: float
    rate: float = 0.0
    clients: int = 0
    read_ratio: float = 65
    author_bias: float = 0.0
    seed: int = 1

    def users(self) -> int:
        if self.clients:
            return self.clients
        return int(min(6000, max(64, self.rate * USER_SECONDS)))


@dataclass
class Phase:
    approach: str
    name: str
    load: Load
    samples: Path
    settings: dict = field(default_factory=dict)
    began: float = 0.0
    ended: float = 0.0
    stats_before: dict = field(default_factory=dict)
    stats_after: dict = field(default_factory=dict)
    loadtest: dict = field(default_factory=dict)
    first_tweet: int = 0  # the newest tweet id before the phase: its own tweets are above
    figures: dict = field(default_factory=dict)  # per operation, from the samples (bench/report/summary.py)
    usage: Usage = field(default_factory=Usage)  # the server side's CPU and Redis writes (rig/cpu.py)
    locust_warnings: list[str] = field(default_factory=list)  # "too few users" lines of this phase
    workers: int = 0  # Locust worker processes under a master (--processes); 0: one local process
    redis_nodes: int = 0  # the caches' Redis Cluster nodes; 0: one redis-server
    delivery: Delivery | None = None  # its tweets' fanout, read once the backlog drained (bench/delivery.py)

    def row(self) -> dict:
        """This phase in phases.csv: what was asked, what was achieved, what the app did."""
        openloop = self.loadtest.get("openloop") or {}
        ops = self.loadtest.get("operations") or {}
        elapsed = self.loadtest.get("elapsed_s") or (self.ended - self.began)

        def delta(key: str) -> int:
            return int(self.stats_after.get(key, 0) or 0) - int(self.stats_before.get(key, 0) or 0)

        return {
            "approach": self.approach,
            "phase": self.name,
            "began": round(self.began, 3),
            "ended": round(self.ended, 3),
            "seconds": round(elapsed, 3),
            "target_rate": self.load.rate or None,
            "clients": self.load.users(),
            "achieved_rate": openloop.get("achieved_rate")
            or ((ops.get("read", 0) + ops.get("tweet", 0)) / elapsed if elapsed else 0),
            "reads": ops.get("read", 0),
            "tweets": ops.get("tweet", 0),
            "errors": ops.get("errors", 0),
            "fanout_writes": delta("fanout_writes"),
            "tweets_fanned_out": delta("tweets_fanned_out"),
            "fanout_backlog_end": self.stats_after.get("fanout_backlog", 0),
            **self.delivery_columns(),
            "celebrity_threshold": self.settings.get("celebrity_threshold"),
            "app_cpu_s": round(self.usage.app_s, 4),
            "redis_cpu_s": round(self.usage.redis_s, 4),
            # Only where the store is a server of its own: a SQLite run's table is unchanged.
            **({} if self.usage.postgres_s is None else {"postgres_cpu_s": round(self.usage.postgres_s, 4)}),
            "redis_timeline_writes": self.usage.timeline_writes,
            "too_few_users": len(self.locust_warnings),
            # As the load suite counted them: a worker whose end-of-run report was lost shows here.
            "load_processes": self.loadtest.get("processes") or max(1, self.workers),
            "samples": self.samples.name,
            **(self.cache_reads() if self.redis_nodes else {}),
        }

    def delivery_columns(self) -> dict:
        delivery = self.delivery
        if delivery is None:
            return {"lag_p99_ms": None, "late_share": None, "drain_s": None}
        return {
            "lag_p99_ms": round(delivery.lag_p99_ms, 3),
            "late_share": round(delivery.late_share, 4),
            "drain_s": delivery.drain_s,
        }

    def cache_reads(self) -> dict:
        """The app's cache hits and misses over the phase: on a cluster they show that the
        preload put every timeline where the app reads it. Only there: a single redis-server's
        phases.csv stays as it was."""
        before, after = self.stats_before.get("cache") or {}, self.stats_after.get("cache") or {}
        return {f"cache_{key}": after.get(key, 0) - before.get(key, 0) for key in ("hits", "misses")}


def run_phase(
    app: AppServer, phase: Phase, database: Path, cpus: tuple[int, ...], log: Path, meter: Meter | None = None
) -> Phase:
    load = phase.load
    raw = phase.samples.with_suffix("")  # locust writes plain CSV; compressed once it is done
    options = (
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
        "--database",
        str(database),
        "--samples-csv",
        str(raw),
        "--read-ratio",
        f"{load.read_ratio:g}",
        "--author-bias",
        f"{load.author_bias:g}",
        "--seed",
        str(load.seed),
    )
    if load.rate:
        options += ("--arrival-rate", f"{load.rate:g}")
    if phase.workers:
        options += ("--processes", str(phase.workers))
    phase.stats_before = app.stats()
    log_start = log.stat().st_size if log.exists() else 0
    before = meter.read() if meter else Usage()
    phase.began = time.time()
    seconds = load.seconds + (WORKER_START_S if phase.workers else 0)
    locust = start_locust(app.url, load.users(), seconds, log, options, cpus)
    returncode = wait_with_progress(locust, f"{phase.approach} {phase.name}", seconds)
    phase.ended = time.time()
    if meter:
        phase.usage = meter.read() - before
    phase.stats_after = app.stats()
    phase.locust_warnings = warnings_since(log, log_start)
    if returncode not in (0, 1):  # 1: Locust saw failed requests, which the samples count
        raise RuntimeError(f"locust exited {returncode} in {phase.approach}/{phase.name}: see {log}")
    stats_file = raw.with_name(raw.name.removesuffix(".csv") + ".stats.json")
    if stats_file.exists():
        phase.loadtest = json.loads(stats_file.read_text()).get("loadtest", {})
        stats_file.unlink()
    compress(raw, phase.samples)
    return phase


def warnings_since(log: Path, offset: int) -> list[str]:
    """The "too few users" warnings Locust wrote to `log` after `offset` (this phase's)."""
    with open(log, "rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    return [line for line in text.splitlines() if TOO_FEW_USERS in line]


def wait_with_progress(process: subprocess.Popen, what: str, seconds: float) -> int:
    """A bar that moves with the clock while Locust runs (it prints only at the end)."""
    began = time.monotonic()
    with tqdm(total=round(seconds), desc=what, unit="s", leave=False, bar_format=BAR) as bar:
        while process.poll() is None:
            if time.monotonic() - began > seconds + 120:
                process.kill()
                raise RuntimeError(f"locust did not finish {what} within {seconds + 120:g} s")
            bar.n = min(round(time.monotonic() - began), bar.total)
            bar.refresh()
            time.sleep(0.5)
    return process.returncode


def compress(source: Path, target: Path) -> None:
    with open(source, "rb") as plain, gzip.open(target, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(plain, packed)
    source.unlink()
