"""The live figures of one app over the last WINDOW seconds, as a viewer wants them:

read p50 / p99    the Locust feed of that app (latency_feed.py), successful reads only
reads/s, errors   the same feed
tweets/s          the app's own count (/stats `tweets`), so the celebrity's tweets count too
fanout backlog    /stats `fanout_backlog`: fanout jobs owed right now
fanout lag        fanout_log in the app's SQLite file (read-only): accepted to last follower
                  served, of the fanouts finished in the window; /stats keeps only the
                  percentiles of the last 10,000, which would hide a spike for minutes
"""

import sqlite3
from collections import deque
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WINDOW = 10.0
RECENT_FANOUT_LAGS_MS = "SELECT (done_at - accepted_at) * 1000 FROM fanout_log WHERE done_at >= ?"


@dataclass
class FeedTail:
    """The rows appended to a latency feed since the last call."""

    path: Path
    offset: int = 0

    def new_rows(self) -> list[tuple[float, str, float, bool]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as feed:
            feed.seek(self.offset)
            chunk = feed.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line half-flushed waits for the next call
        self.offset += len(complete)
        rows = []
        for line in complete.decode("ascii").splitlines():
            when, operation, latency_ms, ok = line.split(",")
            rows.append((float(when), operation, float(latency_ms), ok == "1"))
        return rows


@dataclass
class Window:
    """Timestamped values of the last `seconds`."""

    seconds: float = WINDOW
    items: deque = field(default_factory=deque)

    def add(self, when: float, value) -> None:
        self.items.append((when, value))

    def trim(self, now: float) -> None:
        while self.items and self.items[0][0] < now - self.seconds:
            self.items.popleft()

    def values(self) -> list:
        return [value for _, value in self.items]


def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


@dataclass
class AppWindow:
    """Everything the page shows for one app, fed once a second."""

    database: Path
    feed: FeedTail
    reads: Window = field(default_factory=Window)  # successful read latencies, ms
    errors: Window = field(default_factory=Window)  # 1 per failed request
    tweet_counts: Window = field(default_factory=Window)  # the app's tweet total, per poll
    first_sample: float | None = None
    stats: dict = field(default_factory=dict)
    stats_error: str | None = None

    def take_feed(self, now: float) -> None:
        for when, operation, latency_ms, ok in self.feed.new_rows():
            self.first_sample = self.first_sample or when
            if not ok:
                self.errors.add(when, 1)
            elif operation == "read":
                self.reads.add(when, latency_ms)
        for window in (self.reads, self.errors, self.tweet_counts):
            window.trim(now)

    def take_stats(self, now: float, stats: dict | None, error: str | None = None) -> None:
        self.stats_error = error
        if stats is not None:
            self.stats = stats
            self.tweet_counts.add(now, int(stats.get("tweets") or 0))

    def figures(self, now: float, fanout: bool) -> dict:
        reads = self.reads.values()
        span = min(WINDOW, now - self.first_sample) if self.first_sample else 0.0
        lags = recent_fanout_lags_ms(self.database, now - WINDOW) if fanout else []
        return {
            "read_p50_ms": percentile_ms(reads, 50),
            "read_p99_ms": percentile_ms(reads, 99),
            "reads_per_s": round(len(reads) / span, 1) if span > 1 else None,
            "errors": len(self.errors.items),
            "tweets_per_s": tweets_per_second(self.tweet_counts.items),
            "fanout_backlog": self.stats.get("fanout_backlog") if fanout else None,
            "fanout_lag_p50_ms": percentile_ms(lags, 50),
            "fanout_lag_p99_ms": percentile_ms(lags, 99),
            "fanouts": len(lags) if fanout else None,
            "stats_error": self.stats_error,
        }


def tweets_per_second(counts: deque) -> float | None:
    """The app's tweet total, first and last poll of the window apart."""
    if len(counts) < 2:
        return None
    (began, first), (ended, last) = counts[0], counts[-1]
    return round((last - first) / (ended - began), 2) if ended > began else None


def recent_fanout_lags_ms(database: Path, since: float) -> list[float]:
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as db:
            return [lag for (lag,) in db.execute(RECENT_FANOUT_LAGS_MS, (since,))]
    except sqlite3.OperationalError:  # busy for over a second: the next poll will read it
        return []
