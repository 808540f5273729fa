"""Fanout benchmark: one tweet to 1k, 10k and 100k followers, in follower-timeline writes/s.

    .venv/bin/python bench/fanout.py [--followers 1000,10000,100000] [--length 800]
                                     [--chunk FANOUT_CHUNK] [--reps 5] [--states empty,full]
                                     [--json results.json]

Target (the issue): >= 345,000 writes/s sustained, DDIA's 4.6k tweets/s x 75 followers,
i.e. ~2.9 us per follower, with no single Redis call blocking the server for over 5 ms.

Three ways of writing the same tweet id into the same N follower timelines, in one run:

  app fanout         the app's own FanoutWorker: a tweet and its outbox row are committed
                     the way POST /tweets commits them, then the worker claims the row and
                     deliver() (the batch run() processes) is timed end to end: SQLite follower reads, Lua pushes,
                     the unfollow re-check, checkpoints, the final commit. Its first call
                     takes --chunk followers; it sizes the later ones to take ~2 ms.
  lua push           TimelineCache.push over chunks of --chunk keys, no SQLite: the Redis
                     side of the app path on its own.
  redis-py pipeline  a plain pipeline (transaction=False) of ZADD + ZREMRANGEBYRANK per
                     follower, Mastodon's push, in chunks of --chunk followers: the baseline.

Timeline states (each row says which); every method starts from a freshly built state:

  full   the steady state of the app's PUSH script. It lets a timeline grow to --length
         tweet ids and then cuts it back to the newest keep = length - length // 16 (750
         of 800). Timelines are prebuilt holding keep..length ids plus the floor marker,
         spread evenly, so each push cuts about 1/(length - keep + 1) of them (1/51) and
         the spread stays even. The pipeline trims to --length instead, so here it too
         cuts only the timelines at --length; in its own steady state (all at --length)
         every push would cut one id, so this state flatters the baseline a little.
  empty  cached but empty (floor marker only): no trimming, tiny sets; a lower bound.

The longest single Redis call comes from Redis's own SLOWLOG, reset before every repetition.
The threshold is --slowlog-us (100), not 0: Redis 7 also logs each command a script runs and
each pipelined command, and logging ~200k entries per repetition slows what is measured.
Anything near the 5 ms bound is far above the threshold, so the maximum is still exact;
"<100" means no call reached it.

The bench starts its own redis-server on a free port (never the one on 6379) with
persistence off, in a temp dir with the SQLite file, and stops it on exit, error or Ctrl-C.
100k full timelines take ~8 GB of Redis memory.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from approach2 import OWE_FANOUT  # noqa: E402
from timelines.cache import TimelineCache, connect, timeline_key  # noqa: E402
from timelines.db import Database  # noqa: E402
from timelines.fanout import FanoutWorker  # noqa: E402
from timelines.http import now_iso  # noqa: E402
from timelines.settings import Settings  # noqa: E402
from timelines.users import insert_tweet  # noqa: E402

TARGET_WRITES_PER_S = 345_000  # DDIA: 4.6k tweets/s x 75 followers, Twitter 2012
CALL_BOUND_US = 5_000
SETUP_CHUNK = 1000  # timelines per setup script call: keeps each under ~0.2 s
BENCH_COMMANDS = (b"SLOWLOG", b"INFO", b"CONFIG")
NO_REDIS = "redis-server not found: run scripts/ensure-redis-server or apt-get install redis-server"

# --- Lua used by the bench only ----------------------------------------------------------

# KEYS: ARGV[1] prototype timelines, then the timelines to build. ARGV[2]: the position of
# the first of those in the whole run, so that prototypes are spread evenly over timelines.
POPULATE = """
local protos, phase = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = protos + 1, #KEYS do
    redis.call('COPY', KEYS[(phase + i) % protos + 1], KEYS[i], 'REPLACE')
