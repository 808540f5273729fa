from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    """Read from the environment; the same names in all three apps (docs/CONTRACT.md)."""

    database_url: str = "sqlite:///timelines.db"
    redis_url: str = "redis://localhost:6379/0"
    # REDIS_URL is then one seed node of a Redis Cluster (timelines/cache.py keeps each
    # user's keys in one slot with a hash tag per shard of users).
    redis_cluster: bool = False
    timeline_length: int = Field(800, ge=1)
    celebrity_threshold: int = Field(10_000, ge=1)
    # Followers in the fanout's first Redis call; later calls are sized from measured
    # cost to take ~2 ms each (timelines/fanout.py), under the 5 ms a call may hold Redis.
    fanout_chunk: int = Field(256, ge=1)
    # The fanout designs' outbox worker: `app` runs one in each app process; `none` leaves
    # the outbox to workers of their own (`python -m timelines.worker`).
    fanout_worker: Literal["app", "none"] = "app"
    # Seconds a tweet's body stays in Redis: one no timeline reads any more must go, and a
    # body that has gone is read from SQLite again.
    tweet_ttl: int = Field(86_400, ge=1)
    reader_connections: int = Field(4, ge=1)
    # Pools are bounded so that overload is a quick 503 with Retry-After, not a queue that
    # grows or redis-py's "Too many connections": a call waits this long for a connection.
    redis_max_connections: int = Field(64, ge=1)
    redis_pool_timeout: float = Field(1.0, gt=0)
    database_pool_timeout: float = Field(5.0, gt=0)
    # Requests one process works on at once; the rest are shed (timelines/http.py).
    max_in_flight: int = Field(256, ge=1)
    # When set, the calls that change state need `Authorization: Bearer <token>`; reads stay
    # open. Unset or empty: everything is open, as the demo wants (timelines/http.py).
    api_token: str | None = None
