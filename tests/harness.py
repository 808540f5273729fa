"""Real processes for the tests: a private redis-server on a free port, and the apps as
`uvicorn approachN:app` subprocesses driven over HTTP, the way a user runs them."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

# One way to find a port and to wait, shared with the bench's processes.
from bench.processes import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
APPS = ("approach1", "approach2", "approach3_hybrid")
FANOUT_APPS = ("approach2", "approach3_hybrid")


class RedisServer:
    """A redis-server of our own: the tests flush it, kill it and restart it empty."""

    def __init__(self, workdir: Path):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server not found: run scripts/ensure-redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._free_dbs = list(range(16))

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "redis-server to start")

    def _answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=0.5).ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db)

    def take_db(self) -> int:
        return self._free_dbs.pop(0)

    def give_back_db(self, db: int) -> None:
        try:
            self.client(db).flushdb()
        except redis.ConnectionError:
            pass
        self._free_dbs.append(db)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


class AppServer:
    """One app under uvicorn, on its own SQLite file and its own Redis database."""

    def __init__(self, module: str, database: Path, redis_url: str, workers: int = 1,
                 **settings):
        self.module = module
        self.port = free_port()
        self.database = database
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": redis_url,
                    **{name.upper(): str(value) for name, value in settings.items()}}
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.log = database.with_suffix(".log")

    def start(self) -> "AppServer":
        command = [sys.executable, "-m", "uvicorn", f"{self.module}:app", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        wait_until(self._answers, 30, f"{self.module} to start (log: {self.log})")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.module} exited: {self.log.read_text()[-2000:]}")
        try:
            return self.http.get("/stats").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()

    def stats(self) -> dict:
        return self.http.get("/stats").json()

    def wait_for_fanout(self, timeout: float = 60) -> None:
        wait_until(lambda: self.stats()["fanout_backlog"] == 0, timeout, f"{self.module} backlog to drain")

    # The contract, spelled once for the tests.
    def create_user(self, username: str) -> int:
        response = self.http.post("/users", json={"username": username})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def follow(self, follower: int, followee: int) -> None:
        response = self.http.put(f"/users/{follower}/following/{followee}")
        assert response.status_code == 204, response.text

    def unfollow(self, follower: int, followee: int) -> None:
        response = self.http.delete(f"/users/{follower}/following/{followee}")
        assert response.status_code == 204, response.text

    def tweet(self, user_id: int, text: str) -> dict:
        response = self.http.post("/tweets", json={"user_id": user_id, "text": text})
        assert response.status_code == 201, response.text
        return response.json()

    def timeline(self, user_id: int, limit: int | None = None, before: int | None = None) -> list[int]:
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        response = self.http.get(f"/timeline/{user_id}", params=params)
        assert response.status_code == 200, response.text
        return [tweet["id"] for tweet in response.json()["tweets"]]
