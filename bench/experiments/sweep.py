"""sweep: the celebrity sweep: one author per follower count N (10^3 ... 10^6 at `default`), each
design in turn on the same synthetic graph, its app started as the bench starts it (bench/session.py).

Graph (built once per run into SQLite, adopted by the run's store, copied per design): users
1..max(N) follow; author N is followed by users 1..N-1 and by reader N, who follows the
smallest author too; the base reader follows the smallest author only. Every author has
HISTORY tweets. For a fanout design every follower's cached timeline exists (a short one,
copied from one prototype in Redis, as bench/experiments/fanout.py builds them), so each push really
lands; the readers' timelines are left to be built by their first read, as the app builds
them (for the hybrid: naming the celebrities they pull).

Per design and N, sweep_reps tweets by author N over HTTP (after one warm-up tweet), each:
  post_ms          POST /tweets as the client saw it (the commit; the fanout runs after the 201)
  lag_ms           fanout_log's done_at - accepted_at: until the last follower's cached timeline
                   holds it (checked: follower N-1's list starts with it); empty where nothing
                   is fanned out (join; the hybrid's celebrities, read from their own list)
  timeline_writes  Redis's own count of list pushes during the tweet (INFO commandstats)
  app_cpu_ms, redis_cpu_ms  CPU of the app's process tree and of redis-server over the tweet,
                   from the POST to the end of its fanout (and postgres_cpu_ms, the server's,
                   with STORE=postgres)
And for the hybrid, per N: sweep_reads reads of reader N's timeline (one celebrity pulled where
N >= CELEBRITY_THRESHOLD) and of the base reader's (none pulled), each read's latency and CPU.
"""

import asyncio
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from bench.experiments.fanout import populate
from bench.session import Session, Stack
from rig.cpu import Meter
from rig.processes import ROOT, wait_until
from timelines.cache import ONE_REDIS, Keys, TimelineCache, connect, encode_timeline

HISTORY = 20  # tweets per author before the sweep
PROTOTYPE_IDS = 10  # ids in each follower's cached timeline (below every real tweet's id)
BATCH = 100_000
CREATED = "2026-01-01T00:00:00Z"
BACKLOG = "SELECT count(*) FROM fanout_outbox"
LOGGED = "SELECT accepted_at, done_at FROM fanout_log WHERE tweet_id = ?"
PER_DESIGN = False
START_S = 10  # a design's app started, and its followers' timelines cached
FOLLOWERS_PER_S = 20_000  # followers built into SQLite and pushed to, per second


@dataclass(frozen=True)
class Graph:
    followers: tuple[int, ...]  # the sweep's sizes, ascending
    authors: dict[int, int]  # N -> the author followed by N users
    readers: dict[int, int]  # N -> the reader who follows author N (and the smallest author)
    base_reader: int  # follows the smallest author only

    @property
    def top(self) -> int:
        return max(self.followers)


def plan_graph(followers: tuple[int, ...]) -> Graph:
    sizes = tuple(sorted(followers))
    top = max(sizes)
    authors = {n: top + 1 + i for i, n in enumerate(sizes)}
    readers = {n: top + 1 + len(sizes) + i for i, n in enumerate(sizes)}
    return Graph(sizes, authors, readers, top + 1 + 2 * len(sizes))


def follows(graph: Graph):
    smallest = graph.authors[graph.followers[0]]
    for n, author in graph.authors.items():
        for follower in range(1, n):
            yield follower, author
        yield graph.readers[n], author
        if author != smallest:
            yield graph.readers[n], smallest
    yield graph.base_reader, smallest


