"""The load suite (loadtest/), run the way a person runs it: `locust -f loadtest/ --headless`
as a subprocess (rig/locust.py, from another directory) against each app, started fresh.

Checked: no failures (exit code and Locust's own counts), the read:tweet ratio in the
samples CSV, microsecond latencies and the count column, /stats in the JSON next to it;
the open loop's achieved rate; a seeded app found through --database and over HTTP; a
--processes 2 run shipping the population to its workers and their samples back.
"""

import csv
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import APPS, AppServer
from rig.locust import start_locust
from rig.processes import ROOT, stop

READ_RATIO = 10  # tweets frequent enough to count in a few seconds (the default is DDIA's 65)
SMALL_GRAPH = ["--graph-users", "100", "--graph-followees", "10", "--graph-tweets", "2"]
HEADER = ["time", "operation", "status", "latency_us", "count"]


class LocustOutput:
    """The files one Locust invocation wrote, and what it printed."""

    def __init__(self, workdir: Path, name: str):
        self.samples_path = workdir / f"{name}.csv"
        self.stats_path = workdir / f"{name}.stats.json"
        self.locust_json = workdir / f"{name}-locust"  # Locust appends .json
        self.output = ""

    @property
    def rows(self) -> list[dict]:
        with open(self.samples_path, newline="") as file:
            reader = csv.DictReader(file)
            assert reader.fieldnames == HEADER
            return list(reader)

    @property
    def stats(self) -> dict:
        return json.loads(self.stats_path.read_text())

    @property
    def locust_stats(self) -> list[dict]:
        return json.loads(self.locust_json.with_suffix(".json").read_text())


def run_locust(
    app: AppServer, workdir: Path, name: str, *options: str, seconds: int = 4, users: int = 20
) -> LocustOutput:
    run = LocustOutput(workdir, name)
    log = workdir / f"{name}.log"
    options = (
        "--samples-csv",
        str(run.samples_path),
        "--json-file",
        str(run.locust_json),
        "--read-ratio",
        str(READ_RATIO),
        *options,
    )
    locust = start_locust(app.url, users, seconds, log, options, cwd=workdir)
    try:
        returncode = locust.wait(timeout=120)
    finally:
        stop(locust)  # a run past its timeout is not left behind
    run.output = log.read_text()
    assert returncode == 0, run.output[-4000:]
    return run


def assert_clean(run: LocustOutput) -> None:
    """Zero failures by Locust's count and by ours, every request in the samples."""
    entries = run.locust_stats
    requests = sum(entry["num_requests"] for entry in entries)
    assert requests > 0
    assert sum(entry["num_failures"] for entry in entries) == 0, run.output[-4000:]
    rows = run.rows
    assert len(rows) == requests
    assert {row["status"] for row in rows} <= {"200", "201"}
    assert all(row["status"] == ("201" if row["operation"] == "tweet" else "200") for row in rows)
    operations = run.stats["loadtest"]["operations"]
    assert operations["errors"] == 0
    assert operations["read"] + operations["tweet"] == len(rows)


def profiles(app: AppServer) -> dict[int, dict]:
    found, user_id = {}, 1
    while (response := app.http.get(f"/users/{user_id}")).status_code == 200:
        found[user_id] = response.json()
        user_id += 1
    return found


def assert_counts_are_the_users(rows: list[dict], users: dict[int, dict]) -> None:
    """A tweet's count is some author's followers, a read's some reader's followees."""
    followers = {profile["followers"] for profile in users.values()}
    following = {profile["following"] for profile in users.values()}
    assert {int(row["count"]) for row in rows if row["operation"] == "tweet"} <= followers
    assert {int(row["count"]) for row in rows if row["operation"] == "read"} <= following


def seed(app: AppServer, users: int = 30) -> None:
    ids = [app.create_user(f"user{k}") for k in range(1, users + 1)]
    for index, user in enumerate(ids):
        for step in (1, 2, 5):
            app.follow(user, ids[(index + step) % users])
        app.tweet(user, f"hello from {user}")