end
return #KEYS - protos
"""

SEED_TWEET = "INSERT INTO tweets (id, user_id, text, created_at) VALUES (?, ?, ?, ?)"
INSERT_USER = "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)"
INSERT_FOLLOW = "INSERT INTO follows (follower_id, followee_id) VALUES (?, ?)"
COUNT_FOLLOWS = """
    UPDATE users SET
        followers = (SELECT count(*) FROM follows WHERE followee_id = users.id),
        following = (SELECT count(*) FROM follows WHERE follower_id = users.id)"""
FANOUT_LOGGED = "SELECT followers FROM fanout_log WHERE tweet_id = ?"
OUTBOX_LEFT = "SELECT count(*) FROM fanout_outbox"


class BenchFailure(Exception):
    """A correctness check failed: the figures of this run mean nothing."""


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def stop_if_interrupted() -> None:
    """Ctrl-C cancels the main task; redis-py's asyncio pipeline sometimes swallows that
    CancelledError (seen with redis-py 8.1), but the request stays pending on the task."""
    if asyncio.current_task().cancelling():
        raise asyncio.CancelledError


# --- results -----------------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    redis_cpu_seconds: float  # CPU of Redis's main thread meanwhile: the server's share
    longest_call_us: int | None = None
    longest_call: str | None = None
    breakdown: dict[str, float] | None = None


@dataclass
class Row:
    method: str
    state: str
    followers: int
    runs: list[Run] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def best_seconds(self) -> float:
        return min(run.seconds for run in self.runs)

    @property
    def median_rate(self) -> float:
        return self.followers / self.median_seconds

    @property
    def best_rate(self) -> float:
        return self.followers / self.best_seconds

    @property
    def us_per_follower(self) -> float:
        return self.median_seconds / self.followers * 1e6

    @property
    def redis_us_per_follower(self) -> float:
        return statistics.median(run.redis_cpu_seconds for run in self.runs) / self.followers * 1e6

    @property
    def longest_call_us(self) -> int | None:
        calls = [run.longest_call_us for run in self.runs if run.longest_call_us is not None]
        return max(calls, default=None)

    @property
    def median_run(self) -> Run:
        return sorted(self.runs, key=lambda run: run.seconds)[len(self.runs) // 2]

    def as_json(self) -> dict:
        return {**asdict(self), "median_writes_per_s": round(self.median_rate),
                "best_writes_per_s": round(self.best_rate),
                "median_us_per_follower": round(self.us_per_follower, 3),
                "median_redis_cpu_us_per_follower": round(self.redis_us_per_follower, 3),
                "longest_call_us": self.longest_call_us}


# --- redis-server ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server(directory: Path):
    """A throwaway redis-server: persistence off, its own port, stopped however we exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        print(NO_REDIS, file=sys.stderr)
        raise SystemExit(1)
    port = free_port()
    log = directory / "redis.log"
    # Own session: a Ctrl-C reaches only us, and we stop the server in order below.
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(log), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: pin(REDIS_CPUS))
    try:
        wait_until_up(process, port, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def split_cpus() -> tuple[set[int], set[int]]:
    """Redis on the last CPU, the bench (Python, SQLite threads) on the rest: otherwise a
    Redis call preempted by the client's own threads shows up as a long call in SLOWLOG."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return set(), set()
    return {cpus[-1]}, set(cpus[:-1])


REDIS_CPUS, CLIENT_CPUS = split_cpus()


def pin(cpus: set[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def wait_until_up(process: subprocess.Popen, port: int, log: Path) -> None:
    probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"redis-server exited at start:\n{log.read_text(errors='replace')}")
        try:
            probe.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
        finally:
            probe.close()
    raise SystemExit(f"redis-server did not answer on port {port} within 10 s")


# --- setup -------------------------------------------------------------------------------

async def build_graph(db: Database, sizes: list[int], newest_prebuilt_id: int) -> dict[int, int]:
    """Users 1..max(sizes) are the followers; one author per size, followed by users 1..N.
    Returns {N: author id}. A seed tweet at newest_prebuilt_id makes every tweet the bench
    posts newer than the ids the prebuilt timelines hold."""
    top, created = max(sizes), now_iso()
    authors = {n: top + 1 + i for i, n in enumerate(sizes)}
    users = [(u, f"user{u}", created) for u in range(1, top + 1)]
    users += [(author, f"author{n}", created) for n, author in authors.items()]
    follows = [(f, author) for n, author in authors.items() for f in range(1, n + 1)]
    def insert(tx) -> None:
        tx.executemany(INSERT_USER, users)
        tx.executemany(INSERT_FOLLOW, follows)
        tx.execute(COUNT_FOLLOWS)
        tx.execute(SEED_TWEET, (newest_prebuilt_id, authors[sizes[0]], "seed", created))

    await db.write(insert)
    return authors


def held(state: str, length: int, keep: int) -> range:
    """How many tweet ids a timeline of `state` holds before a push. Full: a timeline at
    length is cut to keep by its next push and any other grows by one, so sizes spread
    evenly over keep..length stay spread evenly, as in the app's steady state."""
    return range(keep, length + 1) if state == "full" else range(0, 1)


async def build_prototypes(client, sizes: range) -> list[str]:
    """One timeline per size, holding tweet ids 1..size and a floor at 0."""
    keys = []
    for size in sizes:
        key = f"bench:prototype:{size}"
        await client.delete(key)
        await client.zadd(key, {"floor": 0, **{str(i): i for i in range(1, size + 1)}})
        keys.append(key)
    return keys


async def populate(client, followers: int, prototypes: list[str]) -> None:
    """Timelines 1..followers become copies of the prototypes, spread evenly over them."""
    script = client.register_script(POPULATE)
    for start in range(1, followers + 1, SETUP_CHUNK):
        keys = [timeline_key(f) for f in range(start, min(start + SETUP_CHUNK, followers + 1))]
        await script(keys=[*prototypes, *keys], args=[len(prototypes), start])


# --- where the app's time goes -----------------------------------------------------------

class Breakdown:
    """Wall time spent awaiting each part of FanoutWorker.deliver. The worker's code runs
    unchanged: only the attributes it calls through are wrapped with a clock. Follower reads
    run as a prefetch task beside the pushes, so their time overlaps the others'."""

    PARTS = {"lua push": "cache.push", "re-check": "_take_back_from_unfollowers",
             "follower reads": "_followers_after"}

    def __init__(self, worker: FanoutWorker):
        self.parts = ["commits"]
        for part, attribute in self.PARTS.items():
            owner = worker.cache if attribute.startswith("cache.") else worker
            name = attribute.removeprefix("cache.")
            if hasattr(owner, name):  # a renamed method is not clocked: its part reads n/a
                setattr(owner, name, self._timed(part, getattr(owner, name)))
                self.parts.append(part)
        worker.db.write = self._timed("commits", worker.db.write)
        self.reset()

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.parts, 0.0)

    def _add(self, part: str, seconds: float) -> None:
        self.seconds[part] += seconds

    def _timed(self, part: str, function):
        async def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self._add(part, time.perf_counter() - start)
        return timed

    def of(self, total: float) -> dict[str, float]:
        serial = sum(v for k, v in self.seconds.items() if k != "follower reads")
        return {"total": total, **self.seconds, "other": total - serial}


