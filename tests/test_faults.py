"""Faults, with real processes and real signals, at a size CI can afford. bench/experiments/faults/ measures
the same scenarios at full size (`python -m bench faults SCENARIO`); both judge a measurement
with bench/experiments/faults/checks.py, and its "problems" are everything those checks found wrong.

- Redis SIGKILLed in the middle of a Locust run and restarted empty on its port: no answer
  but 2xx and 503, none missing; reads answered from SQLite meanwhile; /health and the
  backlog recover without touching the app; afterwards every acknowledged tweet is in every
  follower's home timeline, page by page over HTTP against the join on the SQLite file.
- The app's process group SIGKILLed half-way through a 25,000-follower fanout, then started
  again on the same files: the fanout resumes exactly at its checkpoints (Redis counts the
  timelines visited), pushes at most one checkpoint window twice, and reaches everyone.
- 64 clients writing over 16 shared users through two worker processes: no 5xx and no
  busy-database 503, counters equal to rows, each acknowledged tweet stored once, and every
  home timeline equal to the join, even when a follow and an unfollow of one pair reach
  Redis in the opposite order to their commits (timelines/feed.settle).
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.experiments.faults import app_kill, redis_kill, writers
from harness import APPS, FANOUT_APPS

# TIMELINE_LENGTH under a page (200) makes first pages run beyond the cache; the threshold
# makes the tiny scale's most followed accounts the hybrid's celebrities.
REDIS_KILL = redis_kill.Knobs(
    scale="tiny",
    rate=150,
    clients=24,
    read_ratio=5,
    lead_in=2,
    down=3,
    after=3,
    timeline_length=100,
    celebrity_threshold=200,
    drain_timeout=60,
    witness_interval=0.03,
)
APP_KILL = app_kill.Knobs(followers=25_000, tweets=8, resume_timeout=90)
# Few users, so that clients often follow and unfollow the same pair at once; timelines of
# the default length, so that the loser of such a race stays visible (a short one trims it
# away); a threshold a little above the followers a user ends up with, so that some accounts
# cross it both ways and most stay cached.
WRITERS = writers.Knobs(
    clients=64, seconds=6, users=16, workers=2, timeline_length=800, celebrity_threshold=12, drain_timeout=60
)


def requests_in(counts: dict, operation: str) -> int:
    return sum(counts.get(operation, {}).values())


@pytest.mark.parametrize("module", APPS)
def test_redis_killed_under_load_and_restarted_empty(tmp_path, module):
    result = redis_kill.measure(tmp_path, module, REDIS_KILL)

    assert result["problems"] == [], redis_kill.report(result)
    down = result["requests"]["down"]
    assert requests_in(down, "read") >= 100 and requests_in(down, "tweet") >= 20, f"little load: {down}"
    assert result["witness"]["down"]["tweet"].get(201, 0) > 0, "no tweet id was kept from the outage"
    # The contract allows a 503; the fanout designs mean to answer from SQLite instead.
    assert result["reads_refused_while_down"] <= 0.05 * requests_in(down, "read"), redis_kill.report(result)
    if module in FANOUT_APPS:
        assert result["backlog_max"] > 0, "tweets posted while Redis was down should wait in the outbox"
        assert result["app_stats"]["cache"]["database_reads"] > 0
        assert result["app_stats"]["cache"]["regenerations"] > 0, "Redis came back empty: nothing rebuilt?"
    else:
        assert result["503s"] == 0, "join-on-read does not need Redis"


@pytest.fixture(scope="module")
def app_kills(tmp_path_factory) -> dict[str, dict]:
    """Both fanout apps at once, each with its own Redis: most of a run is the killed
    worker's lease (30 s) running out, and both can wait for theirs together."""
    with ThreadPoolExecutor(len(FANOUT_APPS)) as pool:
        futures = {
            module: pool.submit(app_kill.measure, tmp_path_factory.mktemp(module), module, APP_KILL)
            for module in FANOUT_APPS
        }
        return {module: future.result() for module, future in futures.items()}


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_app_killed_mid_fanout_resumes_at_its_checkpoints(app_kills, module):
    result = app_kills[module]

    assert result["problems"] == [], app_kill.report(result)
    all_pushes = APP_KILL.followers * APP_KILL.tweets
    assert 0 < result["pushes_done_at_kill"] < all_pushes, "the kill did not land mid-fanout"
    assert result["visits_after_restart"] == result["visits_expected"]
    assert 0 <= result["repeated_pushes"] <= result["repeated_pushes_bound"]
    assert result["followers_missing_a_tweet"] == 0
    assert result["app_stats"]["fanout_repeated_deliveries"] == 0
    assert result["app_stats"]["tweets_fanned_out"] == APP_KILL.tweets


@pytest.mark.parametrize("module", APPS)
def test_concurrent_writers_through_two_workers(tmp_path, module):
    result = writers.measure(tmp_path, module, WRITERS)

    assert result["problems"] == [], writers.report(result)
    assert (result["5xx"], result["busy_503s"], result["connection_errors"]) == (0, 0, 0)
    assert result["counter_drift_users"] == 0
    assert result["requests"] > 1000, "too little contention to mean anything"
    assert result["statuses"]["create_user"].get(409, 0) > 0, "no two clients raced for one username"
