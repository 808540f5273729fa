"""Threads beside the load in the redis-kill scenario: a Monitor watching what an operator
would (/health, the backlog), and a Witness that keeps what Locust's samples cannot."""

import random
import threading
import time
from pathlib import Path

import httpx

from bench.experiments.faults import checks
from bench.experiments.faults.common import status_of, writing_client


class Poller(threading.Thread):
    """Calls `step` every `interval` seconds until stopped, on its own thread."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:  # started
            self.join()


class Monitor(Poller):
    """What an operator would watch during the fault: /health and the fanout backlog."""

    def __init__(self, url: str, interval: float = 0.25):
        super().__init__(interval)
        self.client = httpx.Client(base_url=url, timeout=5)
        self.rows: list[tuple[float, int, int]] = []  # time, /health status, backlog (-1: no /stats)

    def step(self) -> None:
        now = time.time()
        health, _ = status_of(lambda: self.client.get("/health"))
        status, stats = status_of(lambda: self.client.get("/stats"))
        self.rows.append((now, health, stats.json()["fanout_backlog"] if status == 200 else -1))

    def latest(self) -> str:
        if not self.rows:
            return "no /health yet"
        _, health, backlog = self.rows[-1]
        return f"/health {health}, backlog {backlog}"

    def first(self, after: float, condition) -> float | None:
        """Seconds from `after` to the first row at or after it that meets condition(health, backlog)."""
        return next(
            (
                when - after
                for when, health, backlog in self.rows
                if when >= after and condition(health, backlog)
            ),
            None,
        )


class Witness(Poller):
    """A client that keeps what Locust's samples cannot: the id of every tweet the app
    acknowledged, and every page it was shown. Its pages lie below every tweet of the run
    (before=`below`), so the join on the file afterwards says what they should have been."""

    def __init__(self, url: str, users: list[int], below: int, seed: int = 1, interval: float = 0.03):
        super().__init__(interval)
        self.client = writing_client(url)
        self.users, self.below, self.rng = users, below, random.Random(seed)
        self.tweets: list[tuple[float, int, int, int, str]] = []  # time, status, id, user, text
        self.pages: list[tuple[float, int, int, list[int]]] = []  # time, status, user, ids

    def step(self) -> None:
        user, text = self.rng.choice(self.users), f"witness {len(self.tweets)}"
        now = time.time()
        body = {"user_id": user, "text": text}
        status, response = status_of(lambda: self.client.post("/tweets", json=body))
        self.tweets.append((now, status, response.json()["id"] if status == 201 else 0, user, text))
        reader, now = self.rng.choice(self.users), time.time()
        status, response = status_of(
            lambda: self.client.get(f"/timeline/{reader}", params={"limit": 50, "before": self.below})
        )
        ids = [tweet["id"] for tweet in response.json()["tweets"]] if status == 200 else []
        self.pages.append((now, status, reader, ids))

    def acknowledged(self) -> list[tuple[int, int, str]]:
        return [(tweet_id, user, text) for _, status, tweet_id, user, text in self.tweets if status == 201]

    def rows(self) -> list[tuple[float, str, int]]:
        return [(when, "tweet", status) for when, status, *_ in self.tweets] + [
            (when, "read", status) for when, status, *_ in self.pages
        ]

    def wrong_pages(self, database: Path) -> int:
        shown = [(user, self.below, 50, ids) for _, status, user, ids in self.pages if status == 200]
        return checks.check_pages(database, shown)
