"""Approach 1 — join-on-read (DDIA, chapter 1: Twitter's first design).

Posting a tweet inserts one row into a global collection of tweets. Reading a home
timeline looks up everyone the user follows, finds all their tweets, and merges them newest
first: the join of timelines/join.py (HOME_TIMELINE), run on every read.

Costs: a write is O(1) whatever the author's following. A read does one index range scan
of `tweets_by_author` per followee and sorts what it finds, so it grows with the number of
followees and with how much they have written; there is nothing to keep in sync, and a
follow or an unfollow is one row. Twitter outgrew it because reads outnumber writes by two
orders of magnitude (300k timeline reads/s against 4.6k tweets/s).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response

from timelines import users
from timelines.db import open_database
from timelines.designs import JOIN
from timelines.encoding import tweet_json
from timelines.http import ERRORS, WRITE, create_app, json_response, problem
from timelines.join import HOME_TIMELINE
from timelines.models import Before, Health, Limit, NewTweet, Stats, Tweet, TweetList, UserId
from timelines.settings import Settings
from timelines.state import JoinStores, Stores
from timelines.users import NO_CURSOR, add_follow, insert_tweet, remove_follow, tweet_page

APPROACH = JOIN.label  # in /health and /stats

# --- queries -------------------------------------------------------------------------------

# The join a read runs, HOME_TIMELINE, is timelines/join.py's: where their cache cannot
# answer, the fanout apps answer with it too.
TOTALS = "SELECT count(*), coalesce(sum(tweets), 0), coalesce(sum(following), 0) FROM users"


# --- lifespan ------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings()
    db = await open_database(
        settings.database_url, settings.reader_connections, settings.database_pool_timeout
    )
    app.state.stores = JoinStores(db)
    yield
    await db.close()


# --- app -----------------------------------------------------------------------------------

app = create_app("Home timelines: join-on-read", lifespan)
app.include_router(users.router)


# --- endpoints -----------------------------------------------------------------------------


@app.put(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404], 422: ERRORS[422]},
)
async def follow(follower_id: UserId, followee_id: UserId, stores: Stores) -> Response:
    await stores.db.write(lambda tx: add_follow(tx, follower_id, followee_id))
    return Response(status_code=204)


@app.delete(
    "/users/{follower_id}/following/{followee_id}",
    status_code=204,
    dependencies=WRITE,
    responses={404: ERRORS[404]},
)
async def unfollow(follower_id: UserId, followee_id: UserId, stores: Stores) -> Response:
    await stores.db.write(lambda tx: remove_follow(tx, follower_id, followee_id))
    return Response(status_code=204)


@app.post(
    "/tweets",
    status_code=201,
    response_model=Tweet,
    dependencies=WRITE,
    responses={404: ERRORS[404], 413: ERRORS[413], 422: ERRORS[422]},
)
async def post_tweet(new_tweet: NewTweet, stores: Stores) -> Response:
    tweet = await stores.db.write(lambda tx: insert_tweet(tx, new_tweet.user_id, new_tweet.text))
    return Response(tweet_json(tweet), 201, media_type="application/json")


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(
    user_id: UserId, stores: Stores, limit: Limit = 50, before: Before = None
) -> Response:
    return await tweet_page(stores.db, HOME_TIMELINE, user_id, before or NO_CURSOR, limit)


@app.get("/health", response_model=Health)
async def health(stores: Stores) -> Response:
    if reason := await stores.db.problem():
        return problem(503, reason)
    return json_response({"status": "ok", "approach": APPROACH})


@app.get("/stats", response_model=Stats)
async def stats(stores: Stores) -> Response:
    [(users_count, tweets, follows)] = await stores.db.fetchall(TOTALS)
    return json_response(
        {
            "approach": APPROACH,
            "fanout_backlog": 0,
            "users": users_count,
            "tweets": tweets,
            "follows": follows,
        }
    )