def build_database(path: Path, graph: Graph) -> Path:
    """The sweep's SQLite file, written straight (no app): seconds at a million follows."""
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.executescript((ROOT / "schema.sql").read_text())
        users = range(1, graph.base_reader + 1)
        db.executemany(
            "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)",
            ((u, f"u{u}", CREATED) for u in users),
        )
        pairs = follows(graph)
        while batch := [pair for _, pair in zip(range(BATCH), pairs, strict=False)]:
            db.executemany("INSERT INTO follows (follower_id, followee_id) VALUES (?, ?)", batch)
        db.executemany(
            "INSERT INTO tweets (user_id, text, created_at) VALUES (?, ?, ?)",
            ((a, f"history {i}", CREATED) for i in range(HISTORY) for a in graph.authors.values()),
        )
        db.execute(
            """UPDATE users SET followers = (SELECT count(*) FROM follows WHERE followee_id = users.id),
                      following = (SELECT count(*) FROM follows WHERE follower_id = users.id),
                      tweets = (SELECT count(*) FROM tweets WHERE user_id = users.id)
                      WHERE id > ?""",
            (graph.top,),
        )
        db.execute(
            "UPDATE users SET following = (SELECT count(*) FROM follows WHERE follower_id = users.id) "
            "WHERE id <= ?",
            (graph.top,),
        )
        db.commit()
    return path


async def populate_timelines(redis_url: str, cluster: bool, users: int, length: int) -> None:
    """Users 1..users get a short cached timeline each (ids 1..PROTOTYPE_IDS, complete)."""
    client = connect(redis_url, cluster)
    try:
        prototype = encode_timeline(list(range(PROTOTYPE_IDS, 0, -1)), length)
        await populate(TimelineCache(client, length), users, [prototype])
    finally:
        await client.aclose()


def estimate(session: Session, approaches: list[str]) -> float:
    return len(approaches) * (START_S + sum(session.plan.sweep_followers) / FOLLOWERS_PER_S)


def run(session: Session, seeded: Path | str, approaches: list[str]) -> None:
    """On a graph of its own (the run's seeded one is not used): session.sweep's two tables."""
    plan, stack = session.plan, session.stack
    graph = plan_graph(plan.sweep_followers)
    session.say(f"sweep: building {graph.top:,} followers in SQLite, for the {stack.store.name} store")
    built = stack.store.adopt(build_database(session.work / "sweep-seed.db", graph), "sweep-seed")
    sweep = Sweep(
        graph, stack, built, plan.celebrity_threshold, plan.sweep_reps, plan.sweep_reads, session.say
    )
    session.sweep = sweep.run(approaches)
    stack.redis.flushall()


