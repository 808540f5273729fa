"""`make bench` / `python -m bench [--scale S] [--out DIR] [--experiment E,...]`: the three
designs side by side, measured so that their differences are real.

For each design in turn: a fresh copy of the seeded SQLite file, an empty Redis (the bench's
own redis-server) loaded with that app's caches, `uvicorn approachN:app` with identical flags;
the app and its Redis share one CPU set, the load generator the other (Cpus.equal). With
--redis-nodes N (make bench REDIS_NODES=N) the fanout apps' caches are an N-node Redis
Cluster the bench starts and stops (REDIS_CLUSTER=1, REDIS_URL its first node), flushed on
every node between app runs, its CPU the sum of its nodes'. Then the
experiments, each a sequence of headless runs of the load suite (loadtest/), every figure
repeated (plan.repeats, plan.capacity_runs):

  latency    fixed-k, celebrities-k: open loop at the plan's rate, DDIA's mix and with the
             most-followed accounts tweeting; the server side's CPU and Redis's pushes counted
  cpu        tweets-k: tweets only, DDIA's authors, its CPU until the fanout has drained
  capacity   step-MIX-RUN-RATE: the highest rate held within the SLO, searched (bench/capacity.py)
  sweep      one author with 10^3..10^6 followers per design (bench/sweep.py)
  thresholds threshold-T: the hybrid with CELEBRITY_THRESHOLD=T (only when named at default)
  depths     depth-D: join and fanout on graphs D tweets deep, closed loop (idem)

Everything lands in one run folder: samples/ and logs/, meta.json (bench/report/meta.py), the tables
bench/report/summary.py lists, and charts/ (bench/report/charts.py redraws them from the folder alone).
"""

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench import capacity
from bench.phases import WORKER_START_S, Load, Phase, run_phase
from bench.plan import EVERY_EXPERIMENT, PLANS, Plan
from bench.report import meta, model, summary
from bench.seeding import load_caches, set_celebrities
from bench.stores import STORES, PostgresStore, SqliteStore, new_store, read_frame
from bench.sweep import Sweep, build_database, plan_graph
from rig.cpu import Meter
from rig.processes import ROOT, AppServer, Cpus, RedisServer
from rig.redis_cluster import RedisCluster, redis_for
from timelines import designs

FANOUT_LOG = """SELECT tweet_id, author_id, followers, accepted_at, done_at, deliveries
    FROM fanout_log WHERE accepted_at BETWEEN ? AND ? ORDER BY tweet_id"""
CELEBRITY_TWEETS = """SELECT t.id, t.user_id, u.followers FROM tweets t JOIN users u ON u.id = t.user_id
    WHERE t.id > ? AND u.followers >= ? ORDER BY t.id"""
NEWEST_TWEET = "SELECT coalesce(max(id), 0) FROM tweets"
READS_ONLY = 1e9  # --read-ratio: one tweet in a billion requests
DRAIN_SECONDS = 300
MIXES = {"ddia": 0.0}  # capacity mixes: author bias; "celebrities" takes the plan's
PHASE_OVERHEAD_S = 3  # Locust's start and stop around each phase, for the ETA
# With WORKERS, each phase also gives its workers WORKER_START_S and starts 3 processes, not 1:
# a 1 s phase at tiny took ~9 s of wall time with 2 workers against ~6 s without.
WORKERS_OVERHEAD_S = WORKER_START_S + 1


