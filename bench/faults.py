"""Faults, with real processes and real signals: what each app does when Redis dies under
load, when the app itself dies half-way through a large fanout, and when many clients
write to overlapping users through two worker processes.

    python -m bench.faults redis-kill [--approach approach2 ...] [--scale default] [--rate 300]
                                      [--down 10] [--check-users N] [--out DIR]
    python -m bench.faults app-kill   [--approach approach2 ...] [--followers 50000] [--tweets 20]
    python -m bench.faults writers    [--approach approach1 ...] [--clients 64] [--seconds 60]

redis-kill  A seeded app under an open-loop Locust run (DDIA's read:tweet mix) and a
            witness client that keeps the id of every tweet acknowledged and every page it
            read. Mid-run Redis is SIGKILLed, kept down, and restarted empty on its port.
            Figures: the requests' statuses before, during and after the outage (503s,
            connection errors), how long /health took to come back and the backlog to
            drain, and whether every acknowledged tweet is in every follower's home
            timeline afterwards, page by page over HTTP against the join on the SQLite file.
app-kill    One account with N followers (written straight into SQLite and the caches)
            tweets a few times; once the fanout has written a checkpoint the app's process
            group is SIGKILLed, and it is started again on the same files. Figures: when the
            fanout resumed and finished, followers pushed twice (counted by Redis itself,
            LINDEX calls of the push script), and any follower missing a tweet.
writers     --clients threads create users, follow, unfollow, tweet (and read a little)
            over a small shared set of users whose timelines are cached, against --workers
            uvicorn processes on one SQLite file. Figures: statuses (any 5xx, busy-database
            503s), counters against rows, every acknowledged tweet stored once, and every
            home timeline against the join.

Each run writes DIR/faults-<scenario>-<date>/<approach>/ (result.json and the raw records:
Locust samples, witness, monitor, per-request CSVs, app and Redis logs) and
DIR/faults-<scenario>-<date>/result.json for all; the SQLite file lives in a temporary
directory, removed after each approach. DIR is results/ unless --out says otherwise.
tests/test_faults.py runs the same functions at a small size and asserts on the figures.
"""

import argparse
import bisect
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

from bench import _checks as checks
from bench.processes import ROOT, AppServer, Cpus, RedisServer, pinned, wait_until
from datagen.caches import load_redis
from datagen.graph import Graph
from datagen.history import History
from datagen.load import load_sqlite
from datagen.scales import SCALES

APPS = ("approach1", "approach2", "approach3_hybrid")
FANOUT_APPS = ("approach2", "approach3_hybrid")
CACHES = {"approach2": "fanout", "approach3_hybrid": "hybrid"}  # datagen's names for the caches
LOCUST = Path(sys.executable).with_name("locust")
UNPINNED = Cpus()  # tests: the processes share every CPU
RECOVERY_GRACE_S = 1.0  # after Redis is back, requests already under way may still see it gone


def quiet(_: str) -> None:
    pass