def open_loop_rate(rows: list[dict]) -> float:
    times = sorted(float(row["time"]) for row in rows)
    return (len(times) - 1) / (times[-1] - times[0])


@pytest.mark.parametrize("module", APPS)
def test_against_an_empty_app(module, start_app, tmp_path):
    app = start_app(module)
    run = run_locust(app, tmp_path, module, *SMALL_GRAPH)

    assert_clean(run)
    rows = run.rows
    # The graph was built through the API first: 100 users, as asked.
    users = profiles(app)
    assert len(users) == 100
    assert sum(profile["following"] for profile in users.values()) > 100
    assert "built over HTTP" in run.stats["loadtest"]["population"]
    # DDIA's mix, at the ratio asked for: tweets are a Bernoulli draw with p = 1/(1 + ratio).
    tweets = sum(row["operation"] == "tweet" for row in rows)
    p = 1 / (1 + READ_RATIO)
    assert len(rows) > 500
    assert abs(tweets / len(rows) - p) < 4 * math.sqrt(p * (1 - p) / len(rows)), (tweets, len(rows))
    # Microseconds, not Locust's whole milliseconds; counts from the users' profiles.
    latencies = [int(row["latency_us"]) for row in rows]
    assert min(latencies) > 0
    assert sum(latency % 1000 != 0 for latency in latencies) > 0.9 * len(latencies)
    assert all(abs(float(row["time"]) - time.time()) < 300 for row in rows)  # unix seconds
    assert_counts_are_the_users(rows, users)
    # The app's /stats, as it answered at the end of the run.
    stats = run.stats
    assert isinstance(stats["fanout_backlog"], int)
    assert stats["approach"] in ("join-on-read", "fanout-on-write", "hybrid")
    assert "fanout_backlog=" in run.output


def test_open_loop_on_a_seeded_database(start_app, tmp_path):
    app = start_app("approach1")
    seed(app)
    run = run_locust(app, tmp_path, "open", "--arrival-rate", "200", "--database", str(app.database))

    assert_clean(run)
    summary = run.stats["loadtest"]
    assert summary["population"] == f"database {app.database}"
    assert len(profiles(app)) == 30  # nothing was built
    assert summary["openloop"]["achieved_rate"] == pytest.approx(200, rel=0.10)
    assert open_loop_rate(run.rows) == pytest.approx(200, rel=0.10)
    assert "open loop: target 200.0 req/s" in run.output
    assert_counts_are_the_users(run.rows, profiles(app))


def test_processes_share_one_schedule_and_one_csv(start_app, tmp_path):
    app = start_app("approach1")
    seed(app)
    run = run_locust(app, tmp_path, "distributed", "--processes", "2", "--arrival-rate", "200", seconds=3)

    assert_clean(run)  # every worker's requests reached the master's CSV
    summary = run.stats["loadtest"]
    assert summary["processes"] == 2
    assert summary["population"].startswith("HTTP: all 30 users")  # found once, sent to workers
    assert summary["openloop"]["achieved_rate"] == pytest.approx(200, rel=0.10)
    assert open_loop_rate(run.rows) == pytest.approx(200, rel=0.10)
    assert_counts_are_the_users(run.rows, profiles(app))


def test_the_load_generator_measures_itself(tmp_path):
    """`python -m bench loadgen`: the suite against an app that does nothing, as a person runs it."""
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "loadgen", "--seconds", "6", "--users", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr[-3000:]
    line = finished.stdout.strip().splitlines()[-1]
    figures = re.match(r"(\d+) requests/s over (\d+) s of steady state.* (\d+) failures$", line)
    assert figures, line
    requests_per_s, seconds, failures = map(int, figures.groups())
    assert requests_per_s > 100 and seconds >= 1 and failures == 0, line
    assert "samples on (" in line
