"""What an app's lifespan opens, typed: a handler asks for `Stores` (join-on-read's, and what
every app shares) or `Cached` (the fanout designs'), and FastAPI hands it over."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request

from timelines.cache import TimelineCache
from timelines.db import Database
from timelines.fanout import FanoutWorker


@dataclass
class JoinStores:
    """The database: all that join-on-read has, and what the user routes need."""

    db: Database


@dataclass
class CachedStores(JoinStores):
    """The fanout designs': the database, the timeline cache, its outbox worker, and what
    /stats counts of the cache (by this process)."""

    cache: TimelineCache
    worker: FanoutWorker
    counters: Counter[str] = field(default_factory=Counter)


async def opened(request: Request) -> JoinStores:
    # async: FastAPI would run a plain def in its thread pool, a thread hop on every request.
    return cast(JoinStores, request.app.state.stores)


Stores = Annotated[JoinStores, Depends(opened)]
Cached = Annotated[CachedStores, Depends(opened)]
