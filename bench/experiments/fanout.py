"""Fanout through the app's own worker, on full cached timelines: follower-timeline writes/s,
and how long one tweet takes to reach its last follower.

    .venv/bin/python -m bench fanout [--followers 1000,10000,100000] [--reps 3]
                                     [--length 800] [--chunk FANOUT_CHUNK] [--json PATH]
                                     [--redis-nodes N]

    --followers 1000000 gives the 1M figure: ~5 GB of Redis and a minute of set-up.
    --redis-nodes N runs on an N-node Redis Cluster (REDIS_CLUSTER=1) that the bench starts:
    the worker groups followers by shard, a call per shard's chunk, two in flight per node.

For each follower count N, an author followed by users 1..N tweets --reps times. Each tweet
is committed as POST /tweets commits it (the tweet and its outbox row in one transaction);
the app's FanoutWorker, running as the app runs it, claims the row, pushes the id into the N
cached timelines and logs the fanout's accepted_at and done_at. Per N it prints the median:
  seconds      done_at - accepted_at: from the commit until the last follower's cached
               timeline holds the tweet (checked: the last follower's timeline reads it back);
  writes/s     follower-timeline writes (the worker's own count) / those seconds;
  Redis us/w   INFO cpu (used_cpu_user + used_cpu_sys) delta / follower-writes;
  worker us/w  this process's CPU time (os.times: the worker and its SQLite threads) delta /
               follower-writes: with Redis's, what each side could do with a core to itself;
  longest call the longest command in Redis's SLOWLOG over the reps (threshold --slowlog-us:
               Redis also logs each command a script runs, and logging them all would slow
               what is measured; "<100" means no call reached it).

Every follower's timeline is cached and full: built the way a loader builds it
(timelines.cache.encode_timeline, RPUSHed), holding between the cache's `keep` and
TIMELINE_LENGTH ids (a push past the length cuts back to keep), spread evenly, so pushes
trim as often as in the app's steady state. Target (the issue): DDIA's 4.6k tweets/s x 75 followers = 345,000
writes/s, no single Redis call over 5 ms. The bench starts its own redis-server (never the
one on 6379) and SQLite file in a temp dir, and stops the server on exit, error or Ctrl-C.
With --redis-nodes, Redis's CPU and longest call are summed and taken over every node.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis.asyncio as redis

from approach2 import OWE_FANOUT
from bench.output import Progress
from rig.processes import Cpus, RedisServer
from rig.redis_cluster import RedisCluster, redis_for, servers_of
from timelines.cache import Keys, Page, TimelineCache, connect, encode_timeline
from timelines.db import Database, open_database
from timelines.fanout import FanoutWorker, JobKind
from timelines.http import now_iso
from timelines.settings import Settings
from timelines.users import insert_tweet

TARGET_WRITES_PER_S = 345_000  # DDIA: 4.6k tweets/s x 75 followers, Twitter 2012
CALL_BOUND_US = 5_000
ID_STEP = 10_000  # between a prototype's ids: 7-digit ids, as in a deployment of some size
SETUP_KEYS_PER_CALL = 1000  # timelines copied per script call: keeps each well under 0.1 s
BENCH_COMMANDS = (b"SLOWLOG", b"INFO", b"CONFIG")
POLL_SECONDS = 0.002

# KEYS: ARGV[1] prototype timelines, then the timelines to build. ARGV[2]: the position of
# the first of those in the whole run, so that the prototypes are spread evenly.
POPULATE = """
local protos, phase = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = protos + 1, #KEYS do
    redis.call('COPY', KEYS[(phase + i) % protos + 1], KEYS[i], 'REPLACE')
