"""Approach 3 — the hybrid (DDIA, chapter 1: what Twitter moved to).

Fanout-on-write for most accounts, join-on-read for the few with huge followings. An
account with at least CELEBRITY_THRESHOLD followers is a celebrity: its tweets get no
outbox row and are fanned out to nobody. A read takes the cached timeline (as in approach
2) and, at the same time, the celebrities' recent tweets from SQLite (the join of approach
1, restricted to the celebrities the reader follows), and merges the two by id.

Costs: no write costs more than CELEBRITY_THRESHOLD cache writes, so one celebrity's tweet
no longer means millions of writes; every read pays a small join over the celebrities it
follows (most readers follow a few). Crossing the threshold must not change any answer:
an account that becomes a celebrity keeps its fanned-out tweets in caches and the merge
drops the duplicates; one that stops being a celebrity is owed a backfill of its recent
tweets into every follower's cache, through the outbox like any other fanout.
"""

import asyncio
import sqlite3
import time
from collections import Counter
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from timelines import cache as timeline_cache
from timelines import feed, users
from timelines.cache import Page, TimelineCache
from timelines.db import Database
from timelines.fanout import FanoutWorker
from timelines.http import ERRORS, WRITE, create_app, json_response, problem, tweet_json, tweet_list
from timelines.models import Before, Health, Limit, NewTweet, Stats, Tweet, TweetList, UserId
from timelines.settings import Settings
from timelines.stats import fanout_stats, redis_problem
from timelines.users import NO_CURSOR, add_follow, insert_tweet, remove_follow

APPROACH = "hybrid"

# --- queries -------------------------------------------------------------------------------

OWE_FANOUT = """
    INSERT INTO fanout_outbox (kind, user_id, tweet_id, accepted_at)
    SELECT 'tweet', :author, :tweet, :now
    WHERE NOT EXISTS (SELECT 1 FROM celebrities WHERE user_id = :author)"""
OWE_BACKFILL = "INSERT INTO fanout_outbox (kind, user_id, accepted_at) VALUES ('backfill', ?, ?)"
BECOME_CELEBRITY = """
    INSERT OR IGNORE INTO celebrities (user_id)
    SELECT id FROM users WHERE id = :user AND followers >= :threshold"""
STOP_BEING_CELEBRITY = """
    DELETE FROM celebrities
    WHERE user_id = :user AND (SELECT followers FROM users WHERE id = :user) < :threshold"""
IS_CELEBRITY = "SELECT 1 FROM celebrities WHERE user_id = ?"
COUNT_CELEBRITIES = "SELECT count(*) FROM celebrities"
# CELEBRITY_THRESHOLD may differ from the last run's: bring the table in line at start.
RECONCILE_CELEBRITIES = (
    "INSERT OR IGNORE INTO celebrities (user_id) SELECT id FROM users WHERE followers >= :threshold",
    """INSERT INTO fanout_outbox (kind, user_id, accepted_at)
       SELECT 'backfill', user_id, :now FROM celebrities JOIN users ON users.id = celebrities.user_id
       WHERE users.followers < :threshold""",
    """DELETE FROM celebrities
       WHERE user_id IN (SELECT id FROM users WHERE followers < :threshold)""",
)
HOME_TIMELINE_IDS_ABOVE = """
    SELECT tweets.id
    FROM tweets
    JOIN follows ON tweets.user_id = follows.followee_id
    WHERE follows.follower_id = ? AND tweets.id > ?
      AND follows.followee_id NOT IN (SELECT user_id FROM celebrities)
    ORDER BY tweets.id DESC
    LIMIT ?"""
CELEBRITY_TIMELINE = """
    SELECT tweets.id, tweets.user_id, tweets.text, tweets.created_at
    FROM tweets
    JOIN follows ON tweets.user_id = follows.followee_id
    JOIN celebrities ON celebrities.user_id = follows.followee_id
    WHERE follows.follower_id = ? AND tweets.id < ?
    ORDER BY tweets.id DESC
    LIMIT ?"""


# --- lifespan ------------------------------------------------------------------------------

@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = Settings()
    app.state.db = await Database.open(settings.database_url, settings.reader_connections)
    app.state.threshold = settings.celebrity_threshold
    def reconcile(tx: sqlite3.Connection) -> None:
        for statement in RECONCILE_CELEBRITIES:
            tx.execute(statement, {"threshold": settings.celebrity_threshold, "now": time.time()})

    await app.state.db.write(reconcile)
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

app = create_app("Home timelines: hybrid", lifespan)
app.include_router(users.router)


# --- endpoints -----------------------------------------------------------------------------

@app.put("/users/{follower_id}/following/{followee_id}", status_code=204, dependencies=WRITE,
         responses={404: ERRORS[404], 422: ERRORS[422]})
