"""What every experiment of a bench run stands on: an app started on fresh stores (Stack.app),
a phase of load against it, the fanout drained after it (Session). The make-bench experiments
(bench/experiments/) are sequences of these; cache_memory starts its apps the same way.

A Session is one run's state: its plan and folders, the Stack, the phases measured so far (and
the fanout lags, capacity searches, sweep tables), which bench/report/summary.py tabulates.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench.delivery import STEP_TWEETS, delivery_of
from bench.output import Progress
from bench.phases import WORKER_START_S, Load, Phase, run_phase
from bench.plan import Plan
from bench.report import summary
from bench.seeding import load_caches, set_celebrities
from bench.stores import PostgresStore, SqliteStore, read_frame
from datagen.scales import Scale
from rig.cpu import Meter
from rig.processes import AppServer, Cpus, RedisServer
from rig.redis_cluster import RedisCluster
from timelines import designs

FANOUT_LOG = """SELECT tweet_id, author_id, followers, accepted_at, done_at, deliveries
    FROM fanout_log WHERE accepted_at BETWEEN ? AND ? ORDER BY tweet_id"""
CELEBRITY_TWEETS = """SELECT t.id, t.user_id, u.followers FROM tweets t JOIN users u ON u.id = t.user_id
    WHERE t.id > ? AND u.followers >= ? ORDER BY t.id"""
NEWEST_TWEET = "SELECT coalesce(max(id), 0) FROM tweets"
DRAIN_SECONDS = 300
PHASE_OVERHEAD_S = 3  # Locust's start and stop around each phase, for the ETA
# With WORKERS, each phase also gives its workers WORKER_START_S and starts 3 processes, not 1:
# a 1 s phase at tiny took ~9 s of wall time with 2 workers against ~6 s without.
WORKERS_OVERHEAD_S = WORKER_START_S + 1


def drain(app: AppServer, say: Callable[[str], None], seconds: float = DRAIN_SECONDS) -> None:
    """Until the app's outbox is empty: a phase's tweets are paid for after their 201s."""
    if app.stats().get("fanout_backlog", 0):
        say(f"{app.module}: waiting for the fanout backlog to drain")
        app.wait_for_fanout(seconds)


@dataclass
class Stack:
    """What an app runs on: the store holding its state, the Redis of its caches (one
    redis-server, or a cluster), the CPUs, and where its log goes."""

    store: SqliteStore | PostgresStore
    redis: RedisServer | RedisCluster
    cpus: Cpus
    logs: Path
    timeline_length: int

    @property
    def on_cluster(self) -> bool:
        return isinstance(self.redis, RedisCluster)

    def redis_name(self) -> str:
        return f"{len(self.redis.servers)}-node Redis Cluster" if self.on_cluster else "Redis database"

    @contextmanager
    def app(
        self, name: str, seeded: Path | str, threshold: int, tag: str, fill: Callable[[], None] | None = None
    ) -> Iterator[AppServer]:
        """The design's app running on its own copy of the seeded state and an empty Redis,
        `fill`ed first where the design keeps caches; the copy goes once the app has stopped."""
        design = designs.by_name(name)
        database = self.store.copy(seeded, tag)
        try:
            set_celebrities(database, threshold)
            self.redis.flushall()  # every node of a cluster: every app starts on an empty Redis
            if design.fans_out and fill:
                fill()
            settings = {"timeline_length": self.timeline_length, "celebrity_threshold": threshold}
            if self.on_cluster:
                settings["redis_cluster"] = 1
            # app.database is the store's location (a path or a URL), which the load test's
            # --database and the runner's own reads take as it is.
            app = AppServer(
                design.module,
                database,
                self.redis.url(),
                self.logs / f"{tag}.log",
                cpus=self.cpus.app,
                settings={**settings, **self.store.settings(database)},
            )
            with app.start():
                yield app
        finally:
            self.store.discard(database)


@dataclass
class Session:
    plan: Plan
    folder: Path
    work: Path
    stack: Stack
    workers: int = 0  # Locust worker processes under a master (WORKERS); 0: one local process
    progress: Progress = field(default_factory=Progress)
    phases: list[Phase] = field(default_factory=list)
    lags: list[pd.DataFrame] = field(default_factory=list)
    searches: list[dict] = field(default_factory=list)
    sweep: tuple[pd.DataFrame, pd.DataFrame] | None = None
    order: list[dict] = field(default_factory=list)  # what ran when, for meta.json

    def ran(self, experiment: str, approach: str, mix: str | None = None, run: int = 1, **more) -> None:
        """Notes that a measurement starts now: the run's order, as meta.json lists it."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        what = {"experiment": experiment, "approach": approach, "mix": mix, "run": run, **more}
        self.order.append({**what, "started_at": started})

    def say(self, line: str) -> None:
        self.progress.say(line)

    def phase_overhead(self) -> float:
        """Seconds a phase takes beyond its own length: every estimate adds it per phase."""
        return PHASE_OVERHEAD_S + (WORKERS_OVERHEAD_S if self.workers else 0)

    @contextmanager
    def start(
        self, name: str, seeded: Path | str, dataset: Scale, threshold: int, tag: str
    ) -> Iterator[AppServer]:
        """The app on fresh stores, its caches loaded the way a user loads them (datagen)."""
        stack = self.stack

        def fill() -> None:
            self.say(f"{tag}: loading {name}'s caches into an empty {stack.redis_name()}")
            module = designs.by_name(name).module
            load_caches(
                stack.redis.url(),
                module,
                dataset,
                self.plan.timeline_length,
                threshold,
                cluster=stack.on_cluster,
            )

        with stack.app(name, seeded, threshold, tag, fill) as app:
            yield app

    def mixed(self, seconds: float, author_bias: float = 0.0, seed: int = 1, rate: float = 0.0) -> Load:
        """Reads and tweets in the plan's ratio, open loop at the plan's rate unless given one."""
        return Load(
            seconds,
            rate=rate or self.plan.fixed_rate,
            read_ratio=self.plan.read_ratio,
            author_bias=author_bias,
            seed=seed,
        )

    def phase(
        self,
        app: AppServer,
        name: str,
        phase_name: str,
        load: Load,
        keep: bool = True,
        keep_samples: bool = True,
    ) -> Phase:
        """One run of the load suite against `app`, the fanout drained after it and its own
        tweets' delivery read (those above the newest before it, which record_lags finds too);
        kept (in phases.csv and the summary) unless it is a warm-up."""
        stack = self.stack
        with stack.store.reading(app.database) as db:
            (first_tweet,) = db.execute(stack.store.sql(NEWEST_TWEET)).fetchone()
        folder = self.folder / "samples" if keep and keep_samples else self.work
        phase = Phase(
            name,
            phase_name,
            load,
            folder / f"{name}-{phase_name}.csv.gz",
            first_tweet=first_tweet,
            settings={"celebrity_threshold": int(app.settings["celebrity_threshold"])},
            workers=self.workers,
            redis_nodes=len(stack.redis.servers) if stack.on_cluster else 0,
        )
        what = f"{load.rate:g} req/s open loop" if load.rate else f"{load.clients} clients closed loop"
        self.say(f"{name} {phase_name}: {what}, {load.seconds:g} s")
        meter = Meter(app.process.pid, stack.redis, stack.store.pid())
        before = meter.read()
        run_phase(app, phase, app.database, stack.cpus.load, self.folder / "logs" / "locust.log")
        drain(app, self.say)
        phase.usage = meter.read() - before
        with stack.store.reading(app.database) as db:
            tweets = read_frame(db, stack.store.sql(STEP_TWEETS), (phase.first_tweet,))
        phase.delivery = delivery_of(tweets, phase.ended)
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

    def record_lags(self, app: AppServer, phase: Phase, threshold: int) -> None:
        """Every tweet of the phase with how long its fanout took; the hybrid's pulled
        celebrity tweets too, which are in every timeline from the moment they commit."""
        store = self.stack.store
        with store.reading(app.database) as db:
            fanned = read_frame(db, store.sql(FANOUT_LOG), (phase.began, phase.ended))
            pulled = read_frame(db, store.sql(CELEBRITY_TWEETS), (phase.first_tweet, threshold))
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
