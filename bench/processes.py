"""The real processes a bench run is made of: a private redis-server on a free port, an app
under `uvicorn approachN:app`, each pinned to its own CPUs where the machine has several.

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
NO_REDIS = ("redis-server not found: run scripts/ensure-redis-server (as root it installs Debian's "
            "package), or install it yourself: apt-get install redis-server / brew install redis")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


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


@dataclass
class RedisServer:
    """A redis-server of our own, persistence off: the bench may flush, kill and restart it."""
    directory: Path
    cpus: tuple[int, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit(NO_REDIS)
        # Absolute: redis-server changes into --dir before it opens --logfile.
        self.directory = self.directory.resolve()
        log = self.directory / f"redis-{self.port}.log"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.directory), "--logfile", str(log)]
        # Own session: a Ctrl-C reaches only the bench, which stops the server itself.
        self.process = subprocess.Popen(pinned(command, self.cpus), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.answers, 10, f"redis-server on port {self.port} (log: {log})")
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise SystemExit(f"redis-server exited at start (port {self.port})")
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5) as client:
                return client.ping()
        except redis.ConnectionError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop(self.process)

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(self, *_) -> None:
        self.stop()


@dataclass
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

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", f"{self.module}:app", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        return pinned(command, self.cpus)

    def start(self, timeout: float = 120) -> "AppServer":
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{self.database}", "REDIS_URL": self.redis_url,
               **{name.upper(): str(value) for name, value in self.settings.items()}}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.answers, timeout, f"{self.module} to start (log: {self.log})")
        return self

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/stats", timeout=30).json()

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