def say_stamped(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


# --- stores and seeds -----------------------------------------------------------------------

def load(database: Path, redis_url: str, module: str, graph: Graph, history: History, length: int,
         threshold: int, progress: bool) -> None:
    """What `python -m datagen` does, for any graph: SQLite, and the caches of a fanout app."""
    load_sqlite(database, graph, history, threshold, progress=progress)
    if module in CACHES:
        load_redis(redis_url, graph, history, CACHES[module], length, threshold, progress=progress)


def star(followers: int) -> tuple[Graph, History]:
    """User 1 followed by users 2..followers+1, and no tweets yet."""
    graph = Graph(followers + 1, np.arange(2, followers + 2, dtype=np.int64), np.ones(followers, np.int64))
    empty = np.empty(0, dtype=np.int64)
    return graph, History(empty, empty.astype(np.int32), empty.astype(np.int32), "")


@dataclass
class Stack:
    """A private redis-server and one app; logs in `workdir`, the SQLite file in `data_dir`
    (default: `workdir` too)."""
    workdir: Path
    module: str
    cpus: Cpus = field(default_factory=Cpus)
    workers: int = 1
    settings: dict = field(default_factory=dict)
    data_dir: Path | None = None

    def __post_init__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database = (self.data_dir or self.workdir) / "app.db"
        self.redis = RedisServer(self.workdir, self.cpus.redis)
        self.app: AppServer | None = None

    def start_redis(self) -> "Stack":
        self.redis.start()
        return self

    def start_app(self) -> AppServer:
        self.app = AppServer(self.module, self.database, self.redis.url(), self.workdir / "app.log",
                             self.cpus.app, self.workers, self.settings)
        return self.app.start()

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
        self.redis.stop()

    def post_mortem(self, error: Exception) -> str:
        """Why a call to the app got no answer: whether its process is still there, its log."""
        process = self.app.process if self.app else None
        state = "not started" if process is None else (
            "still running" if process.poll() is None else f"exited with {process.returncode}")
        log = self.workdir / "app.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return f"{self.module} did not answer ({error!r}); its process is {state}; app.log ends:\n{tail}"


# --- clients beside the load ----------------------------------------------------------------

def writing_client(url: str, timeout: float = 30) -> httpx.Client:
    """For calls that write: an app started with API_TOKEN (inherited from this environment,
    as the load suite takes it) wants it on every write."""
    token = os.environ.get("API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=timeout, headers=headers)


def status_of(call) -> tuple[int, httpx.Response | None]:
    try:
        response = call()
    except httpx.TransportError:
        return 0, None  # no answer: the app dropped the connection or is not there
    return response.status_code, response


class Poller(threading.Thread):
    """Calls `step` every `interval` seconds until stopped, on its own thread."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:  # started
            self.join()


class Monitor(Poller):
    """What an operator would watch during the fault: /health and the fanout backlog."""

    def __init__(self, url: str, interval: float = 0.25):
        super().__init__(interval)
        self.client = httpx.Client(base_url=url, timeout=5)
        self.rows: list[tuple[float, int, int]] = []  # time, /health status, backlog (-1: no /stats)

    def step(self) -> None:
        now = time.time()
        health, _ = status_of(lambda: self.client.get("/health"))
        status, stats = status_of(lambda: self.client.get("/stats"))
        self.rows.append((now, health, stats.json()["fanout_backlog"] if status == 200 else -1))

    def latest(self) -> str:
        if not self.rows:
            return "no /health yet"
        _, health, backlog = self.rows[-1]
        return f"/health {health}, backlog {backlog}"

    def first(self, after: float, condition) -> float | None:
        """Seconds from `after` to the first row at or after it that meets condition(health, backlog)."""
        return next((when - after for when, health, backlog in self.rows
                     if when >= after and condition(health, backlog)), None)


class Witness(Poller):
    """A client that keeps what Locust's samples cannot: the id of every tweet the app
    acknowledged, and every page it was shown. Its pages lie below every tweet of the run
    (before=`below`), so the join on the file afterwards says what they should have been."""

    def __init__(self, url: str, users: list[int], below: int, seed: int = 1, interval: float = 0.03):
        super().__init__(interval)
        self.client = writing_client(url)
        self.users, self.below, self.rng = users, below, random.Random(seed)
        self.tweets: list[tuple[float, int, int, int, str]] = []  # time, status, id, user, text
        self.pages: list[tuple[float, int, int, list[int]]] = []  # time, status, user, ids

    def step(self) -> None:
        user, text = self.rng.choice(self.users), f"witness {len(self.tweets)}"
        now = time.time()
        body = {"user_id": user, "text": text}
        status, response = status_of(lambda: self.client.post("/tweets", json=body))
        self.tweets.append((now, status, response.json()["id"] if status == 201 else 0, user, text))
        reader, now = self.rng.choice(self.users), time.time()
        status, response = status_of(lambda: self.client.get(
            f"/timeline/{reader}", params={"limit": 50, "before": self.below}))
        ids = [tweet["id"] for tweet in response.json()["tweets"]] if status == 200 else []
        self.pages.append((now, status, reader, ids))

    def acknowledged(self) -> list[tuple[int, int, str]]:
        return [(tweet_id, user, text) for _, status, tweet_id, user, text in self.tweets if status == 201]

    def rows(self) -> list[tuple[float, str, int]]:
        return ([(when, "tweet", status) for when, status, *_ in self.tweets]
                + [(when, "read", status) for when, status, *_ in self.pages])

    def wrong_pages(self, database: Path) -> int:
        shown = [(user, self.below, 50, ids) for _, status, user, ids in self.pages if status == 200]
        return checks.check_pages(database, shown)


def write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def sleep_saying(seconds: float, say, what, every: float = 2.0) -> None:
    """Sleeps, printing what() every few seconds: a long run shows it is alive."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(every, left))
        say(what())


def wait_saying(condition, timeout: float, say, what, every: float = 2.0) -> None:
    deadline, said = time.monotonic() + timeout, time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s: {what()}")
        if time.monotonic() - said >= every:
            say(what())
            said = time.monotonic()
        time.sleep(0.05)


# --- redis-kill -------------------------------------------------------------------------------

@dataclass
class RedisKill:
    scale: str = "default"
    rate: float = 300.0          # requests/s, open loop
    clients: int = 64            # Locust users
    read_ratio: float = 65.0     # DDIA's
    lead_in: float = 20.0        # seconds of load before the kill
    down: float = 10.0
    after: float = 30.0          # seconds of load after Redis is back
    timeline_length: int = 800
    celebrity_threshold: int = 10_000
    check_users: int | None = None  # home timelines compared afterwards (None: every user)
    drain_timeout: float = 300.0
    witness_interval: float = 0.2  # seconds between the witness's tweet-and-read steps


def redis_kill(workdir: Path, module: str, knobs: RedisKill, cpus: Cpus = UNPINNED, say=quiet,
               data_dir: Path | None = None) -> dict:
    stack = Stack(workdir, module, cpus, settings={"timeline_length": knobs.timeline_length,
                                                   "celebrity_threshold": knobs.celebrity_threshold},
                  data_dir=data_dir)
    try:
        stack.start_redis()
        say(f"{module}: seeding scale {knobs.scale}")
        graph, history = SCALES[knobs.scale].generate()
        load(stack.database, stack.redis.url(), module, graph, history, knobs.timeline_length,
             knobs.celebrity_threshold, progress=say is not quiet)
        app = stack.start_app()
        return _redis_kill_run(stack, app, knobs, cpus, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _redis_kill_run(stack: Stack, app: AppServer, knobs: RedisKill, cpus: Cpus, say) -> dict:
    database, workdir = stack.database, stack.workdir
    base, tweets_before = checks.last_tweet_id(database), app.stats()["tweets"]
    users = checks.user_ids(database)
    seconds = knobs.lead_in + knobs.down + knobs.after + 2  # + its start, before the kill's clock
    locust = start_locust(app, workdir, database, seconds, knobs.rate, knobs.clients, knobs.read_ratio, cpus)

    def tweeting() -> bool:
        if locust.poll() is not None:
            raise RuntimeError(f"Locust exited: {(workdir / 'locust.log').read_text()[-3000:]}")
        return app.stats()["tweets"] > tweets_before

    monitor = Monitor(app.url)
    witness = Witness(app.url, users, below=base + 1, interval=knobs.witness_interval)
    try:
        wait_until(tweeting, 120, "the Locust run to start tweeting")
        monitor.start()
        witness.start()
        times = _kill_redis_under_load(stack, knobs, locust, monitor, say)
        witness.stop()
        say(f"{app.module}: load over; waiting for the backlog to drain")
        drained = drain(app, knobs.drain_timeout)
    finally:
        for poller in (witness, monitor):
            poller.stop()
        if locust.poll() is None:
            locust.kill()
            locust.wait()
    return _judge_redis_kill(stack, app, knobs, base, users, times, drained, monitor, witness, say)


def _kill_redis_under_load(stack: Stack, knobs: RedisKill, locust: subprocess.Popen, monitor: Monitor,
                           say) -> tuple[float, float, float]:
    """(killed, restarting, back): when Redis died, when its restart began, when it answered."""
    app = stack.app
    say(f"{app.module}: load on; Redis is killed in {knobs.lead_in:g} s")
    sleep_saying(knobs.lead_in, say, lambda: f"  before: {monitor.latest()}")
    killed = time.time()
    stack.redis.kill()
    say(f"{app.module}: redis-server SIGKILLed; down for {knobs.down:g} s")
    sleep_saying(knobs.down, say, lambda: f"  down: {monitor.latest()}")
    restarting = time.time()
    stack.redis.start()
    back = time.time()
    say(f"{app.module}: redis-server restarted empty on port {stack.redis.port}")
    wait_saying(lambda: locust.poll() is not None, knobs.after + 120, say,
                lambda: f"  after: {monitor.latest()}")
    return killed, restarting, back


def start_locust(app: AppServer, workdir: Path, database: Path, seconds: float, rate: float, clients: int,
                 read_ratio: float, cpus: Cpus, *options: str) -> subprocess.Popen:
    """The load suite, open loop, users taken from the SQLite file; samples to
    workdir/samples.csv, its output to workdir/locust.log."""
    command = [str(LOCUST), "-f", str(ROOT / "loadtest"), "--headless", "-u", str(clients),
               "-r", str(clients), "-t", f"{round(seconds)}s", "--host", app.url,
               "--arrival-rate", str(rate), "--read-ratio", str(read_ratio),
               "--database", str(database), "--samples-csv", str(workdir / "samples.csv"),
               "--exit-code-on-error", "0", "--only-summary",
               # Users finish the request under way: one cut off could be a tweet stored unseen.
               "--stop-timeout", "30", *options]
    with open(workdir / "locust.log", "wb") as log:
        return subprocess.Popen(pinned(command, cpus.load), cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def drain(app: AppServer, timeout: float) -> float | None:
    """Seconds until the backlog was 0 (None: it was not, within `timeout`)."""
    began = time.monotonic()
    try:
        wait_until(lambda: app.stats()["fanout_backlog"] == 0, timeout, "the backlog to drain", 0.1)
    except TimeoutError:
        return None
    return time.monotonic() - began


def _judge_redis_kill(stack, app, knobs, base, users, times, drained, monitor, witness, say) -> dict:
    database, workdir = stack.database, stack.workdir
    killed, restarting, back = times
    phases = [("before", 0.0), ("down", killed), ("after", back + RECOVERY_GRACE_S)]
    requests = checks.status_counts(checks.samples(workdir / "samples.csv"), phases)
    witnessed = checks.status_counts(witness.rows(), phases)
    fine = {"read": {200}, "tweet": {201}}
    allowed = {"before": fine, "down": {op: s | {503} for op, s in fine.items()}, "after": fine}
    say(f"{app.module}: checking home timelines of {knobs.check_users or len(users)} users against the join")
    sample = users if knobs.check_users is None else random.Random(3).sample(users, knobs.check_users)
    timelines = checks.check_timelines(app.url, database, sample, above=base)
    audit = checks.audit_tweets(database, base, witness.acknowledged(),
                                acknowledged_without_ids=checks.total(requests, 201))
    stats = app.stats()
    # Calls begun well inside the outage: one begun as Redis came back may see it back.
    health_while_down = sorted({h for when, h, _ in monitor.rows if killed + 0.5 <= when < restarting - 0.5})
    result = {
        "scenario": "redis-kill", "approach": app.module, "knobs": asdict(knobs),
        "redis_down_s": round(back - killed, 3),
        "requests": requests, "witness": witnessed,
        "503s": checks.total(requests, 503) + checks.total(witnessed, 503),
        "connection_errors": checks.total(requests, 0) + checks.total(witnessed, 0),
        "reads_answered_while_down": requests["down"].get("read", {}).get(200, 0),
        "reads_refused_while_down": requests["down"].get("read", {}).get(503, 0),
        "health_while_down": health_while_down,
        "health_back_s": monitor.first(back, lambda health, _: health == 200),
        "backlog_max": max((b for _, _, b in monitor.rows), default=None),
        "backlog_zero_after_restart_s": monitor.first(back, lambda _, backlog: backlog == 0),
        "backlog_drained_after_load_s": drained,
        "tweets": asdict(audit), "witness_pages_wrong": witness.wrong_pages(database),
        "timelines": timelines.as_dict(), "app_stats": stats,
    }
    result["problems"] = _redis_kill_problems(result, allowed, audit, timelines, app.module)
    write_csv(workdir / "monitor.csv", ["time", "health", "backlog"], monitor.rows)
    write_csv(workdir / "witness.csv", ["time", "operation", "status"], sorted(witness.rows()))
    return result


def _redis_kill_problems(result, allowed, audit, timelines, module) -> list[str]:
    problems = checks.status_problems(result["requests"], allowed)
    problems += [f"witness {p}" for p in checks.status_problems(result["witness"], allowed)]
    problems += checks.tweet_problems(audit) + checks.timeline_problems(timelines)
    if result["witness_pages_wrong"]:
        problems.append(f"{result['witness_pages_wrong']} pages the witness read differ from the join")
    if result["health_back_s"] is None and module in FANOUT_APPS:
        problems.append("/health did not answer 200 again after Redis came back")
    if result["backlog_drained_after_load_s"] is None:
        problems.append("the fanout backlog did not drain after the load")
    if module in FANOUT_APPS and result["health_while_down"] != [503]:
        problems.append(f"/health answered {result['health_while_down']} while Redis was down, not 503")
    return problems


# --- app-kill -------------------------------------------------------------------------------

@dataclass
class AppKill:
    followers: int = 50_000
    tweets: int = 20
    resume_timeout: float = 180.0  # the killed worker's lease (30 s) runs out first


def app_kill(workdir: Path, module: str, knobs: AppKill, cpus: Cpus = UNPINNED, say=quiet,
             data_dir: Path | None = None) -> dict:
    # The hybrid fans out only accounts under its threshold: keep this one under it.
    stack = Stack(workdir, module, cpus, settings={"celebrity_threshold": knobs.followers + 1},
                  data_dir=data_dir)
    try:
        stack.start_redis()
        say(f"{module}: one account with {knobs.followers:,} followers, written into SQLite and Redis")
        graph, history = star(knobs.followers)
        load(stack.database, stack.redis.url(), module, graph, history, 800, knobs.followers + 1,
             progress=False)
        app = stack.start_app()
        return _app_kill_run(stack, app, knobs, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _app_kill_run(stack: Stack, app: AppServer, knobs: AppKill, say) -> dict:
    database, cache = stack.database, stack.redis.client()
    followers = checks.followers_of(database, 1)
    with writing_client(app.url) as http:
        tweet_ids = [http.post("/tweets", json={"user_id": 1, "text": f"to everyone {n}"}).json()["id"]
                     for n in range(knobs.tweets)]
    say(f"{app.module}: {knobs.tweets} tweets posted; SIGKILL once a fanout has written a checkpoint")
    wait_until(lambda: any(row["next_follower"] for row in checks.outbox(database)), knobs.resume_timeout,
               "a fanout checkpoint", 0.005)
    app.kill()
    killed = time.time()
    at_kill = [row for row in checks.outbox(database) if row["kind"] == "tweet"]
    held = checks.holders(cache, followers, tweet_ids)
    say(f"{app.module}: killed with {len(at_kill)} fanouts owed; "
        f"{sum(map(len, held.values())):,} of {len(followers) * len(tweet_ids):,} pushes done")
    cache.config_resetstat()
    app.start()
    restarted = time.time()
    say(f"{app.module}: started again on the same files; waiting for the fanout to resume")
    backlog = _watch_backlog(app, len(at_kill), say, knobs.resume_timeout)
    visits = checks.push_visits(cache)  # before anything else here reads a timeline
    return _judge_app_kill(stack, app, knobs, followers, tweet_ids, at_kill, held, visits,
                           killed, restarted, backlog)


def _watch_backlog(app: AppServer, owed: int, say, timeout: float) -> list[tuple[float, int]]:
    rows, began, said = [], time.time(), 0.0
    while time.time() - began < timeout:
        backlog = app.stats()["fanout_backlog"]
        rows.append((time.time(), backlog))
        if time.time() - said > 2:
            say(f"  +{time.time() - began:.1f} s: backlog {backlog} (of {owed} at the kill)")
            said = time.time()
        if backlog == 0:
            break
        time.sleep(0.05)
    return rows


def _judge_app_kill(stack, app, knobs, followers, tweet_ids, at_kill, held, visits, killed, restarted,
                    backlog) -> dict:
    window = checks.checkpoint_window()
    jobs = [_job_at_kill(row, followers, held[row["tweet_id"]]) for row in at_kill]
    needed = sum(len(followers) - len(held[tweet_id]) for tweet_id in tweet_ids)
    final = checks.holders(stack.redis.client(), followers, tweet_ids)
    sample = random.Random(5).sample(followers, min(200, len(followers)))
    timelines = checks.check_timelines(app.url, stack.database, sample, above=0)
    stats = app.stats()
    owed = len(at_kill)
    result = {
        "scenario": "app-kill", "approach": app.module, "knobs": asdict(knobs),
        "fanouts_owed_at_kill": len(at_kill), "checkpoint_window": window, "jobs_at_kill": jobs,
        "pushes_done_at_kill": sum(map(len, held.values())),
        "restart_s": round(restarted - killed, 3),
        "first_fanout_finished_s": next((round(t - restarted, 3) for t, b in backlog if b < owed), None),
        "drained_s": round(backlog[-1][0] - restarted, 3) if backlog and backlog[-1][1] == 0 else None,
        "lease_left_at_restart_s": round(max((r["lease_until"] for r in at_kill), default=0) - restarted, 3),
        "visits_after_restart": visits,
        "visits_expected": sum(job["after_checkpoint"] for job in jobs),
        "repeated_pushes": visits - needed,
        "repeated_pushes_bound": window * sum(job["leased"] for job in jobs),
        "followers_missing_a_tweet": sum(len(followers) - len(final[t]) for t in tweet_ids),
        "timelines": timelines.as_dict(), "app_stats": stats,
    }
    result["problems"] = _app_kill_problems(result, jobs, stats, knobs, timelines)
    write_csv(stack.workdir / "backlog.csv", ["time", "backlog"], backlog)
    return result


def _job_at_kill(row: dict, followers: list[int], holding: set[int]) -> dict:
    """One owed fanout as the kill left it: its checkpoint, and who already has the tweet."""
    passed = bisect.bisect_right(followers, row["next_follower"])
    return {"tweet_id": row["tweet_id"], "checkpoint": row["next_follower"], "leased": row["lease_until"] > 0,
            "after_checkpoint": len(followers) - passed,
            "missing_before_checkpoint": passed - len([f for f in followers[:passed] if f in holding]),
            "held_after_checkpoint": len([f for f in followers[passed:] if f in holding])}


def _app_kill_problems(result, jobs, stats, knobs, timelines) -> list[str]:
    problems = []
    if result["drained_s"] is None:
        problems.append("the fanout did not finish after the restart")
    if result["followers_missing_a_tweet"]:
        problems.append(f"{result['followers_missing_a_tweet']} (follower, tweet) pairs missing from the "
                        "caches")
    if lying := [job["tweet_id"] for job in jobs if job["missing_before_checkpoint"]]:
        problems.append(f"checkpoints passed followers who lack the tweet: tweets {lying}")
    if result["visits_after_restart"] != result["visits_expected"]:
        problems.append(f"the resumed fanout visited {result['visits_after_restart']} timelines, "
                        f"{result['visits_expected']} were after the checkpoints")
    window = result["checkpoint_window"]
    if wide := [job["tweet_id"] for job in jobs if job["held_after_checkpoint"] > window]:
        problems.append(f"more than one checkpoint window ({window}) pushed twice: tweets {wide}")
    if stats["fanout_repeated_deliveries"]:
        problems.append(f"fanout_repeated_deliveries {stats['fanout_repeated_deliveries']}")
    if stats["tweets_fanned_out"] != knobs.tweets:
        problems.append(f"{stats['tweets_fanned_out']} fanouts logged for {knobs.tweets} tweets")
    return problems + checks.timeline_problems(timelines)


# --- writers --------------------------------------------------------------------------------

@dataclass
class Writers:
    clients: int = 64
    seconds: float = 60.0
    users: int = 200             # the shared users every client picks from
    workers: int = 2             # uvicorn --workers on one SQLite file
    timeline_length: int = 800
    celebrity_threshold: int | None = None  # None: a third of the users, so follows cross it
    drain_timeout: float = 300.0


# Reads too: a read of an uncached timeline rebuilds it in Redis, racing the writes' merges.
OPERATIONS = (("tweet", 0.3, {201}), ("follow", 0.27, {204}), ("unfollow", 0.23, {204}),
              ("create_user", 0.1, {201, 409}), ("read", 0.1, {200}))


class Writer(threading.Thread):
    """One client: random writes on the shared users until the deadline, keeping every answer."""

    def __init__(self, url: str, users: list[int], deadline: float, seed: int, clients: int):
        super().__init__(daemon=True)
        self.url, self.users, self.deadline, self.clients = url, users, deadline, clients
        self.rng = random.Random(seed)
        self.answers: list[tuple[float, str, int]] = []
        self.tweets: list[tuple[int, int, str]] = []
        self.created: list[tuple[int, str]] = []
        self.refused_names: list[str] = []

    def run(self) -> None:
        names = [name for name, _, _ in OPERATIONS]
        weights = [weight for _, weight, _ in OPERATIONS]
        with writing_client(self.url, timeout=60) as http:
            while time.time() < self.deadline:
                operation = self.rng.choices(names, weights)[0]
                self.answers.append((time.time(), operation, getattr(self, operation)(http)))

    def tweet(self, http: httpx.Client) -> int:
        user, text = self.rng.choice(self.users), f"w{self.rng.random()}"
        status, response = status_of(lambda: http.post("/tweets", json={"user_id": user, "text": text}))
        if status == 201:
            self.tweets.append((response.json()["id"], user, text))
        return status

    def follow(self, http: httpx.Client) -> int:
        a, b = self.rng.sample(self.users, 2)
        return status_of(lambda: http.put(f"/users/{a}/following/{b}"))[0]

    def unfollow(self, http: httpx.Client) -> int:
        a, b = self.rng.sample(self.users, 2)
        return status_of(lambda: http.delete(f"/users/{a}/following/{b}"))[0]

    def read(self, http: httpx.Client) -> int:
        return status_of(lambda: http.get(f"/timeline/{self.rng.choice(self.users)}"))[0]

    def create_user(self, http: httpx.Client) -> int:
        # Few enough names that clients collide on them: two creates of one name race.
        name = f"New{self.rng.randrange(self.clients * 8)}"
        name = name.lower() if self.rng.random() < 0.5 else name  # and differ only by case
        status, response = status_of(lambda: http.post("/users", json={"username": name}))
        if status == 201:
            self.created.append((response.json()["id"], name))
        elif status == 409:
            self.refused_names.append(name)
        return status


def writers(workdir: Path, module: str, knobs: Writers, cpus: Cpus = UNPINNED, say=quiet,
            data_dir: Path | None = None) -> dict:
    threshold = knobs.celebrity_threshold or max(2, knobs.users // 3)
    stack = Stack(workdir, module, cpus, knobs.workers,
                  {"timeline_length": knobs.timeline_length, "celebrity_threshold": threshold}, data_dir)
    try:
        stack.start_redis()
        app = stack.start_app()
        with writing_client(app.url) as http:
            users = [http.post("/users", json={"username": f"shared{n}"}).json()["id"]
                     for n in range(knobs.users)]
            for user in users:  # cached from the start: the writes must keep the caches right
                http.get(f"/timeline/{user}")
        say(f"{module}: {knobs.clients} clients writing over {knobs.users} shared users through "
            f"{knobs.workers} worker processes for {knobs.seconds:g} s")
        deadline = time.time() + knobs.seconds
        clients = [Writer(app.url, users, deadline, seed, knobs.clients) for seed in range(knobs.clients)]
        for writer in clients:
            writer.start()
        sleep_saying(knobs.seconds, say, lambda: f"  {sum(len(w.answers) for w in clients):,} answers so far")
        for writer in clients:
            writer.join()
        drained = drain(app, knobs.drain_timeout)
        return _judge_writers(stack, app, knobs, users, clients, drained, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _judge_writers(stack, app, knobs, users, clients, drained, say) -> dict:
    database = stack.database
    answers = sorted(answer for writer in clients for answer in writer.answers)
    counts = checks.status_counts(answers, [("run", 0.0)])["run"]
    tweets = [tweet for writer in clients for tweet in writer.tweets]
    audit = checks.audit_tweets(database, 0, tweets)
    created = [user for writer in clients for user in writer.created]
    refused = {name.lower() for writer in clients for name in writer.refused_names}
    say(f"{app.module}: checking every home timeline against the join")
    timelines = checks.check_timelines(app.url, database, checks.user_ids(database), above=0)
    result = {
        "scenario": "writers", "approach": app.module, "knobs": asdict(knobs),
        "requests": len(answers), "requests_per_s": round(len(answers) / knobs.seconds, 1),
        "statuses": counts,
        "5xx": sum(n for statuses in counts.values() for s, n in statuses.items() if s >= 500),
        "busy_503s": sum(statuses.get(503, 0) for statuses in counts.values()),
        "connection_errors": sum(statuses.get(0, 0) for statuses in counts.values()),
        "counter_drift_users": checks.counter_drift(database),
        "tweets": asdict(audit),
        "users_created": len(created), "users_missing": _users_missing(database, users, created, refused),
        "backlog_drained_s": drained, "timelines": timelines.as_dict(), "app_stats": app.stats(),
    }
    allowed = {"run": {name: statuses for name, _, statuses in OPERATIONS}}
    result["problems"] = (checks.status_problems({"run": counts}, allowed) + checks.tweet_problems(audit)
                          + checks.timeline_problems(timelines) + _writers_problems(result))
    write_csv(stack.workdir / "requests.csv", ["time", "operation", "status"], answers)
    return result


def _users_missing(database: Path, shared: list[int], created: list[tuple[int, str]],
                   refused: set[str]) -> int:
    """Acknowledged users not stored as acknowledged, refused names nobody holds, and rows
    no 201 accounts for."""
    with closing(checks.read_only(database)) as db:
        stored = {user_id: name for user_id, name in db.execute("SELECT id, username FROM users")}
    lower = {name.lower() for name in stored.values()}
    wrong = sum(stored.get(user_id) != name for user_id, name in created)
    return wrong + len(refused - lower) + abs(len(stored) - len(shared) - len(created))


def _writers_problems(result) -> list[str]:
    problems = []
    if result["counter_drift_users"]:
        problems.append(f"{result['counter_drift_users']} users' counters differ from their rows")
    if result["users_missing"]:
        problems.append(f"{result['users_missing']} user rows differ from the 201s and 409s")
    if result["backlog_drained_s"] is None:
        problems.append("the fanout backlog did not drain")
    if repeated := result["app_stats"].get("fanout_repeated_deliveries"):
        problems.append(f"{repeated} fanouts were delivered twice: two workers claimed one outbox row")
    return problems


# --- the command ----------------------------------------------------------------------------

SCENARIOS = {"redis-kill": (redis_kill, RedisKill, APPS), "app-kill": (app_kill, AppKill, FANOUT_APPS),
             "writers": (writers, Writers, APPS)}
FIGURES = {
    "redis-kill": ("redis_down_s", "503s", "connection_errors", "reads_answered_while_down",
                   "reads_refused_while_down", "health_back_s", "backlog_max", "backlog_zero_after_restart_s",
                   "backlog_drained_after_load_s", "witness_pages_wrong"),
    "app-kill": ("fanouts_owed_at_kill", "pushes_done_at_kill", "restart_s", "lease_left_at_restart_s",
                 "first_fanout_finished_s", "drained_s", "visits_after_restart", "visits_expected",
                 "repeated_pushes", "repeated_pushes_bound", "followers_missing_a_tweet"),
    "writers": ("requests", "requests_per_s", "5xx", "busy_503s", "connection_errors",
                "counter_drift_users", "users_created", "users_missing", "backlog_drained_s"),
}


def report(result: dict) -> str:
    lines = [f"{result['scenario']} {result['approach']}:"]
    lines += [f"  {name}: {result[name]}" for name in FIGURES[result["scenario"]]]
    if "tweets" in result:
        lines.append("  tweets: " + ", ".join(f"{k} {v}" for k, v in result["tweets"].items()))
    t = result["timelines"]
    lines.append(f"  home timelines vs join: {t['users']} users, {t['pages']} pages, {t['missing']} missing, "
                 f"{t['extra']} extra, {t['duplicates']} twice, {t['misordered']} misordered, "
                 f"{t['failed']} failed")
    stats = result["app_stats"]
    lines.append(f"  /stats: fanout_writes {stats.get('fanout_writes')}, fanout_repeated_deliveries "
                 f"{stats.get('fanout_repeated_deliveries')}, cache {stats.get('cache')}")
    lines.append("  problems: " + ("none" if not result["problems"] else "; ".join(result["problems"])))
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--approach", action="append", choices=APPS,
                        help="repeat for several (default: every app the scenario applies to)")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="default: results/")
    knob = parser.add_argument_group("redis-kill")
    knob.add_argument("--scale", choices=SCALES, help="seeded scale (default: default)")
    knob.add_argument("--rate", type=float, help="open-loop requests/s (default: 300)")
    knob.add_argument("--read-ratio", type=float, help="reads per tweet (default: 65, DDIA's)")
    knob.add_argument("--lead-in", type=float, help="seconds of load before the kill (default: 20)")
    knob.add_argument("--down", type=float, help="seconds Redis stays down (default: 10)")
    knob.add_argument("--after", type=float, help="seconds of load once Redis is back (default: 30)")
    knob.add_argument("--check-users", type=int, help="home timelines to compare (default: all)")
    knob = parser.add_argument_group("app-kill")
    knob.add_argument("--followers", type=int, help="of the one account that tweets (default: 50000)")
    knob.add_argument("--tweets", type=int, help="it posts before the kill (default: 20)")
    knob = parser.add_argument_group("writers")
    knob.add_argument("--seconds", type=float, help="of writing (default: 60)")
    knob.add_argument("--users", type=int, help="shared users the clients write over (default: 200)")
    knob.add_argument("--workers", type=int, help="uvicorn worker processes (default: 2)")
    knob = parser.add_argument_group("redis-kill and writers")
    knob.add_argument("--clients", type=int, help="Locust users / writer threads (default: 64)")
    knob.add_argument("--timeline-length", type=int, help="TIMELINE_LENGTH (default: 800)")
    knob.add_argument("--celebrity-threshold", type=int,
                      help="CELEBRITY_THRESHOLD (default: 10000; writers: a third of --users)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run, knobs_type, applicable = SCENARIOS[args.scenario]
    given = {name: value for name, value in vars(args).items()
             if value is not None and name not in ("scenario", "approach", "out")}
    if stray := sorted(set(given) - set(asdict(knobs_type()))):
        raise SystemExit(f"{args.scenario} takes no {', '.join('--' + n.replace('_', '-') for n in stray)}")
    knobs = knobs_type(**given)
    modules = args.approach or list(applicable)
    if not set(modules) <= set(applicable):
        raise SystemExit(f"{args.scenario} applies to {', '.join(applicable)}")
    folder = args.out.resolve() / f"faults-{args.scenario}-{datetime.now():%Y%m%d-%H%M%S}"
    cpus = Cpus.plan()
    say_stamped(f"{args.scenario}: {', '.join(modules)}; {cpus.describe()}; results in {folder}")
    results, failed = [], False
    for module in modules:
        # The SQLite file (hundreds of MB at the default scale) goes; the records stay.
        with tempfile.TemporaryDirectory(prefix=f"faults-{module}-") as data_dir:
            result = run(folder / module, module, knobs, cpus, say_stamped, Path(data_dir))
        (folder / module / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(report(result), flush=True)
        results.append(result)
        failed |= bool(result["problems"])
    (folder / "result.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    say_stamped(f"results: {folder}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
