"""Approach 2 — fanout-on-write (DDIA, chapter 1: Twitter's second design).

Each user's home timeline is kept ready, like a mailbox. Posting a tweet commits it to
SQLite together with an outbox row, and returns; a worker then pushes the tweet id into
the cached timeline of every follower (a Redis sorted set, trimmed to TIMELINE_LENGTH).
Reading a timeline is one Lua call that returns the newest ids and their pre-encoded
bodies.

Costs: a read no longer depends on followees or history. A write costs one cache write
per follower: 75 on average, 30 million for a celebrity, and DDIA's arithmetic is 4.6k
tweets/s × 75 = 345k timeline writes/s. Follow and unfollow must merge and unmerge a whole
history. The caches are copies, so everything that can go wrong with a copy must be
handled: a flush or restart (rebuild from SQLite), a page deeper than the cache (answer it
from SQLite), Redis down (writes wait in the outbox; reads fall back to the join).
"""

import asyncio
import sqlite3
import time
from collections import Counter
from contextlib import asynccontextmanager

import orjson
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.responses import Response

from timelines import cache as timeline_cache
from timelines import users
from timelines.cache import Page, TimelineCache, source_floor
from timelines.db import Database
from timelines.fanout import FanoutWorker
from timelines.http import ERRORS, create_app, json_response, problem, tweet_json, tweet_list
from timelines.models import Before, Health, Limit, NewTweet, Stats, Tweet, TweetList, UserId
from timelines.settings import Settings
from timelines.stats import fanout_stats, redis_problem
from timelines.users import NO_CURSOR, SELECT_USER_EXISTS, add_follow, insert_tweet, remove_follow, tweet_page

APPROACH = "fanout-on-write"
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# --- queries -------------------------------------------------------------------------------

OWE_FANOUT = "INSERT INTO fanout_outbox (kind, user_id, tweet_id, accepted_at) VALUES ('tweet', ?, ?, ?)"
OWE_EVICTION = "INSERT INTO fanout_outbox (kind, user_id, accepted_at) VALUES ('evict', ?, ?)"
HOME_TIMELINE = """
    SELECT tweets.id, tweets.user_id, tweets.text, tweets.created_at
    FROM tweets
    JOIN follows ON tweets.user_id = follows.followee_id
    WHERE follows.follower_id = ? AND tweets.id < ?
    ORDER BY tweets.id DESC
    LIMIT ?"""
HOME_TIMELINE_IDS_ABOVE = """
    SELECT tweets.id
    FROM tweets
    JOIN follows ON tweets.user_id = follows.followee_id
    WHERE follows.follower_id = ? AND tweets.id > ?
    ORDER BY tweets.id DESC
    LIMIT ?"""
LAST_TWEET_ID = "SELECT coalesce(max(id), 0) FROM tweets"
NEWEST_TWEET_IDS = "SELECT id FROM tweets WHERE user_id = ? ORDER BY id DESC LIMIT ?"
TWEET_IDS_ABOVE = "SELECT id FROM tweets WHERE user_id = ? AND id > ?"
TWEETS_BY_ID = """
    SELECT id, user_id, text, created_at FROM tweets
    WHERE id IN (SELECT value FROM json_each(?))"""


# --- lifespan ------------------------------------------------------------------------------

@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = Settings()
    app.state.db = await Database.open(settings.database_url, settings.reader_connections)
    app.state.cache = TimelineCache(timeline_cache.connect(settings.redis_url), settings.timeline_length)
    redis_up = await timeline_cache.say_if_unreachable(app.state.cache, settings.redis_url)
    app.state.counters = Counter()
    app.state.worker = FanoutWorker(app.state.db, app.state.cache, settings.fanout_chunk,
                                    redis_down=not redis_up)
    worker = asyncio.create_task(app.state.worker.run())
    yield
    worker.cancel()
    await app.state.cache.redis.aclose()
    await app.state.db.close()


# --- app -----------------------------------------------------------------------------------

app = create_app("Home timelines: fanout-on-write", lifespan)
app.include_router(users.router)


# --- endpoints -----------------------------------------------------------------------------

@app.put("/users/{follower_id}/following/{followee_id}", status_code=204,
         responses={404: ERRORS[404], 422: ERRORS[422]})
async def follow(follower_id: UserId, followee_id: UserId, request: Request) -> Response:
    followed = await request.app.state.db.write(lambda tx: add_follow(tx, follower_id, followee_id))
    if followed:
        await update_cache(request.app, follower_id, merge(request.app, follower_id, followee_id))
    return Response(status_code=204)


@app.delete("/users/{follower_id}/following/{followee_id}", status_code=204,
            responses={404: ERRORS[404]})
async def unfollow(follower_id: UserId, followee_id: UserId, request: Request) -> Response:
    unfollowed = await request.app.state.db.write(lambda tx: remove_follow(tx, follower_id, followee_id))
    if unfollowed:
        await update_cache(request.app, follower_id, unmerge(request.app, follower_id, followee_id))
    return Response(status_code=204)


@app.post("/tweets", status_code=201, response_model=Tweet,
          responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]})
