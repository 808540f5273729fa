"""app-kill: the app's process group SIGKILLed half-way through a large fanout, then started
again on the same files (see bench/experiments/faults/__init__.py for the figures)."""

import bisect
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.experiments.faults import checks, common
from bench.experiments.faults.common import UNPINNED, writing_client
from bench.output import write_csv
from bench.seeding import seed_stores
from datagen.graph import Graph
from datagen.history import History
from rig.processes import AppServer, Cpus, Stack, quiet, wait_until
from timelines.designs import FANOUT_MODULES

APPLIES_TO = FANOUT_MODULES
FIGURES = (
    "fanouts_owed_at_kill",
    "pushes_done_at_kill",
    "restart_s",
    "lease_left_at_restart_s",
    "first_fanout_finished_s",
    "drained_s",
    "visits_after_restart",
    "visits_expected",
    "repeated_pushes",
    "repeated_pushes_bound",
    "followers_missing_a_tweet",
)


def star(followers: int) -> tuple[Graph, History]:
    """User 1 followed by users 2..followers+1, and no tweets yet."""
    graph = Graph(followers + 1, np.arange(2, followers + 2, dtype=np.int64), np.ones(followers, np.int64))
    empty = np.empty(0, dtype=np.int64)
    return graph, History(empty, empty.astype(np.int32), empty.astype(np.int32), "")


@dataclass
class Knobs:
    """What an app-kill measurement may vary; the defaults are `make bench-faults`'s."""

    followers: int = 50_000
    tweets: int = 20
    resume_timeout: float = 180.0  # the killed worker's lease (30 s) runs out first


def measure(
    workdir: Path, module: str, knobs: Knobs, cpus: Cpus = UNPINNED, say=quiet, data_dir: Path | None = None
) -> dict:
    """The scenario on one app: its figures and "problems" (empty when every check held)."""
    # The hybrid fans out only accounts under its threshold: keep this one under it.
    stack = Stack(
        workdir, module, cpus, settings={"celebrity_threshold": knobs.followers + 1}, data_dir=data_dir
    )
    try:
        stack.start_redis()
        say(f"{module}: one account with {knobs.followers:,} followers, written into SQLite and Redis")
        graph, history = star(knobs.followers)
        seed_stores(
            stack.database,
            stack.redis.url(),
            module,
            graph,
            history,
            800,
            knobs.followers + 1,
            progress=False,
        )
        app = stack.start_app()
        return _kill_mid_fanout(stack, app, knobs, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _kill_mid_fanout(stack: Stack, app: AppServer, knobs: Knobs, say) -> dict:
    database, cache = stack.database, stack.redis.client()
    followers = checks.followers_of(database, 1)
    with writing_client(app.url) as http:
        tweet_ids = [
            http.post("/tweets", json={"user_id": 1, "text": f"to everyone {n}"}).json()["id"]
            for n in range(knobs.tweets)
        ]
    say(f"{app.module}: {knobs.tweets} tweets posted; SIGKILL once a fanout has written a checkpoint")
    wait_until(
        lambda: any(row["next_follower"] for row in checks.outbox(database)),
        knobs.resume_timeout,
        "a fanout checkpoint",
        0.005,
    )
    app.kill()
    killed = time.time()
    at_kill = [row for row in checks.outbox(database) if row["kind"] == "tweet"]
    held = checks.holders(cache, followers, tweet_ids)
    say(
        f"{app.module}: killed with {len(at_kill)} fanouts owed; "
        f"{sum(map(len, held.values())):,} of {len(followers) * len(tweet_ids):,} pushes done"
    )
    cache.config_resetstat()
    app.start()
    restarted = time.time()
    say(f"{app.module}: started again on the same files; waiting for the fanout to resume")
    backlog = _watch_backlog(app, len(at_kill), say, knobs.resume_timeout)
    visits = checks.push_visits(cache)  # before anything else here reads a timeline
    return _judge(stack, app, knobs, followers, tweet_ids, at_kill, held, visits, killed, restarted, backlog)


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


def _judge(
    stack, app, knobs, followers, tweet_ids, at_kill, held, visits, killed, restarted, backlog
) -> dict:
    window = checks.checkpoint_window()
    jobs = [_job_at_kill(row, followers, held[row["tweet_id"]]) for row in at_kill]
    needed = sum(len(followers) - len(held[tweet_id]) for tweet_id in tweet_ids)
    final = checks.holders(stack.redis.client(), followers, tweet_ids)
    sample = random.Random(5).sample(followers, min(200, len(followers)))
    timelines = checks.check_timelines(app.url, stack.database, sample, above=0)
    stats = app.stats()
    owed = len(at_kill)
    result = {
        "scenario": "app-kill",
        "approach": app.module,
        "knobs": asdict(knobs),
        "fanouts_owed_at_kill": len(at_kill),
        "checkpoint_window": window,
        "jobs_at_kill": jobs,
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
        "timelines": timelines.as_dict(),
        "app_stats": stats,
    }
    result["problems"] = _problems(result, jobs, stats, knobs, timelines)
    write_csv(stack.workdir / "backlog.csv", backlog, ("time", "backlog"))
    return result


def _job_at_kill(row: dict, followers: list[int], holding: set[int]) -> dict:
    """One owed fanout as the kill left it: its checkpoint, and who already has the tweet."""
    passed = bisect.bisect_right(followers, row["next_follower"])
    return {
        "tweet_id": row["tweet_id"],
        "checkpoint": row["next_follower"],
        "leased": row["lease_until"] > 0,
        "after_checkpoint": len(followers) - passed,
        "missing_before_checkpoint": passed - len([f for f in followers[:passed] if f in holding]),
        "held_after_checkpoint": len([f for f in followers[passed:] if f in holding]),
    }


def _problems(result, jobs, stats, knobs, timelines) -> list[str]:
    problems = []
    if result["drained_s"] is None:
        problems.append("the fanout did not finish after the restart")
    if result["followers_missing_a_tweet"]:
        problems.append(
            f"{result['followers_missing_a_tweet']} (follower, tweet) pairs missing from the caches"
        )
    if lying := [job["tweet_id"] for job in jobs if job["missing_before_checkpoint"]]:
        problems.append(f"checkpoints passed followers who lack the tweet: tweets {lying}")
    if result["visits_after_restart"] != result["visits_expected"]:
        problems.append(
            f"the resumed fanout visited {result['visits_after_restart']} timelines, "
            f"{result['visits_expected']} were after the checkpoints"
        )
    window = result["checkpoint_window"]
    if wide := [job["tweet_id"] for job in jobs if job["held_after_checkpoint"] > window]:
        problems.append(f"more than one checkpoint window ({window}) pushed twice: tweets {wide}")
    if stats["fanout_repeated_deliveries"]:
        problems.append(f"fanout_repeated_deliveries {stats['fanout_repeated_deliveries']}")
    if stats["tweets_fanned_out"] != knobs.tweets:
        problems.append(f"{stats['tweets_fanned_out']} fanouts logged for {knobs.tweets} tweets")
    return problems + checks.timeline_problems(timelines)


def report(result: dict) -> str:
    return common.report(result, FIGURES)
