"""redis-kill: Redis SIGKILLed in the middle of an open-loop Locust run, kept down, and
restarted empty on its port (see bench/experiments/faults/__init__.py for the figures)."""

import random
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.experiments.faults import checks, common
from bench.experiments.faults.common import UNPINNED
from bench.experiments.faults.watchers import Monitor, Witness
from bench.output import write_csv
from bench.seeding import seed_stores
from datagen.scales import SCALES
from rig.locust import start_locust
from rig.processes import AppServer, Cpus, Stack, quiet, sleep_saying, wait_saying, wait_until
from timelines.designs import MODULES, by_module

APPLIES_TO = MODULES
RECOVERY_GRACE_S = 1.0  # after Redis is back, requests already under way may still see it gone
FIGURES = (
    "redis_down_s",
    "503s",
    "connection_errors",
    "reads_answered_while_down",
    "reads_refused_while_down",
    "health_back_s",
    "backlog_max",
    "backlog_zero_after_restart_s",
    "backlog_drained_after_load_s",
    "witness_pages_wrong",
)


@dataclass
class Knobs:
    """What a redis-kill measurement may vary; the defaults are `make bench-faults`'s."""

    scale: str = "default"
    rate: float = 300.0  # requests/s, open loop
    clients: int = 64  # Locust users
    read_ratio: float = 65.0  # DDIA's
    lead_in: float = 20.0  # seconds of load before the kill
    down: float = 10.0
    after: float = 30.0  # seconds of load after Redis is back
    timeline_length: int = 800
    celebrity_threshold: int = 10_000
    check_users: int | None = None  # home timelines compared afterwards (None: every user)
    drain_timeout: float = 300.0
    witness_interval: float = 0.2  # seconds between the witness's tweet-and-read steps


def measure(
    workdir: Path, module: str, knobs: Knobs, cpus: Cpus = UNPINNED, say=quiet, data_dir: Path | None = None
) -> dict:
    """The scenario on one app: its figures and "problems" (empty when every check held)."""
    stack = Stack(
        workdir,
        module,
        cpus,
        settings={"timeline_length": knobs.timeline_length, "celebrity_threshold": knobs.celebrity_threshold},
        data_dir=data_dir,
    )
    try:
        stack.start_redis()
        say(f"{module}: seeding scale {knobs.scale}")
        graph, history = SCALES[knobs.scale].generate()
        seed_stores(
            stack.database,
            stack.redis.url(),
            module,
            graph,
            history,
            knobs.timeline_length,
            knobs.celebrity_threshold,
            progress=say is not quiet,
        )
        app = stack.start_app()
        return _under_load(stack, app, knobs, cpus, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _under_load(stack: Stack, app: AppServer, knobs: Knobs, cpus: Cpus, say) -> dict:
    database, workdir = stack.database, stack.workdir
    base, tweets_before = checks.last_tweet_id(database), app.stats()["tweets"]
    users = checks.user_ids(database)
    seconds = knobs.lead_in + knobs.down + knobs.after + 2  # + its start, before the kill's clock
    options = (
        "--arrival-rate",
        str(knobs.rate),
        "--read-ratio",
        str(knobs.read_ratio),
        "--database",
        str(database),
        "--samples-csv",
        str(workdir / "samples.csv"),
        "--exit-code-on-error",
        "0",
        "--only-summary",
        # Users finish the request under way: one cut off could be a tweet stored unseen.
        "--stop-timeout",
        "30",
    )
    locust = start_locust(
        app.url, knobs.clients, seconds, workdir / "locust.log", options, cpus.load, cwd=workdir
    )

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
        drained = app.drained_within(knobs.drain_timeout)
    finally:
        for poller in (witness, monitor):
            poller.stop()
        if locust.poll() is None:
            locust.kill()
            locust.wait()
    return _judge(stack, app, knobs, base, users, times, drained, monitor, witness, say)


def _kill_redis_under_load(
    stack: Stack, knobs: Knobs, locust: subprocess.Popen, monitor: Monitor, say
) -> tuple[float, float, float]:
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
    wait_saying(
        lambda: locust.poll() is not None, knobs.after + 120, say, lambda: f"  after: {monitor.latest()}"
    )
    return killed, restarting, back


def _judge(stack, app, knobs, base, users, times, drained, monitor, witness, say) -> dict:
    database, workdir = stack.database, stack.workdir
    killed, restarting, back = times
    periods = [("before", 0.0), ("down", killed), ("after", back + RECOVERY_GRACE_S)]
    requests = checks.status_counts(checks.samples(workdir / "samples.csv"), periods)
    witnessed = checks.status_counts(witness.rows(), periods)
    fine = {"read": {200}, "tweet": {201}}
    allowed = {"before": fine, "down": {op: s | {503} for op, s in fine.items()}, "after": fine}
    say(f"{app.module}: checking home timelines of {knobs.check_users or len(users)} users against the join")
    sample = users if knobs.check_users is None else random.Random(3).sample(users, knobs.check_users)
    timelines = checks.check_timelines(app.url, database, sample, above=base)
    audit = checks.audit_tweets(
        database, base, witness.acknowledged(), acknowledged_without_ids=checks.total(requests, 201)
    )
    stats = app.stats()
    # Calls begun well inside the outage: one begun as Redis came back may see it back.
    health_while_down = sorted({h for when, h, _ in monitor.rows if killed + 0.5 <= when < restarting - 0.5})
    result = {
        "scenario": "redis-kill",
        "approach": app.module,
        "knobs": asdict(knobs),
        "redis_down_s": round(back - killed, 3),
        "requests": requests,
        "witness": witnessed,
        "503s": checks.total(requests, 503) + checks.total(witnessed, 503),
        "connection_errors": checks.total(requests, 0) + checks.total(witnessed, 0),
        "reads_answered_while_down": requests["down"].get("read", {}).get(200, 0),
        "reads_refused_while_down": requests["down"].get("read", {}).get(503, 0),
        "health_while_down": health_while_down,
        "health_back_s": monitor.first(back, lambda health, _: health == 200),
        "backlog_max": max((b for _, _, b in monitor.rows), default=None),
        "backlog_zero_after_restart_s": monitor.first(back, lambda _, backlog: backlog == 0),
        "backlog_drained_after_load_s": drained,
        "tweets": asdict(audit),
        "witness_pages_wrong": witness.wrong_pages(database),
        "timelines": timelines.as_dict(),
        "app_stats": stats,
    }
    result["problems"] = _problems(result, allowed, audit, timelines, app.module)
    write_csv(workdir / "monitor.csv", monitor.rows, ("time", "health", "backlog"))
    write_csv(workdir / "witness.csv", sorted(witness.rows()), ("time", "operation", "status"))
    return result


def _problems(result, allowed, audit, timelines, module) -> list[str]:
    problems = checks.status_problems(result["requests"], allowed)
    problems += [f"witness {p}" for p in checks.status_problems(result["witness"], allowed)]
    problems += checks.tweet_problems(audit) + checks.timeline_problems(timelines)
    if result["witness_pages_wrong"]:
        problems.append(f"{result['witness_pages_wrong']} pages the witness read differ from the join")
    if result["health_back_s"] is None and by_module(module).fans_out:
        problems.append("/health did not answer 200 again after Redis came back")
    if result["backlog_drained_after_load_s"] is None:
        problems.append("the fanout backlog did not drain after the load")
    if by_module(module).fans_out and result["health_while_down"] != [503]:
        problems.append(f"/health answered {result['health_while_down']} while Redis was down, not 503")
    return problems


def report(result: dict) -> str:
    return common.report(result, FIGURES)
