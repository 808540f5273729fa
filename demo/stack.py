"""The demo's processes, started by rig/processes.py like the bench's: one private
redis-server (the fanout app in database 0, the hybrid in database 1), the three apps on
their own copies of one seeded SQLite file, and one headless Locust per app, all at the
same open-loop rate."""

import shutil
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from datagen.caches import load_redis
from datagen.load import load_sqlite
from datagen.scales import SCALES
from rig.locust import LOADTEST, start_locust
from rig.processes import AppServer, RedisServer, stop
from timelines.designs import DESIGNS, FANOUT_NAMES, by_name

APPS = tuple(design.name for design in DESIGNS)  # as /live names them
REDIS_DB = {name: db for db, name in enumerate(FANOUT_NAMES)}  # one Redis, a database each
TIMELINE_LENGTH = 800
LOCUSTFILES = (LOADTEST / "locustfile.py", Path(__file__).with_name("latency_feed.py"))
MOST_FOLLOWED = "SELECT id, followers FROM users ORDER BY followers DESC, id LIMIT 1"
# The fanout worker walks followers in id order: the highest id is the last one served.
LAST_FOLLOWER = "SELECT max(follower_id) FROM follows WHERE followee_id = ?"


@dataclass(frozen=True)
class Celebrity:
    user_id: int
    followers: int
    last_follower: int


@dataclass
class Stack:
    work: Path
    scale: str
    threshold: int
    rate: float
    say: callable = print
    redis: RedisServer | None = None
    apps: dict[str, AppServer] = field(default_factory=dict)
    locusts: dict[str, subprocess.Popen] = field(default_factory=dict)
    celebrity: Celebrity | None = None

    def feed(self, name: str) -> Path:
        return self.work / f"{name}.latency.csv"

    def database(self, name: str) -> Path:
        return self.work / f"{name}.db"

    def start(self) -> "Stack":
        self.redis = RedisServer(self.work).start()
        self.say(f"redis-server on port {self.redis.port} (fanout in db 0, hybrid in db 1)")
        self.seed()
        self.say("starting " + ", ".join(f"uvicorn {design.module}:app" for design in DESIGNS))
        # Known before they start, so that stop() finds every one even if another fails to start.
        self.apps = {name: self.app(name) for name in APPS}
        with ThreadPoolExecutor(len(APPS)) as pool:
            list(pool.map(AppServer.start, self.apps.values()))
        self.say(f"load: {self.rate:g} requests/s open loop on each app, DDIA's 65 reads per tweet")
        self.locusts = {name: self.start_locust(name) for name in APPS}
        return self

    def seed(self) -> None:
        self.say(f"seeding {self.scale} (celebrity threshold {self.threshold} followers)")
        graph, history = SCALES[self.scale].generate()
        seeded = self.work / "seeded.db"
        load_sqlite(seeded, graph, history, self.threshold, force=True, progress=False)
        for name in APPS:
            shutil.copyfile(seeded, self.database(name))
        for name, db in REDIS_DB.items():
            load_redis(
                self.redis.url(db),
                graph,
                history,
                name,
                TIMELINE_LENGTH,
                self.threshold,
                force=True,
                progress=False,
            )
        self.celebrity = most_followed(seeded)

    def app(self, name: str) -> AppServer:
        settings = {"timeline_length": TIMELINE_LENGTH, "celebrity_threshold": self.threshold}
        return AppServer(
            by_name(name).module,
            self.database(name),
            self.redis.url(REDIS_DB.get(name, 0)),
            self.work / f"{name}.log",
            settings=settings,
        )

    def start_locust(self, name: str) -> subprocess.Popen:
        users = int(max(16, self.rate / 4))  # ~0.25 s of arrivals: a slow app cannot throttle it
        options = (
            "--only-summary",
            "--arrival-rate",
            f"{self.rate:g}",
            "--database",
            str(self.database(name)),
            "--live-feed",
            str(self.feed(name)),
            "--stop-timeout",
            "2",
            "--loglevel",
            "WARNING",
        )
        return start_locust(
            self.apps[name].url,
            users,
            None,
            self.work / f"{name}.locust.log",
            options,
            locustfiles=LOCUSTFILES,
            own_session=True,
        )

    def problem(self) -> str | None:
        """A process of ours that died, with where its log is; None while all run."""
        for name, locust in self.locusts.items():
            if locust.poll() is not None:
                return (
                    f"the {name} load generator exited ({locust.returncode}): "
                    f"see {self.work / f'{name}.locust.log'}"
                )
        for name, app in self.apps.items():
            if app.process.poll() is not None:
                return f"the {name} app exited: see {app.log}"
        return None

    def stop(self) -> None:
        for locust in self.locusts.values():
            locust.terminate()
        for locust in self.locusts.values():
            stop(locust, timeout=10)
        for app in self.apps.values():
            app.stop()
        if self.redis is not None:
            self.redis.stop()


def most_followed(database: Path) -> Celebrity:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        user_id, followers = db.execute(MOST_FOLLOWED).fetchone()
        (last,) = db.execute(LAST_FOLLOWER, (user_id,)).fetchone()
    return Celebrity(user_id, followers, last)
