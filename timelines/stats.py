"""What a person watching a fanout app wants to see: how much is owed, how fast it is
paid, and how the cache is doing. Shared so both fanout designs report the same way."""

from typing import Any

import numpy as np

from timelines.cache import REDIS_DOWN, Client, ping, where
from timelines.state import CachedStores

BACKLOG = "SELECT count(*) FROM fanout_outbox"
TWEETS = "SELECT coalesce(sum(tweets), 0) FROM users"
FANOUT_TOTALS = """
    SELECT count(*), coalesce(sum(followers), 0), coalesce(sum(deliveries - 1), 0)
    FROM fanout_log"""
RECENT_LAGS = "SELECT done_at - accepted_at FROM fanout_log ORDER BY tweet_id DESC LIMIT 10000"
PERCENTILES = (50, 95, 99, 99.9)
# What /stats counts of the cache, per process (docs/CONTRACT.md says what each means).
CACHE_COUNTERS = (
    "hits",
    "misses",
    "regenerations",
    "recent_regenerations",
    "beyond_cache",
    "body_misses",
    "database_reads",
)


async def fanout_stats(stores: CachedStores) -> dict[str, Any]:
    db = stores.db
    [(backlog,)] = await db.fetchall(BACKLOG)
    [(tweets,)] = await db.fetchall(TWEETS)
    [(fanned_out, fanout_writes, repeated)] = await db.fetchall(FANOUT_TOTALS)
    lags = [lag for (lag,) in await db.fetchall(RECENT_LAGS)]
    return {
        "fanout_backlog": backlog,
        "tweets": tweets,
        "tweets_fanned_out": fanned_out,
        "fanout_writes": fanout_writes,
        "fanout_repeated_deliveries": repeated,
        "fanout_lag_ms": lag_percentiles(lags),
        "sqlite_round_trips": dict(db.round_trips),
        # Counted by this process only: under --workers N each worker counts its own.
        "cache": {name: stores.counters[name] for name in CACHE_COUNTERS},
    }


def lag_percentiles(lags_seconds: list[float]) -> dict[str, Any]:
    if not lags_seconds:
        return {"count": 0}
    values = np.percentile(np.array(lags_seconds) * 1000, PERCENTILES)
    return {
        "count": len(lags_seconds),
        "of_last": "10000 fanouts",
        **{f"p{p:g}": round(float(v), 3) for p, v in zip(PERCENTILES, values, strict=True)},
        "max": round(max(lags_seconds) * 1000, 3),
    }


async def redis_problem(client: Client) -> str | None:
    """Why /health is 503, naming the store that is missing (on a cluster, any node)."""
    try:
        await ping(client)
    except REDIS_DOWN as error:
        return f"{where(client)} unreachable at REDIS_URL: {error}"
    return None
