"""200 tweets posted at once by many authors: each reaches every follower exactly once,
with one worker process or two draining the same outbox."""

import asyncio
import random

import httpx
import pytest

from harness import APPS, FANOUT_APPS
from model import TimelineModel

AUTHORS, READERS, TWEETS = 20, 30, 200


def build_graph(app, seed: int) -> TimelineModel:
    rng = random.Random(seed)
    model = TimelineModel()
    users = [app.create_user(f"u{n}") for n in range(AUTHORS + READERS)]
    authors, readers = users[:AUTHORS], users[AUTHORS:]
    for reader in readers:
        for author in rng.sample(authors, rng.randint(1, AUTHORS)):
            app.follow(reader, author)
            model.follow(reader, author)
    for reader in readers:
        assert app.timeline(reader) == []  # and the fanout apps now hold their timelines
    return model


async def post_all_at_once(base_url: str, posts: list[tuple[int, str]]) -> list[dict]:
    limits = httpx.Limits(max_connections=TWEETS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/tweets", json={"user_id": author, "text": text}) for author, text in posts)
        )
    assert [r.status_code for r in responses] == [201] * len(posts), [
        r.text for r in responses if r.status_code != 201
    ][:3]
    return [r.json() for r in responses]


# On PostgreSQL, two processes' writes and outbox claims really run side by side.
@pytest.mark.parametrize(
    "module, workers, store",
    [(m, 1, "sqlite") for m in APPS]
    + [(m, 2, store) for m in FANOUT_APPS for store in ("sqlite", "postgres")],
)
def test_concurrent_tweets_delivered_exactly_once(start_app, new_postgres_database, module, workers, store):
    settings = {}
    if store == "postgres":
        settings["database_url"] = new_postgres_database()
    app = start_app(module, workers=workers, **settings)
    model = build_graph(app, seed=7)
    rng = random.Random(8)
    posts = [(rng.randint(1, AUTHORS), f"tweet {n}") for n in range(TWEETS)]
    tweets = asyncio.run(post_all_at_once(str(app.http.base_url), posts))

    assert len({tweet["id"] for tweet in tweets}) == TWEETS
    for tweet in sorted(tweets, key=lambda tweet: tweet["id"]):
        model.tweet(tweet["id"], tweet["user_id"])
    app.wait_for_fanout()
    for reader in range(AUTHORS + 1, AUTHORS + READERS + 1):
        page = app.timeline(reader, limit=200)
        assert len(page) == len(set(page)), f"reader {reader} got a tweet twice"
        assert page == model.timeline(reader, 200)

    stats = app.stats()
    assert stats["fanout_backlog"] == 0
    if module in FANOUT_APPS:
        followers = {author: model.followers(author) for author in range(1, AUTHORS + 1)}
        assert stats["tweets_fanned_out"] == TWEETS
        assert stats["fanout_repeated_deliveries"] == 0
        assert stats["fanout_writes"] == sum(followers[tweet["user_id"]] for tweet in tweets)