async def follow(follower_id: UserId, followee_id: UserId, request: Request) -> Response:
    def follow_and_classify(tx: sqlite3.Connection) -> tuple[bool, bool]:
        followed = add_follow(tx, follower_id, followee_id)
        if followed:
            tx.execute(BECOME_CELEBRITY, {"user": followee_id, "threshold": request.app.state.threshold})
        return followed, tx.execute(IS_CELEBRITY, (followee_id,)).fetchone() is not None

    followed, pulled = await request.app.state.db.write(follow_and_classify)
    if followed and not pulled:  # a celebrity's tweets are read from SQLite, not merged
        await feed.update_cache(request.app, follower_id, feed.merge(request.app, follower_id, followee_id))
    return Response(status_code=204)


@app.delete("/users/{follower_id}/following/{followee_id}", status_code=204, dependencies=WRITE,
            responses={404: ERRORS[404]})
async def unfollow(follower_id: UserId, followee_id: UserId, request: Request) -> Response:
    def unfollow_and_classify(tx: sqlite3.Connection) -> bool:
        unfollowed = remove_follow(tx, follower_id, followee_id)
        if unfollowed and tx.execute(STOP_BEING_CELEBRITY, {"user": followee_id,
                                                           "threshold": request.app.state.threshold}).rowcount:
            tx.execute(OWE_BACKFILL, (followee_id, time.time()))
        return unfollowed

    unfollowed = await request.app.state.db.write(unfollow_and_classify)
    if unfollowed:
        request.app.state.worker.wake.set()
        await feed.update_cache(request.app, follower_id, feed.unmerge(request.app, follower_id, followee_id))
    return Response(status_code=204)


@app.post("/tweets", status_code=201, response_model=Tweet, dependencies=WRITE,
          responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]})
async def post_tweet(new_tweet: NewTweet, request: Request) -> Response:
    def post(tx: sqlite3.Connection) -> tuple:
        tweet = insert_tweet(tx, new_tweet.user_id, new_tweet.text)
        tx.execute(OWE_FANOUT, {"author": new_tweet.user_id, "tweet": tweet[0], "now": time.time()})
        return tweet

    tweet = await request.app.state.db.write(post)
    request.app.state.worker.wake.set()
    return Response(tweet_json(tweet), 201, media_type="application/json")


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(user_id: UserId, request: Request, limit: Limit = 50,
                        before: Before = None) -> Response:
    app, before = request.app, before or NO_CURSOR
    try:
        page, celebrity_rows = await asyncio.gather(
            app.state.cache.read(user_id, before, limit),
            app.state.db.fetchall(CELEBRITY_TIMELINE, (user_id, before, limit)))
    except feed.REDIS_DOWN:
        app.state.counters["database_reads"] += 1
        return await feed.page_from_database(app, user_id, before, limit)
    if not isinstance(page, Page):
        app.state.counters["misses"] += 1
        return await feed.regenerate_and_answer(app, user_id, page, before, limit, HOME_TIMELINE_IDS_ABOVE)
    app.state.counters["hits"] += 1
    tweets = merge_by_id(page, await feed.hydrate(app, page), celebrity_rows, limit)
    if len(tweets) < limit and page.floor > 0:
        app.state.counters["beyond_cache"] += 1
        tweets += await feed.beyond_the_cache(app, user_id, page, before, limit - len(tweets))
    return tweet_list(user_id, tweets)


@app.get("/health", response_model=Health)
async def health(request: Request) -> Response:
    if reason := await redis_problem(request.app.state.cache.redis):
        return problem(503, reason)
    return json_response({"status": "ok", "approach": APPROACH})


@app.get("/stats", response_model=Stats)
async def stats(request: Request) -> Response:
    (celebrities,) = await request.app.state.db.fetchone(COUNT_CELEBRITIES)
    return json_response({"approach": APPROACH, **await fanout_stats(request.app),
                          "celebrities": celebrities, "celebrity_threshold": request.app.state.threshold})


# --- helpers -------------------------------------------------------------------------------

def merge_by_id(page: Page, cached: list[bytes], celebrity_rows: list, limit: int) -> list[bytes]:
    """The newest `limit` of both sources above the cache's floor (below it the cache
    knows nothing, so neither may answer there). A tweet fanned out before its author
    became a celebrity comes from both: one copy is kept."""
    tweets = dict(zip(page.ids, cached))
    for row in celebrity_rows:
        if row[0] > page.floor and row[0] not in tweets:
            tweets[row[0]] = tweet_json(row)
    return [tweets[tweet_id] for tweet_id in sorted(tweets, reverse=True)[:limit]]