end
return #KEYS - protos
"""

INSERT_USER = "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)"
INSERT_FOLLOW = "INSERT INTO follows (follower_id, followee_id) VALUES (?, ?)"
COUNT_FOLLOWS = """
    UPDATE users SET
        followers = (SELECT count(*) FROM follows WHERE followee_id = users.id),
        following = (SELECT count(*) FROM follows WHERE follower_id = users.id)"""
SEED_TWEET = "INSERT INTO tweets (id, user_id, text, created_at) VALUES (?, ?, ?, ?)"
FANOUT_LOGGED = "SELECT followers, accepted_at, done_at FROM fanout_log WHERE tweet_id = ?"


say = Progress().say


class BenchFailure(Exception):
    """A correctness check failed: the figures of this run mean nothing."""


@dataclass
class Tweet:
    seconds: float  # accepted_at to done_at: until the last follower's timeline holds it
    follower_writes: int
    redis_cpu_seconds: float
    worker_cpu_seconds: float  # this process's, which is the app's worker and its SQLite threads
    longest_call_us: int | None
    longest_call: str | None  # its command, cut to 60 characters


@dataclass
class Row:
    followers: int
    tweets: list[Tweet] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(t.seconds for t in self.tweets)

    @property
    def writes_per_s(self) -> float:
        return statistics.median(t.follower_writes / t.seconds for t in self.tweets)

    @property
    def redis_us_per_write(self) -> float:
        return statistics.median(t.redis_cpu_seconds / t.follower_writes * 1e6 for t in self.tweets)

    @property
    def worker_us_per_write(self) -> float:
        return statistics.median(t.worker_cpu_seconds / t.follower_writes * 1e6 for t in self.tweets)

    @property
    def longest(self) -> Tweet | None:
        timed = [t for t in self.tweets if t.longest_call_us]
        return max(timed, key=lambda t: t.longest_call_us, default=None)

    @property
    def longest_call_us(self) -> int | None:
        return self.longest and self.longest.longest_call_us

    def as_json(self) -> dict:
        return {
            **asdict(self),
            "median_seconds": self.seconds,
            "median_writes_per_s": self.writes_per_s,
            "median_redis_us_per_write": self.redis_us_per_write,
            "median_worker_us_per_write": self.worker_us_per_write,
            "longest_call_us": self.longest_call_us,
        }


# --- set-up ------------------------------------------------------------------------------


async def build_graph(db: Database, sizes: list[int], newest_prebuilt_id: int) -> dict[int, int]:
    """Users 1..max(sizes) follow; one author per size, followed by users 1..N. Returns
    {N: author}. A seed tweet at newest_prebuilt_id makes every tweet posted here newer than
    any id the prebuilt timelines hold."""
    top, created = max(sizes), now_iso()
    authors = {n: top + 1 + i for i, n in enumerate(sizes)}

    def insert(tx) -> None:
        tx.executemany(INSERT_USER, ((u, f"user{u}", created) for u in range(1, top + 1)))
        tx.executemany(INSERT_USER, ((a, f"author{n}", created) for n, a in authors.items()))
        tx.executemany(INSERT_FOLLOW, ((f, a) for n, a in authors.items() for f in range(1, n + 1)))
        tx.execute(COUNT_FOLLOWS)
        tx.execute(SEED_TWEET, (newest_prebuilt_id, authors[sizes[0]], "seed", created))

    await db.write(insert)
    return authors


def prototype_timelines(sizes: range) -> list[list[bytes]]:
    """One full timeline per size, as a loader writes it: ids newest first, ID_STEP apart,
    then the tail."""
    return [encode_timeline(list(range(size * ID_STEP, 0, -ID_STEP)), size) for size in sizes]


async def build_prototypes(client, timelines: list[list[bytes]], beside: str) -> list[str]:
    """The lists `timelines`, in `beside`'s slot, where COPY can reach them on a cluster."""
    keys = []
    for number, elements in enumerate(timelines):
        key = Keys.sibling(beside, "bench:prototype", number)
        await client.delete(key)
        await client.rpush(key, *elements)
        keys.append(key)
    return keys


