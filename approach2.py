"""Approach 2 — fanout-on-write (DDIA, chapter 1: Twitter's second design).

Each user's home timeline is kept ready, like a mailbox. Posting a tweet commits it to
SQLite together with an outbox row, and returns; a worker then pushes the tweet id into
the cached timeline of every follower (a Redis list of ids, trimmed to TIMELINE_LENGTH).
Reading a timeline is one Lua call that returns the newest ids and their pre-encoded
bodies.

Costs: a read no longer depends on followees or history. A write costs one cache write
per follower: 75 on average, 30 million for a celebrity, and DDIA's arithmetic is 4.6k
tweets/s × 75 = 345k timeline writes/s. Follow and unfollow must merge and unmerge a whole
history. The caches are copies, so everything that can go wrong with a copy must be
handled: a flush or restart (rebuild from SQLite), a page deeper than the cache (answer it
from SQLite), Redis down (writes wait in the outbox; reads fall back to the join).
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response

from timelines import cache as timeline_cache
from timelines import feed, users
from timelines.cache import REDIS_DOWN, Miss, TimelineCache
from timelines.db import open_database
from timelines.designs import FANOUT
from timelines.encoding import tweet_json
from timelines.fanout import FanoutWorker, JobKind
from timelines.http import ERRORS, WRITE, create_app, json_response, problem, tweet_list
from timelines.models import Before, Health, Limit, NewTweet, Stats, Tweet, TweetList, TweetRow, UserId
from timelines.settings import Settings
from timelines.sql import Dialects, Transaction
from timelines.state import Cached, CachedStores
from timelines.stats import fanout_stats, redis_problem
from timelines.users import NO_CURSOR, add_follow, insert_tweet, remove_follow

APPROACH = FANOUT.label  # in /health and /stats

# --- queries -------------------------------------------------------------------------------

OWE_FANOUT = "INSERT INTO fanout_outbox (kind, user_id, tweet_id, accepted_at) VALUES (?, ?, ?, ?)"
# PostgreSQL: each followee's newest first, as in timelines/join.py's join (why is said there).
HOME_TIMELINE_IDS_ABOVE = Dialects(
    sqlite="""
        SELECT tweets.id
        FROM tweets
        JOIN follows ON tweets.user_id = follows.followee_id
        WHERE follows.follower_id = :user AND tweets.id > :above
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
        ORDER BY recent.id DESC
        LIMIT :limit""",
)


# --- lifespan ------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings()
    db = await open_database(
        settings.database_url, settings.reader_connections, settings.database_pool_timeout
    )
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
        app.state.stores = CachedStores(db, cache, worker)
        yield
    await cache.redis.aclose()
    await db.close()


# --- app -----------------------------------------------------------------------------------

app = create_app("Home timelines: fanout-on-write", lifespan)
app.include_router(users.router)


# --- endpoints -----------------------------------------------------------------------------


@app.put(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404], 422: ERRORS[422]},
)
async def follow(follower_id: UserId, followee_id: UserId, stores: Cached) -> Response:
    followed = await stores.db.write(lambda tx: add_follow(tx, follower_id, followee_id))
    if followed:
        await feed.update_cache(stores, follower_id, feed.merge(stores, follower_id, followee_id))
    return Response(status_code=204)


@app.delete(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404]},
)
async def unfollow(follower_id: UserId, followee_id: UserId, stores: Cached) -> Response:
    unfollowed = await stores.db.write(lambda tx: remove_follow(tx, follower_id, followee_id))
    if unfollowed:
        await feed.update_cache(stores, follower_id, feed.unmerge(stores, follower_id, followee_id))
    return Response(status_code=204)


@app.post(
    "/tweets",
    status_code=201,
    response_model=Tweet,
    dependencies=WRITE,
    responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]},
)
async def post_tweet(new_tweet: NewTweet, stores: Cached) -> Response:
    def post(tx: Transaction) -> TweetRow:
        tweet = insert_tweet(tx, new_tweet.user_id, new_tweet.text)
        tx.execute(OWE_FANOUT, (JobKind.TWEET, new_tweet.user_id, tweet.id, time.time()))
        return tweet

    tweet = await stores.db.write(post)
    stores.worker.wake.set()
    return Response(tweet_json(tweet), 201, media_type="application/json")


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(
    user_id: UserId, stores: Cached, limit: Limit = 50, before: Before = None
) -> Response:
    before = before or NO_CURSOR
    try:
        page = await stores.cache.read(user_id, before, limit)
    except REDIS_DOWN:
        stores.counters["database_reads"] += 1
        return await feed.page_from_database(stores, user_id, before, limit)
    if isinstance(page, Miss):
        stores.counters["misses"] += 1
        return await feed.regenerate_and_answer(stores, user_id, page, before, limit, HOME_TIMELINE_IDS_ABOVE)
    stores.counters["hits"] += 1
    tweets = await feed.hydrate(stores, page)
    if len(tweets) < limit and page.floor > 0:
        stores.counters["beyond_cache"] += 1
        tweets += await feed.beyond_the_cache(stores, user_id, page, before, limit - len(tweets))
    return tweet_list(user_id, tweets)


@app.get("/health", response_model=Health)
async def health(stores: Cached) -> Response:
    if reason := await redis_problem(stores.cache.redis) or await stores.db.problem():
        return problem(503, reason)
    return json_response({"status": "ok", "approach": APPROACH})


@app.get("/stats", response_model=Stats)
async def stats(stores: Cached) -> Response:
    return json_response({"approach": APPROACH, **await fanout_stats(stores)})
