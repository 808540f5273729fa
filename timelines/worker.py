"""The outbox worker as a process of its own, as Twitter ran fanout: a service apart from
the one that answers reads, so neither waits on the other's turn of an event loop.

    FANOUT_WORKER=none uvicorn approach2:app ...     # the app no longer delivers
    python -m timelines.worker [--workers N]         # this does, with the app's settings

It reads the same settings as the apps (DATABASE_URL, REDIS_URL, REDIS_CLUSTER,
TIMELINE_LENGTH, TWEET_TTL, FANOUT_CHUNK, ...) and serves both fanout designs: what a job
owes is written in its outbox row. N workers claim side by side the way several app
processes do (leases; SQLite's one writer, PostgreSQL's SKIP LOCKED); so do several of
these processes. SIGTERM or SIGINT stops it, giving back the jobs it held.
"""

import argparse
import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from timelines import cache as timeline_cache
from timelines.cache import REDIS_DOWN, TimelineCache
from timelines.db import open_database
from timelines.fanout import FanoutWorker
from timelines.settings import Settings

log = logging.getLogger("uvicorn.error")  # where timelines/ logs


async def redis_reachable(cache: TimelineCache, redis_url: str) -> bool:
    """The worker waits for Redis rather than exit: what it owes stays in the outbox."""
    try:
        await timeline_cache.ping(cache.redis)
    except REDIS_DOWN as error:
        log.warning(
            "fanout worker: %s unreachable at REDIS_URL=%s (%s); tweets wait in the outbox until it is back",
            timeline_cache.where(cache.redis),
            redis_url,
            error,
        )
        return False
    return True


async def serve(settings: Settings, workers: int) -> None:
    """Delivers the outbox until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    db = await open_database(settings.database_url, settings.reader_connections)
    cache = TimelineCache(
        timeline_cache.connect(settings.redis_url, settings.redis_cluster),
        settings.timeline_length,
        settings.tweet_ttl,
    )
    redis_up = await redis_reachable(cache, settings.redis_url)
    async with AsyncExitStack() as running:
        for _ in range(workers):
            await running.enter_async_context(FanoutWorker(db, cache, settings.fanout_chunk, not redis_up))
        log.info("fanout worker: %d delivering the outbox of %s", workers, settings.database_url)
        await stop.wait()
        log.info("fanout worker: stopping")
    await cache.redis.aclose()
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m timelines.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="workers claiming side by side (default 1)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(Settings(), args.workers))


if __name__ == "__main__":
    main()
