"""The one process harness: a free port, a private redis-server, an app under
`uvicorn approachN:app` waited for until it answers, CPU pinning, and a Stack of one Redis
and one app. The bench, the fault scenarios, the soak and the tests all start processes
through this module, so a difference between them is never a difference in how the
processes were started.

CPU plan (`Cpus.plan()`): the app gets the first CPU to itself; Redis and the load
generator share the rest (on 2 CPUs, both on the second). The app's fanout worker and
its SQLite threads live in the app's process, so they compete with its reads, as they
would in production; the load generator never steals the app's CPU.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
NO_REDIS = (
    "redis-server not found: run scripts/ensure-redis-server (as root it installs Debian's "
    "package), or install it yourself: apt-get install redis-server / brew install redis"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    """condition()'s first truthy value, polled every `interval`; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def say_stamped(line: str) -> None:
    """The default progress line of a long run: the wall-clock time, then the line."""
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def quiet(_: str) -> None:
    """`say` for runs that print nothing (the tests)."""


def sleep_saying(seconds: float, say, what, every: float = 2.0) -> None:
    """Sleeps, printing what() every few seconds: a long run shows it is alive."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(every, left))
        say(what())


def wait_saying(condition, timeout: float, say, what, every: float = 2.0) -> None:
    """wait_until, printing what() every few seconds meanwhile."""
    deadline, said = time.monotonic() + timeout, time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s: {what()}")
        if time.monotonic() - said >= every:
            say(what())
            said = time.monotonic()
        time.sleep(0.05)


@dataclass(frozen=True)
class Cpus:
    app: tuple[int, ...] = ()
    redis: tuple[int, ...] = ()
    load: tuple[int, ...] = ()

    @classmethod
    def plan(cls) -> "Cpus":
        if not hasattr(os, "sched_getaffinity") or not shutil.which("taskset"):
            return cls()
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls()
        rest = tuple(cpus[1:])
        # With 3 CPUs or more Redis gets one to itself; on 2 it shares with the load.
        return cls(app=(cpus[0],), redis=rest[:1], load=rest if len(rest) < 2 else rest[1:])

    @classmethod
    def equal(cls) -> "Cpus":
        """The bench's plan: a design's server side (its app and its Redis) on the first half of
        the CPUs, the load generator on the rest, so that no design's store runs beside the
        load while another's (SQLite, inside the app) shares the app's core."""
        if not hasattr(os, "sched_getaffinity") or not shutil.which("taskset"):
            return cls()
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls()
        server = tuple(cpus[: len(cpus) // 2])
        return cls(app=server, redis=server, load=tuple(cpus[len(cpus) // 2 :]))

    def as_json(self) -> dict:
        return {"app": list(self.app), "redis": list(self.redis), "load": list(self.load)}

    def describe(self) -> str:
        if not self.app:
            return "not pinned (taskset missing or a single CPU): app, Redis and load share all CPUs"
        return f"app on CPU {list(self.app)}, redis-server on {list(self.redis)}, load on {list(self.load)}"


def pinned(command: list[str], cpus: tuple[int, ...]) -> list[str]:
    if not cpus:
        return command
    return ["taskset", "-c", ",".join(map(str, cpus)), *command]


def stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(eq=False)  # a process is itself: equal, and hashed, by identity
class RedisServer:
    """A redis-server of our own, persistence off: the bench may flush, kill and restart it."""

    directory: Path
    cpus: tuple[int, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    arguments: tuple[str, ...] = ()  # more of redis-server's flags (a cluster node's, say)

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit(NO_REDIS)
        # Absolute: redis-server changes into --dir before it opens --logfile.
        self.directory = self.directory.resolve()
        log = self.directory / f"redis-{self.port}.log"
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(log),
            *self.arguments,
        ]
        # Own session: a Ctrl-C reaches only the bench, which stops the server itself.
        self.process = subprocess.Popen(
            pinned(command, self.cpus),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port} (log: {log})")
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited at start (port {self.port}): see {self.directory}")
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return client.ping()
        except redis.ConnectionError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db)

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def kill(self) -> None:
        """SIGKILL: the crash a fault scenario inflicts (nothing saved, clients cut off)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop(self.process)

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(self, *_) -> None:
        self.stop()


@dataclass(eq=False)  # a process is itself: equal, and hashed, by identity
class AppServer:
    """`uvicorn MODULE:app` with identical flags for every approach; settings by environment."""

    module: str
    database: Path
    redis_url: str
    log: Path
    cpus: tuple[int, ...] = ()
    workers: int = 1
    settings: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment the app runs with: ours, plus its stores and settings."""
        return {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "REDIS_URL": self.redis_url,
            **{name.upper(): str(value) for name, value in self.settings.items()},
        }

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{self.module}:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        return pinned(command, self.cpus)

    def start(self, timeout: float = 120) -> "AppServer":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.answers, timeout, f"{self.module} to start (log: {self.log})")
        return self

    def answers(self) -> bool:
        """Ready once /health gives any HTTP answer. uvicorn accepts connections only after
        the app's lifespan has opened its stores, so an answer means the app is up; a 200
        would be wrong to wait for, since a fanout app answers 503 while Redis is down and
        some runs start it so (tests/test_without_redis.py, a Redis killed mid-scenario)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(f"{self.url}/health", timeout=2)
        except httpx.TransportError:
            return False
        return True

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/stats", timeout=30).json()

    def wait_for_fanout(self, timeout: float = 60) -> float:
        """Seconds until /stats said fanout_backlog 0; TimeoutError if it did not within `timeout`."""
        began = time.monotonic()
        wait_until(
            lambda: self.stats()["fanout_backlog"] == 0, timeout, f"{self.module}'s backlog to drain", 0.1
        )
        return time.monotonic() - began

    def drained_within(self, timeout: float) -> float | None:
        """wait_for_fanout's seconds, or None: a figure for runs that report a backlog left over."""
        try:
            return self.wait_for_fanout(timeout)
        except TimeoutError:
            return None

    def kill(self) -> None:
        """SIGKILL the whole process group: uvicorn and, with --workers, its children."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(self, *_) -> None:
        self.stop()


@dataclass(eq=False)
class Stack:
    """A private redis-server and one app on it: logs in `workdir`, the SQLite file in
    `data_dir` (default: `workdir` too), for the runs that own both (faults, soak)."""

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
        self.app = AppServer(
            self.module,
            self.database,
            self.redis.url(),
            self.workdir / "app.log",
            self.cpus.app,
            self.workers,
            self.settings,
        )
        return self.app.start()

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
        self.redis.stop()

    def post_mortem(self, error: Exception) -> str:
        """Why a call to the app got no answer: whether its process is still there, its log."""
        process = self.app.process if self.app else None
        state = (
            "not started"
            if process is None
            else ("still running" if process.poll() is None else f"exited with {process.returncode}")
        )
        log = self.workdir / "app.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return f"{self.module} did not answer ({error!r}); its process is {state}; app.log ends:\n{tail}"
