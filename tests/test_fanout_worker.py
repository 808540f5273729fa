"""The outbox worker as a process of its own (`python -m timelines.worker`, the app started
with FANOUT_WORKER=none), and fair scheduling: a celebrity's fanout does not hold back the
ordinary tweets posted while it runs.

FAIRNESS_FOLLOWERS sets the celebrity's followers (default 100,000); the test prints the
small tweets' lags, so a larger run is a measurement:
    FAIRNESS_FOLLOWERS=300000 .venv/bin/python -m pytest -s -p no:cacheprovider \
        tests/test_fanout_worker.py -k fair
"""

import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.experiments.fanout import ID_STEP, SEED_TWEET, populate, prototype_timelines
from harness import FANOUT_APPS, ROOT
from history import SETTINGS, run_differential
from rig.processes import stop, wait_until
from timelines.cache import TimelineCache, connect

BIG = int(os.environ.get("FAIRNESS_FOLLOWERS", "100000"))
SMALL = 75
LENGTH = 100  # TIMELINE_LENGTH: full timelines of 100k followers fit a test's Redis
FANOUT_LOGGED = "SELECT followers, deliveries, accepted_at, done_at FROM fanout_log WHERE tweet_id = ?"
PROGRESS = "SELECT next_follower FROM fanout_outbox WHERE tweet_id = ?"
HELD = "SELECT next_follower, lease_until FROM fanout_outbox WHERE tweet_id = ?"
CLAIMED = "SELECT 1 FROM fanout_outbox WHERE tweet_id = ? AND lease_until > 0"


class WorkerProcess:
    """`python -m timelines.worker` on an app's stores and settings, its log beside the app's."""

    def __init__(self, app, workers: int):
        self.log = Path(app.log).with_suffix(".worker.log")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "timelines.worker", "--workers", str(workers)],
                cwd=ROOT,
                env=app.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "delivering the outbox" in self.output(), 60, f"the worker to start ({self.log})")

    def output(self) -> str:
        if self.process.poll() is not None and "stopping" not in self.log.read_text():
            raise RuntimeError(f"the worker exited: {self.log.read_text()[-2000:]}")
        return self.log.read_text()

    def stop(self) -> int:
        stop(self.process)  # SIGTERM
        return self.process.returncode


@pytest.fixture
def worker_for():
    """worker_for(app, workers=1) -> a running WorkerProcess; each is stopped after the test
    and must have stopped cleanly."""
    started: list[WorkerProcess] = []

    def start(app, workers: int = 1) -> WorkerProcess:
        started.append(WorkerProcess(app, workers))
        return started[-1]

    yield start
    for worker in started:
        assert worker.stop() == 0, worker.log.read_text()[-2000:]
        assert "fanout worker: stopping" in worker.log.read_text()


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_the_app_leaves_its_outbox_to_the_worker_apart(start_app, worker_for, module):
    app = start_app(module, fanout_worker="none")
    author, reader = app.create_user("author"), app.create_user("reader")
    app.follow(reader, author)
    assert app.timeline(reader) == []  # cached now: only a fanout can put the tweet there
    tweet = app.tweet(author, "for the worker apart")
    time.sleep(0.5)
    assert app.stats()["fanout_backlog"] == 1, "the app delivered with FANOUT_WORKER=none"

    worker_for(app)
    app.wait_for_fanout(timeout=30)
    assert app.timeline(reader) == [tweet["id"]]


def test_apps_served_by_workers_apart_agree_with_the_join(start_app, worker_for):
    apps = [start_app("approach1", **SETTINGS)]
    apps += [start_app(module, fanout_worker="none", **SETTINGS) for module in FANOUT_APPS]
    for app in apps[1:]:
        worker_for(app, workers=2)
    run_differential(apps, seed=7)


def seed_authors(database: Path, big: int, small: int) -> tuple[int, int]:
    """Users 1..big follow a celebrity, the next `small` users an ordinary author. Written
    straight into the app's SQLite file, as a loader would: 100k follows over HTTP would
    take minutes. A tweet with the prebuilt timelines' newest id + 1 keeps new ids above theirs."""
    celebrity, ordinary = big + small + 1, big + small + 2
    with sqlite3.connect(database) as connection:
        users = ((user, f"user{user}", "2026-01-01T00:00:00Z") for user in range(1, ordinary + 1))
        connection.executemany("INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)", users)
        follows = [(user, celebrity) for user in range(1, big + 1)]
        follows += [(user, ordinary) for user in range(big + 1, big + small + 1)]
        connection.executemany("INSERT INTO follows (follower_id, followee_id) VALUES (?, ?)", follows)
        counts = [(big, celebrity), (small, ordinary)]
        connection.executemany("UPDATE users SET followers = ? WHERE id = ?", counts)
        connection.execute(SEED_TWEET, (LENGTH * ID_STEP + 1, celebrity, "seed", "2026-01-01T00:00:00Z"))
    return celebrity, ordinary