@dataclass
class Sweep:
    graph: Graph
    stack: Stack
    seeded: Path | str  # the store's location of build_database's file (store.adopt)
    threshold: int
    reps: int
    read_count: int
    say: object

    def run(self, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        tweets, reads = [], []
        for name in names:
            measured = self.rows_of(name)
            tweets += measured[0]
            reads += measured[1]
        return pd.DataFrame(tweets), pd.DataFrame(reads)

    def cache_followers(self, name: str) -> None:
        """Every follower's cached timeline, so that each push of the sweep really lands."""
        self.say(f"sweep {name}: {self.graph.top:,} cached follower timelines")
        stack = self.stack
        asyncio.run(
            populate_timelines(stack.redis.url(), stack.on_cluster, self.graph.top, stack.timeline_length)
        )

    def rows_of(self, name: str) -> tuple[list[dict], list[dict]]:
        """One design on its own copy of the graph: its tweets' rows, and (hybrid) its reads'."""
        stack, store = self.stack, self.stack.store
        tweets, reads = [], []
        with (
            stack.app(
                name, self.seeded, self.threshold, f"sweep-{name}", lambda: self.cache_followers(name)
            ) as app,
            httpx.Client(base_url=app.url, timeout=120) as http,
            store.reading(app.database) as db,
        ):
            meter = Meter(app.process.pid, stack.redis, store.pid())
            wait_until(lambda: self.drained(db), 120, f"{name}'s start-up backlog", 0.05)
            for n in self.graph.followers:
                tweets += self.tweets(name, n, http, db, meter)
            if name == "hybrid":
                reads += self.reads(name, http, meter)
        return tweets, reads

    def tweets(self, name: str, n: int, http: httpx.Client, db, meter: Meter) -> list[dict]:
        author = self.graph.authors[n]
        self.one_tweet(http, db, author, meter)  # warm-up: scripts loaded, pages cached
        rows = []
        for rep in range(self.reps):
            tweet_id, post_ms, lag_ms, usage = self.one_tweet(http, db, author, meter)
            if lag_ms is not None:
                self.check_delivered(n, tweet_id)
            rows.append(
                {
                    "approach": name,
                    "followers": n,
                    "rep": rep + 1,
                    "post_ms": post_ms,
                    "lag_ms": lag_ms,
                    "fanned_out": lag_ms is not None,
                    "timeline_writes": usage.timeline_writes,
                    "app_cpu_ms": usage.app_s * 1000,
                    "redis_cpu_ms": usage.redis_s * 1000,
                    **server_cpu(usage, "postgres_cpu_ms", 1000),
                }
            )
        lags = [r["lag_ms"] for r in rows if r["lag_ms"] is not None]
        self.say(
            f"sweep {name} {n:>9,} followers: POST p50 {np.median([r['post_ms'] for r in rows]):.1f} ms, "
            + (f"fanout lag p50 {np.median(lags):,.0f} ms" if lags else "nothing fanned out")
        )
        return rows

    def check_delivered(self, n: int, tweet_id: int) -> None:
        """The last follower's list starts with the tweet: Redis's word, not the log's."""
        last = max(1, n - 1)
        keys = Keys.sharded() if self.stack.on_cluster else ONE_REDIS
        with self.stack.redis.client() as client:
            head = client.lindex(keys.timeline(last), 0)
        if head is None or int(head) != tweet_id:
            raise RuntimeError(
                f"sweep: follower {last}'s cached timeline starts with {head!r}, not tweet {tweet_id}"
            )

    def reads(self, name: str, http: httpx.Client, meter: Meter) -> list[dict]:
        rows = []
        readers = [(0, self.graph.base_reader)] + [(n, self.graph.readers[n]) for n in self.graph.followers]
        for n, reader in readers:
            http.get(f"/timeline/{reader}").raise_for_status()  # builds its cached timeline
            latencies = []
            before = meter.read()
            for _ in range(self.read_count):
                began = time.perf_counter()
                http.get(f"/timeline/{reader}").raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)
            usage = meter.read() - before
            pulled = n >= self.threshold
            rows.append(
                {
                    "approach": name,
                    "followers": n,
                    "celebrities_pulled": int(pulled),
                    "reads": self.read_count,
                    "read_p50_ms": float(np.median(latencies)),
                    "read_p99_ms": float(np.percentile(latencies, 99)),
                    "app_cpu_us_per_read": usage.app_s / self.read_count * 1e6,
                    "redis_cpu_us_per_read": usage.redis_s / self.read_count * 1e6,
                    **server_cpu(usage, "postgres_cpu_us_per_read", 1e6 / self.read_count),
                }
            )
        self.say(
            f"sweep {name} reads: "
            + ", ".join(f"{r['followers']:,}: {r['read_p50_ms']:.2f} ms" for r in rows)
        )
        return rows

    def drained(self, db) -> bool:
        return db.execute(self.stack.store.sql(BACKLOG)).fetchone()[0] == 0

    def one_tweet(self, http: httpx.Client, db, author: int, meter: Meter):
        """(tweet id, POST ms, fanout lag ms or None, the server side's usage until it is
        delivered)."""
        before = meter.read()
        began = time.perf_counter()
        response = http.post("/tweets", json={"user_id": author, "text": "sweep"})
        post_ms = (time.perf_counter() - began) * 1000
        response.raise_for_status()
        tweet_id = response.json()["id"]
        wait_until(lambda: self.drained(db), 600, f"tweet {tweet_id}'s fanout", 0.002)
        usage = meter.read() - before
        logged = db.execute(self.stack.store.sql(LOGGED), (tweet_id,)).fetchone()
        lag_ms = (logged[1] - logged[0]) * 1000 if logged else None
        return tweet_id, post_ms, lag_ms, usage


def server_cpu(usage, column: str, scale: float) -> dict:
    """The database server's CPU as `column`, where the store has a server (PostgreSQL)."""
    return {} if usage.postgres_s is None else {column: usage.postgres_s * scale}
