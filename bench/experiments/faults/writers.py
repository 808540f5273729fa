"""writers: many clients writing over a few shared users through two uvicorn worker
processes on one SQLite file (see bench/experiments/faults/__init__.py for the figures)."""

import random
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.experiments.faults import checks, common
from bench.experiments.faults.common import UNPINNED, status_of, writing_client
from bench.output import write_csv
from rig.processes import Cpus, Stack, quiet, sleep_saying
from timelines.designs import MODULES

APPLIES_TO = MODULES
FIGURES = (
    "requests",
    "requests_per_s",
    "5xx",
    "busy_503s",
    "connection_errors",
    "counter_drift_users",
    "users_created",
    "users_missing",
    "backlog_drained_s",
)


@dataclass
class Knobs:
    """What a writers measurement may vary; the defaults are `make bench-faults`'s."""

    clients: int = 64
    seconds: float = 60.0
    users: int = 200  # the shared users every client picks from
    workers: int = 2  # uvicorn --workers on one SQLite file
    timeline_length: int = 800
    celebrity_threshold: int | None = None  # None: a third of the users, so follows cross it
    drain_timeout: float = 300.0


# Reads too: a read of an uncached timeline rebuilds it in Redis, racing the writes' merges.
OPERATIONS = (
    ("tweet", 0.3, {201}),
    ("follow", 0.27, {204}),
    ("unfollow", 0.23, {204}),
    ("create_user", 0.1, {201, 409}),
    ("read", 0.1, {200}),
)


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


def measure(
    workdir: Path, module: str, knobs: Knobs, cpus: Cpus = UNPINNED, say=quiet, data_dir: Path | None = None
) -> dict:
    """The scenario on one app: its figures and "problems" (empty when every check held)."""
    threshold = knobs.celebrity_threshold or max(2, knobs.users // 3)
    stack = Stack(
        workdir,
        module,
        cpus,
        knobs.workers,
        {"timeline_length": knobs.timeline_length, "celebrity_threshold": threshold},
        data_dir,
    )
    try:
        stack.start_redis()
        app = stack.start_app()
        with writing_client(app.url) as http:
            users = [
                http.post("/users", json={"username": f"shared{n}"}).json()["id"] for n in range(knobs.users)
            ]
            for user in users:  # cached from the start: the writes must keep the caches right
                http.get(f"/timeline/{user}")
        say(
            f"{module}: {knobs.clients} clients writing over {knobs.users} shared users through "
            f"{knobs.workers} worker processes for {knobs.seconds:g} s"
        )
        deadline = time.time() + knobs.seconds
        clients = [Writer(app.url, users, deadline, seed, knobs.clients) for seed in range(knobs.clients)]
        for writer in clients:
            writer.start()
        sleep_saying(knobs.seconds, say, lambda: f"  {sum(len(w.answers) for w in clients):,} answers so far")
        for writer in clients:
            writer.join()
        drained = app.drained_within(knobs.drain_timeout)
        return _judge(stack, app, knobs, users, clients, drained, say)
    except httpx.TransportError as error:
        raise RuntimeError(stack.post_mortem(error)) from error
    finally:
        stack.stop()


def _judge(stack, app, knobs, users, clients, drained, say) -> dict:
    database = stack.database
    answers = sorted(answer for writer in clients for answer in writer.answers)
    counts = checks.status_counts(answers, [("whole", 0.0)])["whole"]
    tweets = [tweet for writer in clients for tweet in writer.tweets]
    audit = checks.audit_tweets(database, 0, tweets)
    created = [user for writer in clients for user in writer.created]
    refused = {name.lower() for writer in clients for name in writer.refused_names}
    say(f"{app.module}: checking every home timeline against the join")
    timelines = checks.check_timelines(app.url, database, checks.user_ids(database), above=0)
    result = {
        "scenario": "writers",
        "approach": app.module,
        "knobs": asdict(knobs),
        "requests": len(answers),
        "requests_per_s": round(len(answers) / knobs.seconds, 1),
        "statuses": counts,
        "5xx": sum(n for statuses in counts.values() for s, n in statuses.items() if s >= 500),
        "busy_503s": sum(statuses.get(503, 0) for statuses in counts.values()),
        "connection_errors": sum(statuses.get(0, 0) for statuses in counts.values()),
        "counter_drift_users": checks.counter_drift(database),
        "tweets": asdict(audit),
        "users_created": len(created),
        "users_missing": _users_missing(database, users, created, refused),
        "backlog_drained_s": drained,
        "timelines": timelines.as_dict(),
        "app_stats": app.stats(),
    }
    allowed = {"whole": {name: statuses for name, _, statuses in OPERATIONS}}
    result["problems"] = (
        checks.status_problems({"whole": counts}, allowed)
        + checks.tweet_problems(audit)
        + checks.timeline_problems(timelines)
        + _problems(result)
    )
    write_csv(stack.workdir / "requests.csv", answers, ("time", "operation", "status"))
    return result


def _users_missing(
    database: Path, shared: list[int], created: list[tuple[int, str]], refused: set[str]
) -> int:
    """Acknowledged users not stored as acknowledged, refused names nobody holds, and rows
    no 201 accounts for."""
    with closing(checks.read_only(database)) as db:
        stored = {user_id: name for user_id, name in db.execute("SELECT id, username FROM users")}
    lower = {name.lower() for name in stored.values()}
    wrong = sum(stored.get(user_id) != name for user_id, name in created)
    return wrong + len(refused - lower) + abs(len(stored) - len(shared) - len(created))


def _problems(result) -> list[str]:
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


def report(result: dict) -> str:
    return common.report(result, FIGURES)