async def full_timelines(redis_url: str, followers: int) -> None:
    """Users 1..followers get full cached timelines, as in a steady state: each push then
    costs what it costs there (bench/fanout.py builds them so too)."""
    cache = TimelineCache(connect(redis_url, False), LENGTH)
    try:
        await populate(cache, followers, prototype_timelines(range(cache.keep, LENGTH + 1)))
    finally:
        await cache.redis.aclose()


def logged(database: Path, tweet_id: int) -> tuple[int, int, float, float] | None:
    with sqlite3.connect(database) as connection:
        return connection.execute(FANOUT_LOGGED, (tweet_id,)).fetchone()


def claimed(database: Path, tweet_id: int) -> bool:
    with sqlite3.connect(database) as connection:
        return connection.execute(CLAIMED, (tweet_id,)).fetchone() is not None


@pytest.mark.parametrize("where", ["in-app", "apart"])
def test_a_celebrity_fanout_does_not_hold_back_an_ordinary_tweet(start_app, worker_for, where):
    app = start_app("approach2", timeline_length=LENGTH, fanout_worker="app" if where == "in-app" else "none")
    celebrity, ordinary = seed_authors(app.database, BIG, SMALL)
    asyncio.run(full_timelines(app.redis_url, BIG))
    if where == "apart":
        worker_for(app)
    readers = range(BIG + 1, BIG + SMALL + 1)
    for reader in readers:
        assert app.timeline(reader) == []  # cached: the tweets below reach them by fanout only

    big = app.tweet(celebrity, "to everyone")["id"]
    wait_until(lambda: claimed(app.database, big), 30, "the celebrity's fanout to start")
    small = []
    while logged(app.database, big) is None and len(small) < 20:
        small.append(app.tweet(ordinary, f"ordinary {len(small)}")["id"])
        time.sleep(0.1)
    wait_until(lambda: logged(app.database, big), 300, "the celebrity's fanout to end")
    app.wait_for_fanout(timeout=60)

    followers, deliveries, big_accepted, big_done = logged(app.database, big)
    assert (followers, deliveries) == (BIG, 1)
    lags = []
    for tweet in small:
        followers, deliveries, accepted, done = logged(app.database, tweet)
        assert (followers, deliveries) == (SMALL, 1)
        lags.append(done - accepted)
    print(
        f"\n{where}: {BIG:,} followers fanned out in {big_done - big_accepted:.2f} s; "
        f"{len(small)} tweets of {SMALL} followers meanwhile: lag median {statistics.median(lags):.3f} s, "
        f"max {max(lags):.3f} s"
    )
    _, _, first_accepted, first_done = logged(app.database, small[0])
    assert first_done < big_done, "the ordinary tweet waited for the whole celebrity fanout"
    for reader in (readers[0], readers[-1]):
        assert app.timeline(reader) == small[::-1]


def test_a_stopped_worker_gives_back_its_job_for_the_next_to_resume(start_app, worker_for):
    app = start_app("approach2", timeline_length=LENGTH, fanout_worker="none")
    celebrity, _ = seed_authors(app.database, BIG, SMALL)
    asyncio.run(full_timelines(app.redis_url, BIG))
    first = worker_for(app)
    big = app.tweet(celebrity, "to everyone")["id"]

    def progress() -> int:
        with sqlite3.connect(app.database) as connection:
            row = connection.execute(PROGRESS, (big,)).fetchone()
        return row[0] if row else -1

    wait_until(lambda: progress() > 0, 30, "a checkpoint of the celebrity's fanout")
    first.process.send_signal(signal.SIGINT)
    assert first.process.wait(30) == 0, first.log.read_text()[-2000:]
    with sqlite3.connect(app.database) as connection:
        next_follower, lease_until = connection.execute(HELD, (big,)).fetchone()
    assert 0 < next_follower < BIG and lease_until == 0, "the job was not given back at its checkpoint"

    worker_for(app)
    app.wait_for_fanout(timeout=120)
    _, deliveries, _, _ = logged(app.database, big)
    assert deliveries == 1
