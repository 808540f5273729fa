"""The in-memory ceiling of `GET /timeline/{user_id}`: the apps' own stack (timelines.http's
factory, middleware, route class and validation) answering every read with one real page
held in memory, so the gap between an app and this is what its stores cost.

The page is the home timeline of CEILING_USER (50 tweets, newest first) read from
DATABASE_URL once at start, encoded by timelines.encoding.tweet_json as the caches hold
tweets, and joined per request by tweet_list as the apps join theirs.
    CEILING_USER=42 DATABASE_URL=sqlite:///x.db uvicorn bench.experiments.reads.ceiling_app:app
"""

import os
import sqlite3
from contextlib import asynccontextmanager, closing

from fastapi import FastAPI, Request
from fastapi.responses import Response

from timelines.encoding import tweet_json
from timelines.http import ERRORS, create_app, json_response, tweet_list
from timelines.models import Before, Limit, TweetList, UserId
from timelines.settings import Settings

PAGE_SIZE = 50
HOME_TIMELINE = """
    SELECT tweets.id, tweets.user_id, tweets.text, tweets.created_at
    FROM tweets
    JOIN follows ON tweets.user_id = follows.followee_id
    WHERE follows.follower_id = ?
    ORDER BY tweets.id DESC
    LIMIT ?"""


def encoded_page(database_url: str, user_id: int) -> list[bytes]:
    """The newest PAGE_SIZE tweets of user_id's home timeline, each as the caches encode it."""
    path = database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db:
        return [tweet_json(row) for row in db.execute(HOME_TIMELINE, (user_id, PAGE_SIZE))]


@asynccontextmanager
async def lifespan(app: FastAPI):
    user = int(os.environ.get("CEILING_USER", "1"))
    app.state.page = encoded_page(Settings().database_url, user)
    if len(app.state.page) < PAGE_SIZE:
        raise RuntimeError(
            f"CEILING_USER={user} has {len(app.state.page)} tweets in their home "
            f"timeline, not {PAGE_SIZE}: choose a reader with a full page"
        )
    yield


app = create_app("Home timelines: the in-memory ceiling", lifespan)


@app.get("/timeline/{user_id}", response_model=TweetList, responses={404: ERRORS[404]})
async def home_timeline(
    user_id: UserId, request: Request, limit: Limit = 50, before: Before = None
) -> Response:
    return tweet_list(user_id, request.app.state.page[:limit])


@app.get("/health")
async def health() -> Response:
    return json_response({"status": "ok", "approach": "ceiling"})
