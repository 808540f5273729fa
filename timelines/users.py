"""Users, the follow graph and a user's own tweets: the same rows and the same SQL for all
three designs. Only what a design does *around* a follow or a tweet differs, and that
lives in the approach files."""

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from timelines.db import CONFLICT, Database
from timelines.encoding import tweet_json
from timelines.http import (
    ERRORS,
    WRITE,
    ContractRoute,
    json_response,
    now_iso,
    problem,
    tweet_list,
)
from timelines.models import Before, Limit, NewUser, Profile, TweetList, TweetRow, User, UserId
from timelines.sql import Dialects, Sql, Transaction
from timelines.state import Stores

INSERT_USER = "INSERT INTO users (username, created_at) VALUES (?, ?) RETURNING id"
SELECT_PROFILE = "SELECT id, username, followers, following, tweets FROM users WHERE id = ?"
SELECT_USER_EXISTS = "SELECT 1 FROM users WHERE id = ?"
SELECT_OWN_TWEETS = """
    SELECT id, user_id, text, created_at FROM tweets
    WHERE user_id = :user AND id < :before
    ORDER BY id DESC LIMIT :limit"""
INSERT_FOLLOW = "INSERT INTO follows (follower_id, followee_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
DELETE_FOLLOW = "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?"
COUNT_FOLLOW = """
    UPDATE users SET following = following + :step WHERE id = :follower;
    UPDATE users SET followers = followers + :step WHERE id = :followee"""
INSERT_TWEET = """
    INSERT INTO tweets (user_id, text, created_at) VALUES (?, ?, ?)
    RETURNING id, user_id, text, created_at"""
COUNT_TWEET = "UPDATE users SET tweets = tweets + 1 WHERE id = ?"
# Tweet ids must grow in commit order (the catch-up after a regeneration relies on it).
# SQLite's BEGIN IMMEDIATE already holds its one write lock; PostgreSQL hands out sequence
# values at INSERT, so tweet transactions take turns on a lock held until COMMIT.
SERIALISE_TWEETS = Dialects(sqlite="SELECT 1", postgres="SELECT pg_advisory_xact_lock(20130002)")

NO_CURSOR = 2**63 - 1  # "before" when the client gave none: SQLite's largest integer

router = APIRouter(route_class=ContractRoute)


@router.post(
    "/users",
    status_code=201,
    response_model=User,
    dependencies=WRITE,
    responses={409: {**ERRORS[422], "description": "Username taken"}, 422: ERRORS[422]},
)
async def create_user(new_user: NewUser, stores: Stores) -> Response:
    def insert(tx: Transaction) -> int:
        (row,) = tx.execute(INSERT_USER, (new_user.username, now_iso())).fetchall()
        user_id: int = row[0]
        return user_id

    try:
        user_id = await stores.db.write(insert)
    except CONFLICT:
        return problem(409, f"username {new_user.username!r} is taken")
    return json_response({"id": user_id, "username": new_user.username}, 201)


@router.get("/users/{user_id}", response_model=Profile, responses={404: ERRORS[404]})
async def profile(user_id: UserId, stores: Stores) -> Response:
    row = await stores.db.fetchone(SELECT_PROFILE, (user_id,))
    if row is None:
        return problem(404, f"no user {user_id}")
    return json_response(dict(zip(("id", "username", "followers", "following", "tweets"), row, strict=True)))


@router.get("/users/{user_id}/tweets", response_model=TweetList, responses={404: ERRORS[404]})
async def own_tweets(user_id: UserId, stores: Stores, limit: Limit = 50, before: Before = None) -> Response:
    return await tweet_page(stores.db, SELECT_OWN_TWEETS, user_id, before or NO_CURSOR, limit)


async def tweet_page(db: Database, query: Sql, user_id: int, before: int, limit: int) -> Response:
    """A page of tweets from `query` (:user, :before, :limit). Users are never deleted, so
    rows prove the user exists; only an empty page needs the second look (404 or [])."""
    rows = await db.fetchall(query, {"user": user_id, "before": before, "limit": limit})
    if not rows and not await db.fetchone(SELECT_USER_EXISTS, (user_id,)):
        return problem(404, f"no user {user_id}")
    return tweet_list(user_id, [tweet_json(row) for row in rows])


# The functions below run inside Database.write, on a writer thread.


def require_users(tx: Transaction, *user_ids: int) -> None:
    for user_id in user_ids:
        if not tx.execute(SELECT_USER_EXISTS, (user_id,)).fetchone():
            raise HTTPException(404, f"no user {user_id}")


def add_follow(tx: Transaction, follower_id: int, followee_id: int) -> bool:
    """True when the pair is new (following twice changes nothing)."""
    if follower_id == followee_id:
        raise HTTPException(422, "a user cannot follow themselves")
    require_users(tx, follower_id, followee_id)
    if tx.execute(INSERT_FOLLOW, (follower_id, followee_id)).rowcount == 0:
        return False
    _count_follow(tx, follower_id, followee_id, +1)
    return True


def remove_follow(tx: Transaction, follower_id: int, followee_id: int) -> bool:
    require_users(tx, follower_id, followee_id)
    if tx.execute(DELETE_FOLLOW, (follower_id, followee_id)).rowcount == 0:
        return False
    _count_follow(tx, follower_id, followee_id, -1)
    return True


def _count_follow(tx: Transaction, follower_id: int, followee_id: int, step: int) -> None:
    for statement in COUNT_FOLLOW.split(";"):
        tx.execute(statement, {"step": step, "follower": follower_id, "followee": followee_id})


def insert_tweet(tx: Transaction, user_id: int, text: str) -> TweetRow:
    require_users(tx, user_id)
    tx.execute(SERIALISE_TWEETS)
    # fetchall: a RETURNING statement left half-read would block the COMMIT.
    (row,) = tx.execute(INSERT_TWEET, (user_id, text, now_iso())).fetchall()
    tx.execute(COUNT_TWEET, (user_id,))
    return TweetRow(*row)
