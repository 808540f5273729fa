"""The tests' processes: the one harness (rig/processes.py) with what only tests need, a
pool of a shared redis-server's 16 databases and an app with an HTTP client and the
contract's calls spelled once. The apps run as `uvicorn approachN:app` subprocesses driven
over HTTP, the way a user runs them."""

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from rig import processes
from rig.processes import ROOT, free_port  # noqa: F401  (the tests take them from here)
from timelines.designs import FANOUT_MODULES, MODULES

APPS = MODULES
FANOUT_APPS = FANOUT_MODULES


@dataclass(eq=False)
class RedisServer(processes.RedisServer):
    """A redis-server of our own, whose databases the tests take one each and give back flushed."""

    free_dbs: list[int] = field(default_factory=lambda: list(range(16)))

    def take_db(self) -> int:
        return self.free_dbs.pop(0)

    def give_back_db(self, db: int) -> None:
        with suppress(redis.ConnectionError):  # a test may leave its server killed
            self.client(db).flushdb()
        self.free_dbs.append(db)


class AppServer(processes.AppServer):
    """One app under uvicorn, on its own SQLite file and its own Redis database, its log
    beside the file, and an HTTP client on it."""

    def __init__(self, module: str, database: Path, redis_url: str, workers: int = 1, **settings):
        super().__init__(
            module, database, redis_url, log=database.with_suffix(".log"), workers=workers, settings=settings
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        super().stop()
        self.http.close()

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
