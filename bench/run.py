"""`make bench` / `python -m bench [--scale S] [--out DIR]`: the three designs side by side.

For each approach in turn: a fresh copy of the seeded SQLite file, an empty Redis database
(the bench's own redis-server) loaded with that app's caches, `uvicorn approachN:app` with
identical flags on its own CPU, a warm-up, then the measured phases, each a headless run
of the load suite (loadtest/) on the other CPU:

  fixed      open loop at the plan's rate, DDIA's read:tweet ratio   experiments 1, 4, 7
  celebrities  the same, with the most-followed accounts tweeting    experiments 2, 3
  step-R     open loop at rising rates R until read p99 > SLO         experiment 6
  threshold-T  the hybrid again with CELEBRITY_THRESHOLD=T            experiment 5
  depth-D    join and fanout on a graph with D tweets per author,     experiment 4
             closed loop, reads only

Everything lands in one run folder: samples/ and logs/ from the phases, meta.json
(bench/meta.py), the tables bench/summary.py lists in its docstring, and charts/
(bench/charts.py, which redraws them from the folder alone).
"""

import argparse
import dataclasses
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench import meta, summary
from bench.phases import Load, Phase, run_phase
from bench.plan import PLANS, Plan
from bench.processes import ROOT, AppServer, Cpus, RedisServer
from bench.seeding import fresh_copy, load_caches, seeded_database, set_celebrities
from timelines import designs

FANOUT_LOG = """SELECT tweet_id, author_id, followers, accepted_at, done_at, deliveries
    FROM fanout_log WHERE accepted_at BETWEEN ? AND ? ORDER BY tweet_id"""
CELEBRITY_TWEETS = """SELECT t.id, t.user_id, u.followers FROM tweets t JOIN users u ON u.id = t.user_id
    WHERE t.id > ? AND u.followers >= ? ORDER BY t.id"""
NEWEST_TWEET = "SELECT coalesce(max(id), 0) FROM tweets"
READS_ONLY = 1e9  # --read-ratio: one tweet in a billion requests
DRAIN_SECONDS = 120


