"""The button: the most-followed account tweets on all three apps at once, and for each
app the demo measures when the tweet reaches that account's last follower (the highest
follower id: the fanout worker serves followers in id order, so this one is served last).

  visible_after_ms  from the 201 of POST /tweets to the start of the first read of the last
                    follower's home timeline that contains the tweet: ~0 where a read finds
                    it at once (join-on-read; the hybrid, which pulls a celebrity's tweets at
                    read time), the fanout's duration where a worker must deliver it first
  fanout_ms         the app's own record (fanout_log): accepted to last follower served;
                    none for the hybrid's celebrity, whose tweets are never fanned out
"""

import asyncio
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from demo.stack import Celebrity

TEXT = "Celebrity tweet from the live demo: who sees it when?"
VISIBLE_WITHIN = 30.0
FANOUT_LAG_MS = "SELECT (done_at - accepted_at) * 1000 FROM fanout_log WHERE tweet_id = ?"


@dataclass
class CelebrityTweet:
    press: int
    pressed_at: float
    tweet_id: int | None = None
    posted_ms: float | None = None  # POST /tweets, sent to answered
    visible_after_ms: float | None = None
    fanout_ms: float | None = None
    error: str | None = None

    def as_json(self) -> dict:
        rounded = {
            key: round(value, 2) if isinstance(value, float) else value for key, value in asdict(self).items()
        }
        return {**rounded, "pressed_at": self.pressed_at}


async def tweet_and_watch(
    client: httpx.AsyncClient, url: str, database: Path | None, celebrity: Celebrity, record: CelebrityTweet
) -> None:
    """Fills `record` in as the tweet is posted, then seen; errors go in record.error."""
    try:
        sent = time.perf_counter()
        response = await client.post(f"{url}/tweets", json={"user_id": celebrity.user_id, "text": TEXT})
        answered = time.perf_counter()
        if response.status_code != 201:
            record.error = f"POST /tweets answered {response.status_code}: {response.text[:200]}"
            return
        record.tweet_id = response.json()["id"]
        record.posted_ms = (answered - sent) * 1000
        seen = await first_read_with(client, url, celebrity.last_follower, record.tweet_id)
        if seen is None:
            record.error = f"not in user {celebrity.last_follower}'s timeline after {VISIBLE_WITHIN:g} s"
            return
        record.visible_after_ms = max(0.0, seen - answered) * 1000
        if database is not None:
            record.fanout_ms = await asyncio.to_thread(logged_fanout_ms, database, record.tweet_id)
    except httpx.HTTPError as error:
        record.error = f"{type(error).__name__}: {error}"


async def first_read_with(client: httpx.AsyncClient, url: str, reader: int, tweet_id: int) -> float | None:
    """perf_counter() at the start of the first read of `reader`'s timeline that has the tweet."""
    deadline = time.perf_counter() + VISIBLE_WITHIN
    while (began := time.perf_counter()) < deadline:
        response = await client.get(f"{url}/timeline/{reader}", params={"limit": 20})
        if response.status_code == 200 and any(t["id"] == tweet_id for t in response.json()["tweets"]):
            return began
        await asyncio.sleep(0.001)
    return None


def logged_fanout_ms(database: Path, tweet_id: int, wait: float = 5.0) -> float | None:
    """The app logs a fanout once its last follower is served, just after the push the
    reader saw: a moment's wait. None if the tweet was not fanned out (a pulled celebrity)."""
    deadline = time.monotonic() + wait
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)) as db:
        while time.monotonic() < deadline:
            if row := db.execute(FANOUT_LAG_MS, (tweet_id,)).fetchone():
                return float(row[0])
            time.sleep(0.01)
    return None
