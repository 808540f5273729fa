"""Approach 3 — the hybrid (DDIA, chapter 1: what Twitter moved to).

Fanout-on-write for most accounts, a pull at read time for the few with huge followings. An
account with at least CELEBRITY_THRESHOLD followers is a celebrity: its tweets are fanned out
to nobody. Each celebrity's newest tweet ids are kept in Redis instead (`recent:{id}`, a list
bounded like a timeline, pushed when the tweet is committed), and each cached timeline names
the celebrities its owner follows. A read is one Lua call: the reader's timeline, the recent
ids of the celebrities it names, merged by id, and the bodies, in one round trip, as Twitter
read them from memory. On a Redis Cluster each celebrity's list is kept once per shard of
readers, in their slot (timelines/cache.py): a celebrity's tweet is then SHARDS (16) pushes,
not one per follower, millions.

Costs: no write costs more than CELEBRITY_THRESHOLD cache writes, so one celebrity's tweet
no longer means millions of writes; every read merges the few celebrities it follows (most
readers follow a few). Crossing the threshold must not change any answer: an account that
becomes a celebrity is owed a pull (each follower's timeline starts naming it; its fanned-out
tweets stay, and the merge drops the duplicates); one that stops being a celebrity is owed a
backfill of its recent tweets into every follower's timeline, both through the outbox like any
other fanout. A timeline may go on naming an account that is no longer a celebrity (the pull
is then redundant, never wrong) until it is rebuilt or its owner unfollows.
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from redis.commands.core import AsyncScript

from timelines import cache as timeline_cache
from timelines import feed, users
from timelines.cache import REDIS_DOWN, Miss, Page, TimelineCache, lua, page_or_miss, token_key
from timelines.db import open_database
from timelines.designs import HYBRID
from timelines.encoding import tweet_json
from timelines.fanout import FanoutWorker, JobKind, owe
from timelines.http import ERRORS, WRITE, create_app, json_response, problem, tweet_list
from timelines.models import Before, Health, Limit, NewTweet, Stats, Tweet, TweetList, TweetRow, UserId
from timelines.settings import Settings
from timelines.sql import Dialects, Transaction
from timelines.state import CachedStores, opened
from timelines.stats import fanout_stats, redis_problem
from timelines.users import NO_CURSOR, add_follow, insert_tweet, remove_follow

APPROACH = HYBRID.label  # in /health and /stats

# --- queries -------------------------------------------------------------------------------

# A celebrity's tweet goes into its own recent list only; anyone else's to every follower.
OWE_FANOUT = """
    INSERT INTO fanout_outbox (kind, user_id, tweet_id, accepted_at)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM celebrities WHERE user_id = :author)
                THEN :recent_kind ELSE :tweet_kind END, :author, :tweet, :now"""
BECOME_CELEBRITY = """
    INSERT INTO celebrities (user_id)
    SELECT id FROM users WHERE id = :user AND followers >= :threshold
    ON CONFLICT DO NOTHING"""
STOP_BEING_CELEBRITY = """
    DELETE FROM celebrities
    WHERE user_id = :user AND (SELECT followers FROM users WHERE id = :user) < :threshold"""
IS_CELEBRITY = "SELECT 1 FROM celebrities WHERE user_id = ?"
COUNT_CELEBRITIES = "SELECT count(*) FROM celebrities"
# CELEBRITY_THRESHOLD may differ from the last run's: bring the table in line at start.
RECONCILE_CELEBRITIES = (
    """INSERT INTO fanout_outbox (kind, user_id, accepted_at)
       SELECT :pull, id, :now FROM users
       WHERE followers >= :threshold AND id NOT IN (SELECT user_id FROM celebrities)""",
    """INSERT INTO celebrities (user_id) SELECT id FROM users WHERE followers >= :threshold
       ON CONFLICT DO NOTHING""",
    """INSERT INTO fanout_outbox (kind, user_id, accepted_at)
       SELECT :backfill, user_id, :now FROM celebrities JOIN users ON users.id = celebrities.user_id
       WHERE users.followers < :threshold""",
    """DELETE FROM celebrities
       WHERE user_id IN (SELECT id FROM users WHERE followers < :threshold)""",
)
# PostgreSQL: each followee's newest first, as in timelines/join.py's join (why is said there).
HOME_TIMELINE_IDS_ABOVE = Dialects(
    sqlite="""
        SELECT tweets.id
        FROM tweets
        JOIN follows ON tweets.user_id = follows.followee_id
        WHERE follows.follower_id = :user AND tweets.id > :above
          AND follows.followee_id NOT IN (SELECT user_id FROM celebrities)
        ORDER BY tweets.id DESC
        LIMIT :limit""",
    postgres="""
        SELECT recent.id
        FROM follows
        CROSS JOIN LATERAL (
            SELECT id FROM tweets
            WHERE tweets.user_id = follows.followee_id AND tweets.id > :above
            ORDER BY tweets.id DESC
            LIMIT :limit) AS recent
        WHERE follows.follower_id = :user
          AND follows.followee_id NOT IN (SELECT user_id FROM celebrities)
        ORDER BY recent.id DESC
        LIMIT :limit""",
)
CELEBRITIES_FOLLOWED = """
    SELECT follows.followee_id
    FROM follows
    JOIN celebrities ON celebrities.user_id = follows.followee_id
    WHERE follows.follower_id = ?"""
AUTHOR_IDS_ABOVE = "SELECT id FROM tweets WHERE user_id = :user AND id > :above ORDER BY id DESC LIMIT :limit"

# One Lua call: the reader's timeline, the recent lists of the celebrities it names, merged,
# and the bodies. {1, floor, ids, bodies} when every list is cached; {0, token} when the
# timeline must be rebuilt; {2, author, token, ...} for the celebrities' recent lists that
# must be. It calls the list functions of timelines/lua/list.lua, which it is run after.
READ_WITH_CELEBRITIES = lua("list.lua", "read_with_celebrities.lua")


@dataclass
class HybridStores(CachedStores):
    threshold: int = field(kw_only=True)
    read_with_celebrities: AsyncScript = field(kw_only=True)


Hybrid = Annotated[HybridStores, Depends(opened)]


# --- lifespan ------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings()
    db = await open_database(
        settings.database_url, settings.reader_connections, settings.database_pool_timeout
    )

    def reconcile(tx: Transaction) -> None:
        kinds = {"pull": JobKind.PULL, "backfill": JobKind.BACKFILL}
        for statement in RECONCILE_CELEBRITIES:
            tx.execute(statement, {"threshold": settings.celebrity_threshold, "now": time.time(), **kinds})

    await db.write(reconcile)
    cache = TimelineCache(
        timeline_cache.connect(
            settings.redis_url,
            settings.redis_cluster,
            settings.redis_max_connections,
            settings.redis_pool_timeout,
        ),
        settings.timeline_length,
        settings.tweet_ttl,
    )
    redis_up = await timeline_cache.redis_reachable(cache, settings.redis_url)
    in_app = settings.fanout_worker == "app"
    async with FanoutWorker(db, cache, settings.fanout_chunk, not redis_up, running=in_app) as worker:
        app.state.stores = HybridStores(
            db,
            cache,
            worker,
            threshold=settings.celebrity_threshold,
            read_with_celebrities=cache.script(READ_WITH_CELEBRITIES),
        )
        yield
    await cache.redis.aclose()
    await db.close()


# --- app -----------------------------------------------------------------------------------

app = create_app("Home timelines: hybrid", lifespan)
app.include_router(users.router)


# --- endpoints -----------------------------------------------------------------------------


@app.put(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404], 422: ERRORS[422]},
)
async def follow(follower_id: UserId, followee_id: UserId, stores: Hybrid) -> Response:
    def follow_and_classify(tx: Transaction) -> tuple[bool, bool]:
        followed = add_follow(tx, follower_id, followee_id)
        if (
            followed
            and tx.execute(BECOME_CELEBRITY, {"user": followee_id, "threshold": stores.threshold}).rowcount
        ):
            owe(tx, JobKind.PULL, followee_id)
        return followed, tx.execute(IS_CELEBRITY, (followee_id,)).fetchone() is not None

    followed, pulled = await stores.db.write(follow_and_classify)
    if followed:
        stores.worker.wake.set()
        change = feed.pull if pulled else feed.merge
        await feed.update_cache(stores, follower_id, change(stores, follower_id, followee_id))
    return Response(status_code=204)


@app.delete(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404]},
)
async def unfollow(follower_id: UserId, followee_id: UserId, stores: Hybrid) -> Response:
    def unfollow_and_classify(tx: Transaction) -> bool:
        unfollowed = remove_follow(tx, follower_id, followee_id)
        if (
            unfollowed
            and tx.execute(
                STOP_BEING_CELEBRITY, {"user": followee_id, "threshold": stores.threshold}
            ).rowcount
        ):
            owe(tx, JobKind.BACKFILL, followee_id)
        return unfollowed

    unfollowed = await stores.db.write(unfollow_and_classify)
    if unfollowed:
        stores.worker.wake.set()
        await feed.update_cache(stores, follower_id, feed.unmerge(stores, follower_id, followee_id))
    return Response(status_code=204)


@app.post(
    "/tweets",
    status_code=201,
    response_model=Tweet,
    dependencies=WRITE,
    responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]},
)
async def post_tweet(new_tweet: NewTweet, stores: Hybrid) -> Response:
    def post(tx: Transaction) -> TweetRow:
        tweet = insert_tweet(tx, new_tweet.user_id, new_tweet.text)
        tx.execute(
            OWE_FANOUT,
            {
                "author": new_tweet.user_id,
                "tweet": tweet.id,
                "now": time.time(),
                "recent_kind": JobKind.RECENT,
                "tweet_kind": JobKind.TWEET,
            },
        )
        return tweet

    tweet = await stores.db.write(post)
    stores.worker.wake.set()
    return Response(tweet_json(tweet), 201, media_type="application/json")


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(
    user_id: UserId, stores: Hybrid, limit: Limit = 50, before: Before = None
) -> Response:
    before = before or NO_CURSOR
    try:
        page = await read_with_celebrities(stores, user_id, before, limit)
    except REDIS_DOWN:
        stores.counters["database_reads"] += 1
        return await feed.page_from_database(stores, user_id, before, limit)
    if isinstance(page, Miss):
        stores.counters["misses"] += 1
        return await feed.regenerate_and_answer(
            stores, user_id, page, before, limit, HOME_TIMELINE_IDS_ABOVE, CELEBRITIES_FOLLOWED
        )
    if isinstance(page, list):
        stores.counters["misses"] += 1
        for author, miss in page:
            if await feed.regenerate(stores, miss, AUTHOR_IDS_ABOVE, author):
                stores.counters["recent_regenerations"] += 1
        return await feed.page_from_database(stores, user_id, before, limit)
    stores.counters["hits"] += 1
    tweets = await feed.hydrate(stores, page)
    if len(tweets) < limit and page.floor > 0:
        stores.counters["beyond_cache"] += 1
        tweets += await feed.beyond_the_cache(stores, user_id, page, before, limit - len(tweets))
    return tweet_list(user_id, tweets)


@app.get("/health", response_model=Health)
async def health(stores: Hybrid) -> Response:
    if reason := await redis_problem(stores.cache.redis) or await stores.db.problem():
        return problem(503, reason)
    return json_response({"status": "ok", "approach": APPROACH})


@app.get("/stats", response_model=Stats)
async def stats(stores: Hybrid) -> Response:
    [(celebrities,)] = await stores.db.fetchall(COUNT_CELEBRITIES)
    return json_response(
        {
            "approach": APPROACH,
            **await fanout_stats(stores),
            "celebrities": celebrities,
            "celebrity_threshold": stores.threshold,
        }
    )


# --- helpers -------------------------------------------------------------------------------


async def read_with_celebrities(
    stores: HybridStores, user_id: int, before: int, limit: int
) -> Page | Miss | list[tuple[int, Miss]]:
    """A page, a miss of the timeline, or the celebrities whose recent lists are missing."""
    key = stores.cache.keys.timeline(user_id)
    reply = await stores.read_with_celebrities(keys=[key, token_key(key)], args=[before, limit])
    if reply[0] != 2:
        return page_or_miss(key, reply)
    missing = reply[1]
    return [
        (int(missing[i]), Miss(stores.cache.keys.recent(int(missing[i]), user_id), missing[i + 1].decode()))
        for i in range(0, len(missing), 2)
    ]