@dataclass
class Bench:
    plan: Plan
    folder: Path
    work: Path
    cpus: Cpus
    redis: RedisServer
    began: float = field(default_factory=time.monotonic)
    phases: list[Phase] = field(default_factory=list)
    lags: list[pd.DataFrame] = field(default_factory=list)

    def say(self, line: str) -> None:
        elapsed = int(time.monotonic() - self.began)
        print(f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {line}", flush=True)

    # --- one app on fresh stores -------------------------------------------------------------

    def start(self, name: str, seeded: Path, dataset, threshold: int, tag: str) -> AppServer:
        design = designs.by_name(name)
        database = fresh_copy(seeded, self.work / f"{tag}.db")
        set_celebrities(database, threshold)
        self.redis.client().flushall()  # our own server: every app starts on an empty Redis
        if design.fans_out:
            self.say(f"{tag}: loading {name}'s caches into an empty Redis database")
            load_caches(self.redis.url(), design.module, dataset, self.plan.timeline_length, threshold)
        settings = {"timeline_length": self.plan.timeline_length, "celebrity_threshold": threshold}
        app = AppServer(design.module, database, self.redis.url(), self.folder / "logs" / f"{tag}.log",
                        cpus=self.cpus.app, settings=settings)
        return app.start()

    def phase(self, app: AppServer, name: str, phase_name: str, load: Load, keep: bool = True,
              first_tweet: int = 0) -> Phase:
        samples = (self.folder / "samples" if keep else self.work) / f"{name}-{phase_name}.csv.gz"
        phase = Phase(name, phase_name, load, samples, first_tweet=first_tweet,
                      settings={"celebrity_threshold": int(app.settings["celebrity_threshold"])})
        what = f"{load.rate:g} req/s open loop" if load.rate else f"{load.clients} clients closed loop"
        self.say(f"{name} {phase_name}: {what}, {load.seconds:g} s")
        run_phase(app, phase, app.database, self.cpus.load, self.folder / "logs" / "locust.log")
        if keep:
            self.phases.append(phase)
            self.say(f"{name} {phase_name}: {summary.phase_line(phase)}")
        return phase

    def drain(self, app: AppServer, name: str) -> None:
        if app.stats().get("fanout_backlog", 0):
            self.say(f"{name}: waiting for the fanout backlog to drain")
            app.wait_for_fanout(DRAIN_SECONDS)

    def record_lags(self, app: AppServer, phase: Phase, threshold: int) -> None:
        """Every tweet of the phase with how long its fanout took; the hybrid's pulled
        celebrity tweets too, which are in every timeline from the moment they commit."""
        with closing(sqlite3.connect(f"file:{app.database}?mode=ro", uri=True)) as db:
            fanned = pd.read_sql_query(FANOUT_LOG, db, params=(phase.began, phase.ended))
            pulled = pd.read_sql_query(CELEBRITY_TWEETS, db, params=(phase.first_tweet, threshold))
        fanned["lag_ms"] = (fanned.done_at - fanned.accepted_at) * 1000
        fanned["pulled"] = False
        if phase.approach == "hybrid" and len(pulled):
            pulled = pulled.rename(columns={"id": "tweet_id", "user_id": "author_id"})
            pulled[["lag_ms", "deliveries"]] = 0, 0
            pulled["pulled"] = True
            fanned = pd.concat([fanned, pulled], ignore_index=True)
        fanned.insert(0, "phase", phase.name)
        fanned.insert(0, "approach", phase.approach)
        self.lags.append(fanned.drop(columns=["accepted_at", "done_at"], errors="ignore"))

    # --- the experiments -----------------------------------------------------------------------

    def main_runs(self, seeded: Path, approaches: list[str]) -> None:
        plan = self.plan
        for name in approaches:
            with self.start(name, seeded, plan.dataset, plan.celebrity_threshold, name) as app:
                self.phase(app, name, "warmup", self.mixed(plan.warmup_seconds), keep=False)
                self.drain(app, name)
                for phase_name, bias, seed in (("fixed", 0.0, 2), ("celebrities", plan.celebrity_bias, 3)):
                    load = self.mixed(plan.fixed_seconds, author_bias=bias, seed=seed)
                    phase = self.phase_with_tweets(app, name, phase_name, load)
                    self.drain(app, name)
                    self.record_lags(app, phase, plan.celebrity_threshold)
                self.step_load(app, name)

    def mixed(self, seconds: float, author_bias: float = 0.0, seed: int = 1, rate: float = 0.0) -> Load:
        return Load(seconds, rate=rate or self.plan.fixed_rate, read_ratio=self.plan.read_ratio,
                    author_bias=author_bias, seed=seed)

    def phase_with_tweets(self, app: AppServer, name: str, phase_name: str, load: Load) -> Phase:
        with closing(sqlite3.connect(f"file:{app.database}?mode=ro", uri=True)) as db:
            (newest,) = db.execute(NEWEST_TWEET).fetchone()
        return self.phase(app, name, phase_name, load, first_tweet=newest)

    def step_load(self, app: AppServer, name: str) -> None:
        failed = 0
        for step, rate in enumerate(self.plan.steps):
            phase = self.phase(app, name, f"step-{rate:g}", self.mixed(self.plan.step_seconds, seed=10 + step,
                                                                       rate=rate))
            self.drain(app, name)
            failed = 0 if summary.within_slo(phase, self.plan.slo_ms) else failed + 1
            if failed == 2:
                self.say(f"{name}: two steps in a row over the SLO (read p99 {self.plan.slo_ms:g} ms, "
                         f"no errors, >= 95 % of the rate achieved): done")
                break

    def threshold_sweep(self, seeded: Path) -> None:
        plan = self.plan
        for threshold in plan.thresholds:
            if threshold == plan.celebrity_threshold:
                continue  # the main hybrid run measured it
            tag = f"hybrid-threshold-{threshold}"
            with self.start("hybrid", seeded, plan.dataset, threshold, tag) as app:
                self.phase(app, "hybrid", "warmup", self.mixed(max(2, plan.sweep_seconds / 4)), keep=False)
                self.drain(app, "hybrid")
                load = self.mixed(plan.sweep_seconds, author_bias=plan.celebrity_bias, seed=3)
                phase = self.phase_with_tweets(app, "hybrid", f"threshold-{threshold}", load)
                self.drain(app, "hybrid")
                self.record_lags(app, phase, threshold)

    def depth_sweep(self, cache_dir: Path) -> None:
        plan = self.plan
        for depth in plan.depths:
            dataset = plan.depth_scale(depth)
            seeded = seeded_database(dataset, plan.celebrity_threshold, cache_dir, self.say)
            for name in ("join", "fanout"):
                with self.start(name, seeded, dataset, plan.celebrity_threshold, f"{name}-depth") as app:
                    load = Load(plan.depth_seconds, clients=plan.depth_clients, read_ratio=READS_ONLY)
                    self.phase(app, name, f"depth-{depth:g}", load)


def mean_followers(database: Path) -> float:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return db.execute("SELECT avg(followers) FROM users").fetchone()[0]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=PLANS, default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="the run folder goes under it")
    parser.add_argument("--approaches", nargs="+", choices=designs.NAMES, default=list(designs.NAMES))
    parser.add_argument("--skip", nargs="*", default=[], choices=("steps", "thresholds", "depths"),
                        help="leave experiments out (a quicker look)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache",
                        help="seeded databases, reused while their parameters are unchanged")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A TERM unwinds like Ctrl-C, so the apps and redis-server are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = PLANS[args.scale]
    if "steps" in args.skip:
        plan = dataclasses.replace(plan, steps=())
    started, source = datetime.now(UTC), meta.source_version()
    folder = args.out / f"{started:%Y-%m-%dT%H%M%SZ}-{plan.scale}"
    for sub in ("samples", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # Each run's own scratch space: two benches on one machine must not share database copies.
    work = Path(tempfile.mkdtemp(prefix="work-", dir=args.cache_dir))
    cpus = Cpus.plan()
    try:
        return measure(args, plan, folder, work, cpus, started, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, plan: Plan, folder: Path, work: Path, cpus: Cpus, started: datetime, source: dict) -> int:
    with RedisServer(work, cpus=cpus.redis) as redis:
        bench = Bench(plan, folder, work, cpus, redis)
        bench.say(f"bench {plan.scale} -> {folder}; {cpus.describe()}")
        seeded = seeded_database(plan.dataset, plan.celebrity_threshold, args.cache_dir, bench.say)
        try:
            bench.main_runs(seeded, args.approaches)
            if "thresholds" not in args.skip and "hybrid" in args.approaches:
                bench.threshold_sweep(seeded)
            if "depths" not in args.skip:
                bench.depth_sweep(args.cache_dir)
        finally:
            meta.write(folder, plan, cpus, started, bench.phases, redis, source)
        summary.write(folder, plan, bench.phases, bench.lags, mean_followers(seeded))
    bench.say("charts")
    from bench import charts  # matplotlib only once there is something to draw
    charts.draw_all(folder)
    bench.say(f"done: {folder}")
    print(summary.table(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