@dataclass
class Bench:
    plan: Plan
    folder: Path
    work: Path
    cpus: Cpus
    redis: RedisServer | RedisCluster  # the fanout apps' caches: one redis-server, or a cluster
    began: float = field(default_factory=time.monotonic)
    experiments: tuple[str, ...] = ()
    phases: list[Phase] = field(default_factory=list)
    lags: list[pd.DataFrame] = field(default_factory=list)
    searches: list[dict] = field(default_factory=list)
    sweep: tuple[pd.DataFrame, pd.DataFrame] | None = None
    planned_s: float = 0.0  # the ETA's estimate of the whole run, revised as parts finish
    meter: Meter | None = None
    store: SqliteStore | PostgresStore | None = None  # where the apps' state lives (bench/stores.py)
    workers: int = 0  # Locust worker processes under a master (WORKERS); 0: one local process

    def say(self, line: str) -> None:
        elapsed = time.monotonic() - self.began
        left = max(0.0, self.planned_s - elapsed)
        print(f"[{clock(elapsed)}, ~{clock(left)} left] {line}", flush=True)

    def estimate(self, approaches: list[str]) -> float:
        """Seconds the run should take: the ETA's starting point (revised by `revise`)."""
        plan, phase = self.plan, self.phase_overhead()
        per_design = plan.warmup_seconds + phase if plan.warmup_seconds else 0
        if "latency" in self.experiments:
            per_design += plan.repeats * 2 * (plan.fixed_seconds + phase)
        if "cpu" in self.experiments:
            per_design += plan.repeats * (plan.cpu_seconds + phase + 2)
        if "capacity" in self.experiments:
            per_design += len(MIXES) * 2 * (6 + 3 * (plan.capacity_runs - 1)) * (plan.step_seconds + phase)
        total = len(approaches) * per_design + plan.dataset.users / 1000 * len(approaches)
        if "sweep" in self.experiments:
            total += len(approaches) * (10 + sum(plan.sweep_followers) / 20_000)
        if "thresholds" in self.experiments:
            total += len(plan.thresholds) * (plan.sweep_seconds * 1.25 + 2 * phase + 5)
        if "depths" in self.experiments:
            total += len(plan.depths) * 2 * (plan.depth_seconds + phase + 5)
        return total

    def phase_overhead(self) -> float:
        return PHASE_OVERHEAD_S + (WORKERS_OVERHEAD_S if self.workers else 0)

    def revise(self, spent: float, estimated: float) -> None:
        """A part took `spent` s where `estimated` was planned: the ETA moves by the difference."""
        self.planned_s += spent - estimated

    # --- one app on fresh stores -------------------------------------------------------------

    @contextmanager
    def start(self, name: str, seeded: Path | str, dataset, threshold: int, tag: str) -> Iterator[AppServer]:
        """The app running on its own copy of the seeded state, which goes once the app has stopped."""
        design = designs.by_name(name)
        database = self.store.copy(seeded, tag)
        try:
            set_celebrities(database, threshold)
            # Our own server (every node of our own cluster): every app starts on an empty Redis.
            self.redis.flushall()
            if design.fans_out:
                self.say(f"{tag}: loading {name}'s caches into an empty {self.redis_name()}")
                load_caches(
                    self.redis.url(),
                    design.module,
                    dataset,
                    self.plan.timeline_length,
                    threshold,
                    cluster=self.on_cluster,
                )
            settings = {"timeline_length": self.plan.timeline_length, "celebrity_threshold": threshold}
            if self.on_cluster:
                settings["redis_cluster"] = 1
            # app.database is the store's location (a path or a URL), which the load test's
            # --database and the runner's own reads take as it is.
            app = AppServer(
                design.module,
                database,
                self.redis.url(),
                self.folder / "logs" / f"{tag}.log",
                cpus=self.cpus.app,
                settings={**settings, **self.store.settings(database)},
            )
            with app.start():
                yield app
        finally:
            self.store.discard(database)

    @property
    def on_cluster(self) -> bool:
        return isinstance(self.redis, RedisCluster)

    def redis_name(self) -> str:
        return f"{len(self.redis.servers)}-node Redis Cluster" if self.on_cluster else "Redis database"

    def phase(
        self,
        app: AppServer,
        name: str,
        phase_name: str,
        load: Load,
        keep: bool = True,
        first_tweet: int = 0,
        keep_samples: bool = True,
    ) -> Phase:
        folder = self.folder / "samples" if keep and keep_samples else self.work
        phase = Phase(
            name,
            phase_name,
            load,
            folder / f"{name}-{phase_name}.csv.gz",
            first_tweet=first_tweet,
            settings={"celebrity_threshold": int(app.settings["celebrity_threshold"])},
            workers=self.workers,
            redis_nodes=len(self.redis.servers) if self.on_cluster else 0,
        )
        what = f"{load.rate:g} req/s open loop" if load.rate else f"{load.clients} clients closed loop"
        self.say(f"{name} {phase_name}: {what}, {load.seconds:g} s")
        meter = Meter(app.process.pid, self.redis, self.store.pid())
        before = meter.read()
        run_phase(app, phase, app.database, self.cpus.load, self.folder / "logs" / "locust.log")
        # Until the fanout has drained: a phase's tweets are paid for after their 201s.
        self.drain(app, name)
        phase.usage = meter.read() - before
        if keep:
            self.phases.append(phase)
            self.say(f"{name} {phase_name}: {summary.phase_line(phase)}")
        self.check_users(phase)
        return phase

    def check_users(self, phase: Phase) -> None:
        """Locust ran out of users: fatal where the app was within the SLO, since then the
        generator, not the app, decided the step; beyond it the step missed on latency anyway."""
        if not phase.locust_warnings:
            return
        read = summary.figures(phase)["read"]
        if read["count"] and read["p99_ms"] <= self.plan.slo_ms:
            raise RuntimeError(
                f"{phase.approach} {phase.name}: Locust warned of too few users "
                f"({phase.load.users()}) with read p99 {read['p99_ms']:.1f} ms, within the "
                f"SLO: raise USER_SECONDS in bench/phases.py. {phase.locust_warnings[0]}"
            )
        self.say(
            f"{phase.approach} {phase.name}: Locust ran short of users, read p99 "
            f"{read['p99_ms']:.0f} ms, far past the SLO: a miss either way"
        )

    def drain(self, app: AppServer, name: str) -> None:
        if app.stats().get("fanout_backlog", 0):
            self.say(f"{name}: waiting for the fanout backlog to drain")
            app.wait_for_fanout(DRAIN_SECONDS)

    def record_lags(self, app: AppServer, phase: Phase, threshold: int) -> None:
        """Every tweet of the phase with how long its fanout took; the hybrid's pulled
        celebrity tweets too, which are in every timeline from the moment they commit."""
        sql = self.store.sql
        with self.store.reading(app.database) as db:
            fanned = read_frame(db, sql(FANOUT_LOG), (phase.began, phase.ended))
            pulled = read_frame(db, sql(CELEBRITY_TWEETS), (phase.first_tweet, threshold))
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

    def designs(self, seeded: Path, approaches: list[str]) -> None:
        plan = self.plan
        for name in approaches:
            with self.start(name, seeded, plan.dataset, plan.celebrity_threshold, name) as app:
                if plan.warmup_seconds:
                    self.phase(app, name, "warmup", self.mixed(plan.warmup_seconds), keep=False)
                    self.drain(app, name)
                if "latency" in self.experiments:
                    self.timed(self.latency, app, name, plan.repeats * 2 * (plan.fixed_seconds + 3))
                if "cpu" in self.experiments:
                    self.timed(self.tweet_cpu, app, name, plan.repeats * (plan.cpu_seconds + 5))
                if "capacity" in self.experiments:
                    self.capacity(app, name)

    def timed(self, part, app: AppServer, name: str, estimated: float) -> None:
        began = time.monotonic()
        part(app, name)
        self.revise(time.monotonic() - began, estimated)

    def latency(self, app: AppServer, name: str) -> None:
        """Every repeat is its own phase with its own seed; the first keeps the old names
        (fixed, celebrities), which the notebook reads."""
        plan = self.plan
        for repeat in range(1, plan.repeats + 1):
            for mix, bias in (("fixed", 0.0), ("celebrities", plan.celebrity_bias)):
                phase_name = mix if repeat == 1 else f"{mix}-{repeat}"
                load = self.mixed(plan.fixed_seconds, author_bias=bias, seed=100 * repeat + len(mix))
                phase = self.phase_with_tweets(app, name, phase_name, load)
                self.drain(app, name)
                self.record_lags(app, phase, plan.celebrity_threshold)

    def tweet_cpu(self, app: AppServer, name: str) -> None:
        """Tweets only, DDIA's authors: CPU per tweet including its fanout, read until the
        outbox is empty (the fanout runs after the 201)."""
        plan = self.plan
        for repeat in range(1, plan.repeats + 1):
            load = Load(plan.cpu_seconds, rate=plan.tweet_rate, read_ratio=0, seed=200 + repeat)
            self.phase(app, name, f"tweets-{repeat}", load, keep_samples=False)

    def capacity(self, app: AppServer, name: str) -> None:
        plan = self.plan
        start = plan.capacity_start
        for mix, bias in (("ddia", 0.0), ("celebrities", plan.celebrity_bias)):
            found = []
            for run in range(1, plan.capacity_runs + 1):
                began = time.monotonic()
                steps_before = len(self.phases)

                def try_rate(rate: float, mix=mix, bias=bias, run=run) -> bool:
                    seed = 1000 * run + round(rate) % 997
                    # Locust's own clock starts ~0.3 s into its run: one more second keeps the
                    # measured step at step_seconds or more.
                    load = self.mixed(plan.step_seconds + 1, author_bias=bias, seed=seed, rate=round(rate))
                    phase = self.phase(app, name, f"step-{mix}-{run}-{round(rate)}", load, keep_samples=False)
                    self.drain(app, name)
                    return summary.within_slo(phase, plan.slo_ms)

                if run == 1:
                    # From the DDIA mix's answer the guess is close: bracket in smaller strides.
                    factor = plan.capacity_factor if mix == "ddia" else math.sqrt(plan.capacity_factor)
                    search = capacity.first_search(try_rate, start, factor, plan.capacity_tolerance)
                else:
                    # A repeat widens in strides of tolerance^2: one bisection away from converged.
                    search = capacity.repeat_search(
                        try_rate, found[0], plan.capacity_tolerance**2, plan.capacity_tolerance
                    )
                found.append(search.held or start / plan.capacity_factor)
                self.searches.append(
                    {
                        "approach": name,
                        "mix": mix,
                        "run": run,
                        "held_rate": search.held,
                        "missed_rate": search.missed,
                        "steps": len(search.steps),
                        "phases": [p.name for p in self.phases[steps_before:]],
                    }
                )
                self.say(
                    f"{name} capacity {mix} run {run}: held {search.held:,.0f} req/s, missed "
                    f"{search.missed:,.0f} ({len(search.steps)} steps)"
                )
                estimated = (6 if run == 1 else 3) * (plan.step_seconds + self.phase_overhead())
                self.revise(time.monotonic() - began, estimated)
            start = found[0] or start  # the celebrities mix starts from the DDIA mix's answer

    def celebrity_sweep(self, approaches: list[str]) -> None:
        plan = self.plan
        graph = plan_graph(plan.sweep_followers)
        began = time.monotonic()
        self.say(f"sweep: building {graph.top:,} followers in SQLite, for the {self.store.name} store")
        seeded = self.store.adopt(build_database(self.work / "sweep-seed.db", graph), "sweep-seed")
        sweep = Sweep(
            graph,
            self.store,
            seeded,
            self.folder / "logs",
            self.redis,
            self.cpus,
            plan.celebrity_threshold,
            plan.timeline_length,
            plan.sweep_reps,
            plan.sweep_reads,
            self.say,
        )
        self.sweep = sweep.run(approaches)
        self.redis.flushall()
        self.revise(time.monotonic() - began, len(approaches) * (10 + sum(plan.sweep_followers) / 20_000))

    def mixed(self, seconds: float, author_bias: float = 0.0, seed: int = 1, rate: float = 0.0) -> Load:
        return Load(
            seconds,
            rate=rate or self.plan.fixed_rate,
            read_ratio=self.plan.read_ratio,
            author_bias=author_bias,
            seed=seed,
        )

    def phase_with_tweets(self, app: AppServer, name: str, phase_name: str, load: Load) -> Phase:
        with self.store.reading(app.database) as db:
            (newest,) = db.execute(self.store.sql(NEWEST_TWEET)).fetchone()
        return self.phase(app, name, phase_name, load, first_tweet=newest)

    def threshold_sweep(self, seeded: Path | str) -> None:
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

    def depth_sweep(self) -> None:
        plan = self.plan
        for depth in plan.depths:
            dataset = plan.depth_scale(depth)
            seeded = self.store.seed(dataset, plan.celebrity_threshold)
            for name in designs.NAMES:  # the hybrid too: it is fanout where no one crosses its threshold
                with self.start(name, seeded, dataset, plan.celebrity_threshold, f"{name}-depth") as app:
                    load = Load(plan.depth_seconds, clients=plan.depth_clients, read_ratio=READS_ONLY)
                    self.phase(app, name, f"depth-{depth:g}", load)


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:2d}:{seconds % 60:02d}"