# --- the bench ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args, client, db: Database, authors: dict[int, int]):
        self.args, self.redis, self.db, self.authors = args, client, db, authors
        self.cache = TimelineCache(client, args.length)
        # The worker gets its own cache object so that only its pushes are clocked.
        self.worker = FanoutWorker(db, TimelineCache(client, args.length), args.chunk)
        self.breakdown = Breakdown(self.worker)

    async def warm_up(self) -> None:
        """Load every script once so no timed call pays a NOSCRIPT round trip."""
        await self.cache.push(0, [])
        await self.worker.cache.push(0, [])

    async def measure(self, method: str, state: str, n: int, once) -> Row:
        row = Row(method, state, n)
        for rep in range(self.args.reps):
            await self.redis.slowlog_reset()
            run = await once(n, state)
            run.longest_call_us, run.longest_call = await self.longest_call()
            row.runs.append(run)
            stop_if_interrupted()
            say(f"  {method:<18} {state:<5} {n:>8,} followers  rep {rep + 1}/{self.args.reps}"
                f"  {run.seconds:.3f} s  {n / run.seconds:>10,.0f} writes/s")
        return row

    async def longest_call(self) -> tuple[int | None, str | None]:
        # The bench's own SLOWLOG RESET and INFO land in the log too; they are not fanout.
        entries = [entry for entry in await self.redis.slowlog_get(10_000)
                   if not entry["command"].upper().startswith(BENCH_COMMANDS)]
        if not entries:
            return None, None
        longest = max(entries, key=lambda entry: entry["duration"])
        return longest["duration"], longest["command"][:60].decode(errors="replace")

    async def redis_cpu(self) -> float:
        cpu = await self.redis.info("cpu")
        return (cpu.get("used_cpu_user_main_thread", cpu["used_cpu_user"])
                + cpu.get("used_cpu_sys_main_thread", cpu["used_cpu_sys"]))

    async def clock(self, work: Callable[[], Awaitable]) -> tuple[Run, object]:
        """Times work(), and the CPU Redis's main thread spent meanwhile: wall time minus
        that is the client's share, and it does not count time Redis sat descheduled."""
        cpu = await self.redis_cpu()
        start = time.perf_counter()
        result = await work()
        seconds = time.perf_counter() - start
        return Run(seconds, await self.redis_cpu() - cpu), result

    async def new_tweet(self, n: int, owe_fanout: bool) -> int:
        """A tweet by N's author, committed as POST /tweets commits it: ids come from
        SQLite, so every method pushes a newer id than any timeline holds."""
        author = self.authors[n]
        def post(tx) -> tuple:
            tweet = insert_tweet(tx, author, f"fanout bench to {n} followers")
            if owe_fanout:
                tx.execute(OWE_FANOUT, (author, tweet[0], time.time()))
            return tweet

        return (await self.db.write(post))[0]

    # Each method: one tweet to followers 1..n, timed; then checked.

    async def app_fanout(self, n: int, state: str) -> Run:
        tweet_id = await self.new_tweet(n, owe_fanout=True)
        jobs = await self.worker._claim()
        if [job.tweet_id for job in jobs] != [tweet_id]:
            raise BenchFailure(f"claimed {jobs}, expected only the job of tweet {tweet_id}")
        self.breakdown.reset()
        run, _ = await self.clock(lambda: self.worker.deliver(jobs))
        run.breakdown = self.breakdown.of(run.seconds)
        await self.check_app_bookkeeping(tweet_id, n)
        await self.spot_check(tweet_id, n, state)
        return run

    async def lua_push(self, n: int, state: str) -> Run:
        tweet_id, followers, chunk = await self.new_tweet(n, False), list(range(1, n + 1)), self.args.chunk

        async def push_all() -> int:
            written = 0
            for first in range(0, n, chunk):
                written += await self.cache.push(tweet_id, followers[first:first + chunk])
            return written

        return await self.checked(push_all, tweet_id, n, state)

    async def pipeline(self, n: int, state: str) -> Run:
        tweet_id, chunk, length = await self.new_tweet(n, False), self.args.chunk, self.args.length

        async def push_all() -> int:
            written = 0
            for first in range(1, n + 1, chunk):
                pipe = self.redis.pipeline(transaction=False)
                for follower in range(first, min(first + chunk, n + 1)):
                    key = timeline_key(follower)
                    pipe.zadd(key, {tweet_id: tweet_id})
                    # Mastodon trims from rank 0; rank 0 here is the floor marker, so from 1.
                    pipe.zremrangebyrank(key, 1, -(length + 1))
                written += sum((await pipe.execute())[::2])
                stop_if_interrupted()
            return written

        return await self.checked(push_all, tweet_id, n, state)

    async def checked(self, push_all, tweet_id: int, n: int, state: str) -> Run:
        run, written = await self.clock(push_all)
        if written != n:
            raise BenchFailure(f"{written} timelines written, expected {n}")
        await self.spot_check(tweet_id, n, state)
        return run

    # --- checks ----------------------------------------------------------------------------

    async def check_app_bookkeeping(self, tweet_id: int, n: int) -> None:
        logged = await self.db.fetchone(FANOUT_LOGGED, (tweet_id,))
        if logged is None or logged[0] != n:
            raise BenchFailure(f"fanout_log for tweet {tweet_id}: {logged}, expected {n} followers")
        (left,) = await self.db.fetchone(OUTBOX_LEFT)
        if left:
            raise BenchFailure(f"{left} outbox rows left after delivering tweet {tweet_id}")

    async def spot_check(self, tweet_id: int, n: int, state: str) -> None:
        """A few timelines hold the tweet, and as many members as their state allows."""
        # Members are tweet ids plus the floor marker. A full timeline just cut holds keep
        # ids; an empty one at least this tweet. None ever holds more than length ids.
        low = self.cache.keep + 1 if state == "full" else 2
        high = self.args.length + 1
        for follower in {1, n // 2 or 1, n, random.randint(1, n), random.randint(1, n)}:
            key = timeline_key(follower)
            score, size, floor = await self.redis.zscore(key, tweet_id), await self.redis.zcard(key), \
                await self.redis.zscore(key, "floor")
            if score != tweet_id or floor is None or not low <= size <= high:
                raise BenchFailure(f"{key} after tweet {tweet_id} ({state}): score {score}, "
                                   f"floor {floor}, {size} members, expected {low}..{high}")


# --- running -----------------------------------------------------------------------------

async def bench_state(bench: Bench, state: str, sizes: list[int]) -> list[Row]:
    sizes_held = held(state, bench.args.length, bench.cache.keep)
    say(f"{state} timelines: {sizes_held[0]}..{sizes_held[-1]} tweet ids + floor marker")
    prototypes = await build_prototypes(bench.redis, sizes_held)
    rows = []
    for n in sizes:
        for method, once in [("app fanout", bench.app_fanout), ("lua push", bench.lua_push),
                             ("redis-py pipeline", bench.pipeline)]:
            # Rebuilt for each method: pushes fill empty timelines, and the pipeline trims
            # to length rather than keep, which bends the even spread of full ones.
            say(f"  building {n:,} {state} timelines ...")
            await populate(bench.redis, n, prototypes)
            rows.append(await bench.measure(method, state, n, once))
    say(f"  Redis memory {(await bench.redis.info('memory'))['used_memory_human']}")
    return rows


async def run(args, port: int, directory: Path) -> tuple[list[Row], str]:
    client = connect(f"redis://127.0.0.1:{port}/0")
    db = await Database.open(f"sqlite:///{directory / 'bench.db'}", Settings().reader_connections)
    try:
        await client.config_set("slowlog-log-slower-than", args.slowlog_us)
        await client.config_set("slowlog-max-len", 10_000)
        say(f"SQLite: {len(args.followers) + max(args.followers):,} users, "
            f"{sum(args.followers):,} follows ...")
        authors = await build_graph(db, args.followers, args.length)
        bench = Bench(args, client, db, authors)
        args.keep = bench.cache.keep  # the app decides keep; the report prints it
        await bench.warm_up()
        rows = []
        for state in args.states:
            rows += await bench_state(bench, state, args.followers)
        return rows, (await client.info("server"))["redis_version"]
    finally:
        await db.close()
        await client.aclose()


# --- report ------------------------------------------------------------------------------

def machine(redis_version: str, load_before: tuple) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    # The load says whether anything else shared the CPUs with the run.
    return {"nproc": os.cpu_count(), "cpu": cpu, "redis_server": redis_version,
            "python": platform.python_version(), "redis_py": redis.__version__, "event_loop": loop,
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def call_text(us: int | None, threshold: int) -> str:
    return f"<{threshold}" if us is None else f"{us:,}"


def print_table(rows: list[Row], threshold: int) -> None:
    header = (f"{'method':<20} {'timelines':<9} {'followers':>9} {'reps':>4} {'median s':>9} "
              f"{'writes/s':>10} {'best w/s':>10} {'us/follower':>11} {'redis cpu us/f':>14} "
              f"{'longest call us':>15}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row.method:<20} {row.state:<9} {row.followers:>9,} {len(row.runs):>4} "
              f"{row.median_seconds:>9.4f} {row.median_rate:>10,.0f} {row.best_rate:>10,.0f} "
              f"{row.us_per_follower:>11.2f} {row.redis_us_per_follower:>14.2f} "
              f"{call_text(row.longest_call_us, threshold):>15}")


def print_breakdown(rows: list[Row]) -> None:
    print("\napp fanout: where the time goes (median rep, ms; follower reads are a prefetch "
          "task beside the pushes, so they overlap the other columns; other = the rest of the "
          "wall time: awaiting reads the prefetch had not finished, the tweet body, the loop)")
    parts = ("total", "lua push", "re-check", "commits", "other", "follower reads")
    print(f"{'timelines':<9} {'followers':>9} " + " ".join(f"{p:>14}" for p in parts))
    for row in rows:
        if row.method == "app fanout":
            parts_ms = row.median_run.breakdown
            print(f"{row.state:<9} {row.followers:>9,} "
                  + " ".join(f"{parts_ms[p] * 1000:>14.1f}" if p in parts_ms else f"{'n/a':>14}"
                             for p in parts))


def print_verdict(rows: list[Row], threshold: int) -> None:
    print()
    for method in dict.fromkeys(row.method for row in rows):
        mine = [row for row in rows if row.method == method]
        # Judged at the steadiest case measured: full timelines, most followers.
        judged = max(mine, key=lambda row: (row.state != "empty", row.followers))
        verdict = "PASS" if judged.median_rate >= TARGET_WRITES_PER_S else "BELOW"
        longest = max((row.longest_call_us or 0 for row in mine), default=0)
        bound = "within" if longest <= CALL_BOUND_US else "OVER"
        print(f"{method:<20} {verdict:<5} {judged.median_rate:>10,.0f} writes/s "
              f"({judged.us_per_follower:.2f} us/follower, {judged.state}, {judged.followers:,} followers)"
              f" vs target {TARGET_WRITES_PER_S:,} (2.9 us);  longest call "
              f"{call_text(longest or None, threshold)} us: {bound} the {CALL_BOUND_US:,} us bound")


def report(args, rows: list[Row], info: dict) -> None:
    print(f"\nmachine: {info['nproc']} CPUs, {info['cpu']}; redis-server {info['redis_server']}; "
          f"Python {info['python']}, redis-py {info['redis_py']}, {info['event_loop']}")
    print("load average (1, 5, 15 min) before %.2f %.2f %.2f, after %.2f %.2f %.2f"
          % (*info["load_average_before"], *info["load_average_after"]))
    print(f"CPUs: redis-server on {sorted(REDIS_CPUS) or 'any'}, the bench on {sorted(CLIENT_CPUS) or 'any'}")
    print(f"TIMELINE_LENGTH {args.length}, chunk {args.chunk} followers per call "
          f"(app fanout: its first call; it sizes the rest to ~2 ms), "
          f"{args.reps} reps per row (median and best)")
    print(f"timelines: full = the app PUSH's steady state: {args.keep}..{args.length} ids "
          f"(keep..TIMELINE_LENGTH) + floor marker, spread evenly, so each push cuts "
          f"~1/{args.length - args.keep + 1} of them back to {args.keep} (the pipeline trims to "
          f"{args.length} instead); empty = floor marker only, no trims; rebuilt for each method")
    print("us/follower = median wall time / followers; redis cpu us/f = CPU of Redis's main "
          "thread / followers (the rest is the client: Python, SQLite, the socket); longest call "
          f"= the longest command in SLOWLOG over all reps (threshold {args.slowlog_us} us)")
    print()
    print_table(rows, args.slowlog_us)
    print_breakdown(rows)
    print_verdict(rows, args.slowlog_us)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "length": args.length, "keep": args.keep, "chunk": args.chunk,
             "reps": args.reps, "target_writes_per_s": TARGET_WRITES_PER_S,
             "call_bound_us": CALL_BOUND_US, "slowlog_threshold_us": args.slowlog_us,
             "rows": [row.as_json() for row in rows]},
            indent=2))
        print(f"\nresults written to {args.json}")