async def post_tweet(new_tweet: NewTweet, request: Request) -> Response:
    def post(tx: sqlite3.Connection) -> tuple:
        tweet = insert_tweet(tx, new_tweet.user_id, new_tweet.text)
        tx.execute(OWE_FANOUT, (new_tweet.user_id, tweet[0], time.time()))
        return tweet

    tweet = await request.app.state.db.write(post)
    request.app.state.worker.wake.set()
    return Response(tweet_json(tweet), 201, media_type="application/json")


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(user_id: UserId, request: Request, limit: Limit = 50,
                        before: Before = None) -> Response:
    app, before = request.app, before or NO_CURSOR
    try:
        page = await app.state.cache.read(user_id, before, limit)
    except REDIS_DOWN:
        app.state.counters["database_reads"] += 1
        return await page_from_database(app, user_id, before, limit)
    if not isinstance(page, Page):
        app.state.counters["misses"] += 1
        return await regenerate_and_answer(app, user_id, page, before, limit)
    app.state.counters["hits"] += 1
    tweets = await hydrate(app, page)
    if len(tweets) < limit and page.floor > 0:
        app.state.counters["beyond_cache"] += 1
        rows = await app.state.db.fetchall(HOME_TIMELINE, (user_id, min(before, page.floor + 1),
                                                           limit - len(tweets)))
        tweets += [tweet_json(row) for row in rows]
    return tweet_list(user_id, tweets)


@app.get("/health", response_model=Health)
async def health(request: Request) -> Response:
    if reason := await redis_problem(request.app.state.cache.redis):
        return problem(503, reason)
    return json_response({"status": "ok", "approach": APPROACH})


@app.get("/stats", response_model=Stats)
async def stats(request: Request) -> Response:
    return json_response({"approach": APPROACH, **await fanout_stats(request.app)})


# --- helpers -------------------------------------------------------------------------------

async def merge(app: FastAPI, follower_id: int, followee_id: int) -> None:
    """The followee's newest tweets join the follower's cached timeline."""
    length = app.state.cache.length
    rows = await app.state.db.fetchall(NEWEST_TWEET_IDS, (followee_id, length))
    tweet_ids = [tweet_id for (tweet_id,) in rows]
    await app.state.cache.merge([follower_id], tweet_ids, source_floor(tweet_ids, length))


async def unmerge(app: FastAPI, follower_id: int, followee_id: int) -> None:
    """The followee's tweets leave the follower's cached timeline (those above its floor are
    all it can hold)."""
    floor = await app.state.cache.floor(follower_id)
    if floor is not None:
        rows = await app.state.db.fetchall(TWEET_IDS_ABOVE, (followee_id, floor))
        await app.state.cache.unmerge(follower_id, [tweet_id for (tweet_id,) in rows])


async def update_cache(app: FastAPI, user_id: int, change) -> None:
    """The follow is committed whatever happens here: if Redis cannot take the change now,
    the outbox owes this user a rebuild, so the cache never answers from the old graph."""
    try:
        await change
    except REDIS_DOWN:
        await app.state.db.write(lambda tx: tx.execute(OWE_EVICTION, (user_id, time.time())))
        app.state.worker.wake.set()


async def regenerate_and_answer(app: FastAPI, user_id: int, version: str, before: int,
                             limit: int) -> Response:
    """Regenerates a timeline Redis does not hold. SQLite assigns ids in commit order, so a
    tweet the snapshot missed has an id above its last one: reading those again once the
    key exists catches any fanout that found no key to push into meanwhile."""
    async with app.state.db.snapshot() as db:
        if not await (await db.execute(SELECT_USER_EXISTS, (user_id,))).fetchone():
            return problem(404, f"no user {user_id}")
        (last_id,) = await (await db.execute(LAST_TWEET_ID)).fetchone()
        rows = await (await db.execute(HOME_TIMELINE_IDS_ABOVE, (user_id, 0, app.state.cache.length))).fetchall()
    if await app.state.cache.regenerate(user_id, version, [tweet_id for (tweet_id,) in rows]):
        app.state.counters["regenerations"] += 1
        length = app.state.cache.length
        rows = await app.state.db.fetchall(HOME_TIMELINE_IDS_ABOVE, (user_id, last_id, length))
        late_ids = [tweet_id for (tweet_id,) in rows]
        await app.state.cache.merge([user_id], late_ids, source_floor(late_ids, length))
    return await page_from_database(app, user_id, before, limit)


async def page_from_database(app: FastAPI, user_id: int, before: int, limit: int) -> Response:
    return await tweet_page(app.state.db, HOME_TIMELINE, user_id, before, limit)


async def hydrate(app: FastAPI, page: Page) -> list[bytes]:
    """Bodies for a page of ids; the few Redis no longer holds come from SQLite."""
    missing = [tweet_id for tweet_id, body in zip(page.ids, page.bodies) if body is None]
    if not missing:
        return page.bodies
    app.state.counters["body_misses"] += len(missing)
    rows = await app.state.db.fetchall(TWEETS_BY_ID, (orjson.dumps(missing).decode(),))
    found = {row[0]: tweet_json(row) for row in rows}
    await app.state.cache.store_tweets(found)
    return [body or found[tweet_id] for tweet_id, body in zip(page.ids, page.bodies)]