async def populate(cache: TimelineCache, followers: int, timelines: list[list[bytes]]) -> None:
    """Timelines of users 1..followers become copies of `timelines` (encoded lists), spread
    evenly; on a cluster, shard by shard, from copies in each shard's slot, removed after."""
    script = cache.redis.register_script(POPULATE)
    for part in cache.keys.by_shard(list(range(1, followers + 1))):
        prototypes = await build_prototypes(cache.redis, timelines, cache.keys.timeline(part[0]))
        for start in range(0, len(part), SETUP_KEYS_PER_CALL):
            keys = [cache.keys.timeline(f) for f in part[start : start + SETUP_KEYS_PER_CALL]]
            await script(keys=[*prototypes, *keys], args=[len(prototypes), start + 1])
        for key in prototypes:
            await cache.redis.delete(key)


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Bench:
    db: Database
    nodes: list[redis.Redis]  # each Redis's own client, for what it reports of itself
    cache: TimelineCache
    worker: FanoutWorker
    authors: dict[int, int]

    async def tweet(self, author: int) -> int:
        """Commits a tweet as POST /tweets does, and nudges the worker as the app does."""

        def post(tx) -> int:
            tweet_id = insert_tweet(tx, author, "fanout bench").id
            tx.execute(OWE_FANOUT, (JobKind.TWEET, author, tweet_id, time.time()))
            return tweet_id

        tweet_id = await self.db.write(post)
        self.worker.wake.set()
        return tweet_id

    async def fanout_logged(
        self, tweet_id: int, jobs_before: int, timeout: float
    ) -> tuple[int, float, float]:
        """The worker's log of the tweet's fanout, once the worker counts the job done."""
        deadline = time.monotonic() + timeout
        while self.worker.totals.jobs_done == jobs_before:
            if time.monotonic() > deadline:
                raise BenchFailure(f"tweet {tweet_id} not fanned out within {timeout:g} s")
            await asyncio.sleep(POLL_SECONDS)
        row = await self.db.fetchone(FANOUT_LOGGED, (tweet_id,))
        if row is None:
            raise BenchFailure(f"the worker finished a job, but fanout_log has no row for tweet {tweet_id}")
        return tuple(row)

    async def one_tweet(self, n: int) -> Tweet:
        for node in self.nodes:
            await node.slowlog_reset()
        totals = self.worker.totals
        cpu, writes, jobs = await self.redis_cpu(), totals.follower_writes, totals.jobs_done
        worker_cpu = process_cpu()
        tweet_id = await self.tweet(self.authors[n])
        followers, accepted_at, done_at = await self.fanout_logged(tweet_id, jobs, timeout=60 + n / 1000)
        worker_cpu = process_cpu() - worker_cpu
        cpu, writes = await self.redis_cpu() - cpu, self.worker.totals.follower_writes - writes
        if followers != n or writes != n:
            raise BenchFailure(
                f"tweet {tweet_id}: logged {followers} followers, {writes} writes; expected {n}"
            )
        await self.check_holds(tweet_id, n)
        return Tweet(done_at - accepted_at, writes, cpu, worker_cpu, *await self.longest_call())

    async def check_holds(self, tweet_id: int, n: int) -> None:
        for follower in {1, n // 2 or 1, n}:
            page = await self.cache.read(follower, tweet_id + 1, 1)
            if not isinstance(page, Page) or page.ids != [tweet_id]:
                raise BenchFailure(
                    f"follower {follower}'s cached timeline lacks tweet {tweet_id}: "
                    f"{getattr(page, 'ids', 'not cached')}"
                )

    async def redis_cpu(self) -> float:
        total = 0.0
        for node in self.nodes:
            cpu = await node.info("cpu")
            total += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
        return total

    async def longest_call(self) -> tuple[int | None, str | None]:
        # The bench's own SLOWLOG, INFO and CONFIG land in the log too; they are not fanout.
        entries = [
            entry
            for node in self.nodes
            for entry in await node.slowlog_get(10_000)
            if not entry["command"].upper().startswith(BENCH_COMMANDS)
        ]
        if not entries:
            return None, None
        longest = max(entries, key=lambda entry: entry["duration"])
        return longest["duration"], longest["command"][:60].decode(errors="replace")


async def measure(bench: Bench, n: int, reps: int) -> Row:
    row = Row(n)
    for rep in range(reps):
        row.tweets.append(tweet := await bench.one_tweet(n))
        say(
            f"  {n:>9,} followers  tweet {rep + 1}/{reps}: {tweet.seconds:.3f} s, "
            f"{tweet.follower_writes / tweet.seconds:>10,.0f} writes/s"
        )
    return row


async def run(args, server: RedisServer | RedisCluster, directory: Path) -> list[Row]:
    client = connect(server.url(), cluster=isinstance(server, RedisCluster))
    nodes = [redis.Redis.from_url(node.url()) for node in servers_of(server)]
    db = await open_database(f"sqlite:///{directory / 'bench.db'}", Settings().reader_connections)
    try:
        for node in nodes:
            await node.config_set("slowlog-log-slower-than", args.slowlog_us)
            await node.config_set("slowlog-max-len", 10_000)
        cache = TimelineCache(client, args.length)
        sizes = range(cache.keep, args.length + 1)
        say(
            f"SQLite: {max(args.followers) + len(args.followers):,} users, "
            f"{sum(args.followers):,} follows ..."
        )
        authors = await build_graph(db, args.followers, args.length * ID_STEP + 1)
        rows = []
        async with FanoutWorker(db, TimelineCache(client, args.length), args.chunk) as worker:
            bench = Bench(db, nodes, cache, worker, authors)
            for n in args.followers:
                say(f"{n:,} full timelines ({sizes[0]}..{sizes[-1]} ids) ...")
                await populate(cache, n, prototype_timelines(sizes))
                await bench.one_tweet(n)  # warm-up: scripts loaded, SQLite pages cached
                rows.append(await measure(bench, n, args.reps))
                say(f"  Redis memory {await memory(nodes)}")
        return rows
    finally:
        await db.close()
        await client.aclose()
        for node in nodes:
            await node.aclose()


async def memory(nodes: list[redis.Redis]) -> str:
    if len(nodes) == 1:
        return (await nodes[0].info("memory"))["used_memory_human"]
    used = [(await node.info("memory"))["used_memory"] for node in nodes]
    return f"{sum(used) / 2**20:.1f}M over {len(nodes)} nodes"


# --- report ------------------------------------------------------------------------------


def process_cpu() -> float:
    """CPU seconds of this process, all its threads: the worker's Python and SQLite's."""
    times = os.times()
    return times.user + times.system


def call_text(us: int | None, threshold: int) -> str:
    return f"<{threshold}" if us is None else f"{us:,}"


def report(args, rows: list[Row], redis_version: str, cpus: Cpus) -> None:
    print(
        f"\nredis-server {redis_version}; {os.cpu_count()} CPUs, {cpus.describe()}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.redis_nodes:
        print(
            f"a {args.redis_nodes}-node Redis Cluster (REDIS_CLUSTER=1), every node on the CPUs "
            f"redis-server has; Redis us/write is all nodes' CPU"
        )
    print(
        f"TIMELINE_LENGTH {args.length}, first call {args.chunk} followers (the worker sizes the "
        f"rest to ~2 ms); median of {args.reps} tweets per row"
    )
    header = (
        f"{'followers':>10} {'s to last follower':>18} {'writes/s':>10} {'Redis us/write':>14} "
        f"{'worker us/write':>15} {'longest call us':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.followers:>10,} {row.seconds:>18.3f} {row.writes_per_s:>10,.0f} "
            f"{row.redis_us_per_write:>14.2f} {row.worker_us_per_write:>15.2f} "
            f"{call_text(row.longest_call_us, args.slowlog_us):>15}"
        )
    for row in rows:
        if row.longest:
            print(f"  longest call at {row.followers:,}: {row.longest.longest_call}")
    judged = rows[-1]
    longest = max((row.longest_call_us or 0 for row in rows), default=0)
    print(
        f"\n{'PASS' if judged.writes_per_s >= TARGET_WRITES_PER_S else 'BELOW'}: "
        f"{judged.writes_per_s:,.0f} writes/s at {judged.followers:,} followers vs the target "
        f"{TARGET_WRITES_PER_S:,}; longest call {call_text(longest or None, args.slowlog_us)} us, "
        f"{'within' if longest <= CALL_BOUND_US else 'OVER'} the {CALL_BOUND_US:,} us bound"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "redis_server": redis_version,
                    "length": args.length,
                    "chunk": args.chunk,
                    "reps": args.reps,
                    "slowlog_threshold_us": args.slowlog_us,
                    "redis_nodes": args.redis_nodes,
                    "rows": [row.as_json() for row in rows],
                },
                indent=2,
            )
        )
        print(f"results written to {args.json}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--followers",
        default="1000,10000,100000",
        type=lambda text: sorted({int(n) for n in text.split(",") if n}),
        help="comma-separated follower counts, e.g. 1000,10000,100000,1000000 (default %(default)s)",
    )
    parser.add_argument("--reps", type=int, default=3, help="tweets per follower count (default 3)")
    parser.add_argument(
        "--length", type=int, default=settings.timeline_length, help="TIMELINE_LENGTH (default %(default)s)"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=settings.fanout_chunk,
        help="followers in the worker's first Redis call, FANOUT_CHUNK (default %(default)s)",
    )
    parser.add_argument("--slowlog-us", type=int, default=100, help="SLOWLOG threshold in us (default 100)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--redis-nodes",
        type=int,
        metavar="N",
        help="run on an N-node Redis Cluster the bench starts and stops (default: one redis-server)",
    )
    args = parser.parse_args(argv)
    if not args.followers or min(args.followers) < 1 or args.reps < 1 or args.length < 1:
        parser.error("--followers takes positive counts; --reps and --length at least 1")
    if args.redis_nodes is not None and args.redis_nodes < 1:
        parser.error("--redis-nodes takes a count of at least 1")
    return args


def run_loop(coroutine):
    try:
        import uvloop  # the apps run under uvicorn[standard], which uses uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cpus = Cpus.plan()
    if cpus.app:  # the bench plays the app: its CPU, as in a bench run
        os.sched_setaffinity(0, cpus.app)
    with (
        tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp,
        redis_for(args.redis_nodes or 0, Path(tmp), cpus) as server,
    ):
        try:
            rows = run_loop(run(args, server, Path(tmp)))
        except BenchFailure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; redis-server stopped", file=sys.stderr)
            return 130
        with servers_of(server)[0].client() as client:
            version = client.info("server")["redis_version"]
    report(args, rows, version, cpus)
    return 0