# --- command line ------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", default="1000,10000,100000",
                        type=lambda text: sorted(int(n) for n in text.split(",")),
                        help="comma-separated follower counts (default 1000,10000,100000)")
    parser.add_argument("--length", type=int, default=settings.timeline_length,
                        help="TIMELINE_LENGTH (default %(default)s)")
    parser.add_argument("--chunk", type=int, default=settings.fanout_chunk,
                        help="followers per Redis call, FANOUT_CHUNK (default %(default)s)")
    parser.add_argument("--reps", type=int, default=5, help="tweets per row (default 5)")
    parser.add_argument("--states", default="empty,full",
                        type=lambda text: [s for s in text.split(",") if s],
                        help="timeline states to run, of empty,full (default empty,full)")
    parser.add_argument("--slowlog-us", type=int, default=100,
                        help="SLOWLOG threshold in us (default 100)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    if not set(args.states) <= {"empty", "full"} or min(args.followers) < 1:
        parser.error("--states takes empty and/or full; --followers takes positive counts")
    return args


def run_loop(coroutine):
    try:
        import uvloop  # the apps run under uvicorn[standard], which uses uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> int:
    args = parse_args()
    pin(CLIENT_CPUS)  # before any thread starts: threads inherit it
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp, redis_server(Path(tmp)) as port:
        try:
            rows, redis_version = run_loop(run(args, port, Path(tmp)))
        except BenchFailure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            return 2
    report(args, rows, machine(redis_version, load_before))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; redis-server stopped", file=sys.stderr)
        sys.exit(130)