def experiments(text: str, plan: Plan) -> tuple[str, ...]:
    """EXPERIMENT: "all" (the plan's own list) or names separated by commas."""
    if text in ("", "all"):
        return plan.experiments
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(EVERY_EXPERIMENT))
    if unknown:
        raise SystemExit(
            f"unknown experiment(s) {', '.join(unknown)}: choose from {', '.join(EVERY_EXPERIMENT)}"
        )
    return names


def dataset_facts(store: SqliteStore | PostgresStore, database: Path | str, threshold: int) -> dict:
    """What the capacity model needs to carry this graph's costs to another: how many
    celebrities an average user follows here (each one a pull on the hybrid's reads)."""
    with store.reading(database) as db:
        users, followers = db.execute(store.sql("SELECT count(*), avg(followers) FROM users")).fetchone()
        (edges,) = db.execute(
            store.sql(
                """SELECT count(*) FROM follows WHERE followee_id IN
                                 (SELECT id FROM users WHERE followers >= ?)"""
            ),
            (threshold,),
        ).fetchone()
    return {
        "users": users,
        # PostgreSQL's avg is a numeric (a Decimal), which meta.json could not hold.
        "mean_followers": followers if followers is None else float(followers),
        "celebrity_threshold": threshold,
        "celebrities_followed_per_user": edges / users if users else 0.0,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=PLANS, default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="the run folder goes under it")
    parser.add_argument("--approaches", nargs="+", choices=designs.NAMES, default=list(designs.NAMES))
    parser.add_argument(
        "--experiment",
        default=os.environ.get("EXPERIMENT", "all"),
        help=f"all (the scale's list), or some of {','.join(EVERY_EXPERIMENT)}, "
        "comma-separated (default: $EXPERIMENT, else all)",
    )
    parser.add_argument(
        "--store",
        choices=STORES,
        default="sqlite",
        help="the apps' database: SQLite files, or a private PostgreSQL server",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS") or 0),
        metavar="N",
        help="load from a Locust master and N worker processes (its --processes N), all on the "
        "load generator's CPUs; 0: one local Locust process (default: $WORKERS, else 0)",
    )
    parser.add_argument(
        "--redis-nodes",
        type=int,
        default=0,
        metavar="N",
        help="the fanout apps' caches on an N-node Redis Cluster the bench starts and stops "
        "(REDIS_CLUSTER=1); 0: one redis-server (default)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=ROOT / ".bench-cache",
        help="seeded databases, reused while their parameters are unchanged",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.workers < 0:
        raise SystemExit(f"--workers {args.workers}: give 0 (one local process) or more")
    if args.redis_nodes < 0:
        raise SystemExit(f"--redis-nodes {args.redis_nodes}: give 0 (one redis-server) or more")
    # A TERM unwinds like Ctrl-C, so the apps and redis-server are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = PLANS[args.scale]
    started, source = datetime.now(UTC), meta.source_version()
    folder = args.out / f"{started:%Y-%m-%dT%H%M%SZ}-{plan.scale}"
    for sub in ("samples", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # Each run's own scratch space: two benches on one machine must not share database copies.
    work = Path(tempfile.mkdtemp(prefix="work-", dir=args.cache_dir))
    cpus = Cpus.equal()
    try:
        return measure(args, plan, folder, work, cpus, started, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, plan: Plan, folder: Path, work: Path, cpus: Cpus, started: datetime, source: dict) -> int:
    chosen = experiments(args.experiment, plan)
    # PostgreSQL on the server side's CPUs, beside the app and its Redis: the store it serves.
    store = new_store(args.store, work, args.cache_dir, cpus.app)
    with redis_for(args.redis_nodes, work, cpus) as redis, store:
        bench = Bench(plan, folder, work, cpus, redis, experiments=chosen, store=store, workers=args.workers)
        store.say = bench.say
        bench.planned_s = bench.estimate(args.approaches)
        on = "" if store.name == "sqlite" else f"; {store.name} {store.describe()['server_version']}"
        if args.redis_nodes:
            on += f"; caches on {redis.describe()}"
        bench.say(f"bench {plan.scale} ({', '.join(chosen)}) -> {folder}; {cpus.describe()}{on}")
        seeded = store.seed(plan.dataset, plan.celebrity_threshold)
        try:
            if {"latency", "cpu", "capacity"} & set(chosen):
                bench.designs(seeded, args.approaches)
            if "sweep" in chosen:
                bench.celebrity_sweep(args.approaches)
            if "thresholds" in chosen and "hybrid" in args.approaches:
                bench.threshold_sweep(seeded)
            if "depths" in chosen:
                bench.depth_sweep()
        finally:
            facts = dataset_facts(store, seeded, plan.celebrity_threshold)
            meta.write(
                folder,
                plan,
                cpus,
                started,
                bench.phases,
                redis,
                source,
                chosen,
                facts,
                workers=args.workers,
                store=store.name,
                postgres=store.describe(),
                redis_nodes=args.redis_nodes,
            )
        summary.write(folder, plan, bench, facts)
    model.write(folder)
    bench.say("charts")
    from bench.report import charts  # matplotlib only once there is something to draw

    charts.draw_all(folder)
    bench.say(f"done: {folder}")
    print(summary.table(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
