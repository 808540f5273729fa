"""The demo's processes, started by bench/processes.py like the bench's: one private
redis-server (the fanout app in database 0, the hybrid in database 1), the three apps on
their own copies of one seeded SQLite file, and one headless Locust per app, all at the
same open-loop rate."""

import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import ROOT, AppServer, RedisServer, stop
from datagen.caches import load_redis
from datagen.load import load_sqlite
from datagen.scales import SCALES

# name in /live -> (module, the datagen cache flavour or None, Redis database)
APPS = {"join": ("approach1", None, 0), "fanout": ("approach2", "fanout", 0),
        "hybrid": ("approach3_hybrid", "hybrid", 1)}
TIMELINE_LENGTH = 800
LOCUST = Path(sys.executable).with_name("locust")
LOCUSTFILES = f"{ROOT / 'loadtest' / 'locustfile.py'},{Path(__file__).with_name('latency_feed.py')}"
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
        self.say("starting uvicorn approach1:app, approach2:app, approach3_hybrid:app")
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
        for name, (_, flavour, db) in APPS.items():
            if flavour:
                load_redis(self.redis.url(db), graph, history, flavour, TIMELINE_LENGTH, self.threshold,
                           force=True, progress=False)
        self.celebrity = most_followed(seeded)

    def app(self, name: str) -> AppServer:
        module, _, db = APPS[name]
        settings = {"timeline_length": TIMELINE_LENGTH, "celebrity_threshold": self.threshold}
        return AppServer(module, self.database(name), self.redis.url(db), self.work / f"{name}.log",
                         settings=settings)

    def start_locust(self, name: str) -> subprocess.Popen:
        users = str(int(max(16, self.rate / 4)))  # ~0.25 s of arrivals: a slow app cannot throttle it
        command = [str(LOCUST), "-f", LOCUSTFILES, "--headless", "--only-summary", "--host",
                   self.apps[name].url, "-u", users, "-r", users, "--arrival-rate", f"{self.rate:g}",
                   "--database", str(self.database(name)), "--live-feed", str(self.feed(name)),
                   "--stop-timeout", "2", "--loglevel", "WARNING"]
        with open(self.work / f"{name}.locust.log", "ab") as log:
            # Own session: Ctrl-C reaches only the demo, which stops every process itself.
            return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def problem(self) -> str | None:
        """A process of ours that died, with where its log is; None while all run."""
        for name, locust in self.locusts.items():
            if locust.poll() is not None:
                return (f"the {name} load generator exited ({locust.returncode}): "
                        f"see {self.work / f'{name}.locust.log'}")
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
