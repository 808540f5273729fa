"""Redis at its memory limit (maxmemory-policy allkeys-lru, as the README advises): it evicts
timelines, recent lists, tokens and bodies while tweets and reads go on, and the fanout apps
still answer every page exactly as join-on-read does, with no error."""

import random

import pytest

from harness import APPS, AppServer, RedisServer
from rig.processes import wait_until

USERS, FOLLOWS_EACH, TWEETS = 120, 20, 900
HEADROOM = 600_000  # bytes over an empty server's usage: far less than the apps would cache


@pytest.fixture
def full_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    client = server.client()
    client.config_set("maxmemory", client.info("memory")["used_memory"] + HEADROOM)
    client.config_set("maxmemory-policy", "allkeys-lru")
    yield server
    server.stop()


@pytest.fixture
def apps(tmp_path, full_redis):
    started = [
        AppServer(module, tmp_path / f"{module}.db", full_redis.url(n), celebrity_threshold=30)
        for n, module in enumerate(APPS)
    ]
    for app in started:
        app.start()
    yield started
    for app in started:
        app.stop()


def test_evicting_redis_changes_no_answer(apps, full_redis):
    rng = random.Random(7)
    join = apps[0]
    for n in range(1, USERS + 1):
        assert {app.create_user(f"user{n}") for app in apps} == {n}
    popular = [min(USERS, int(rng.paretovariate(0.8))) for _ in range(USERS * FOLLOWS_EACH)]
    for follower in range(1, USERS + 1):
        for followee in set(popular[follower * FOLLOWS_EACH - FOLLOWS_EACH : follower * FOLLOWS_EACH]):
            if followee != follower:
                for app in apps:
                    app.follow(follower, followee)
    for n in range(TWEETS):
        author = rng.choice(popular)
        for app in apps:
            app.tweet(author, f"{n:04d} " + "x" * 270)
        if n % 10 == 0:  # reads along the way: rebuilds and bodies compete for the memory too
            reader = rng.randint(1, USERS)
            for app in apps[1:]:
                app.timeline(reader)

    evicted = full_redis.client().info("stats")["evicted_keys"]
    assert evicted > 0, "maxmemory was never reached: the test proves nothing"
    for app in apps[1:]:
        app.wait_for_fanout()
    for user in range(1, USERS + 1):
        newest = join.timeline(user, 200)
        for limit, before in ((50, None), (200, None), (20, newest[len(newest) // 2] if newest else None)):
            expected = join.timeline(user, limit, before)
            for app in apps[1:]:
                assert app.timeline(user, limit, before) == expected, f"{app.module}: user {user}"
    assert full_redis.client().info("stats")["evicted_keys"] > evicted, "reads evicted too"


def test_bodies_leave_after_their_ttl_and_pages_stay_exact(tmp_path, redis_server):
    """TWEET_TTL bounds the bodies: once it has passed, none is left in Redis, and the
    next read fetches what its page needs from SQLite (and caches it again)."""
    db = redis_server.take_db()
    join = AppServer("approach1", tmp_path / "join.db", redis_server.url(db))
    fanout = AppServer("approach2", tmp_path / "fanout.db", redis_server.url(db), tweet_ttl=1)
    try:
        for app in (join, fanout):
            app.start()
            for n in (1, 2, 3):
                app.create_user(f"user{n}")
            app.follow(1, 2)
            app.follow(1, 3)
        for n in range(30):
            for app in (join, fanout):
                app.tweet(2 + n % 2, f"tweet {n}")
        fanout.wait_for_fanout()
        assert fanout.timeline(1, 10) == join.timeline(1, 10)  # rebuilds the timeline
        client = redis_server.client(db)
        assert list(client.scan_iter(match="tweet:*")), "the fanout stored the bodies"
        wait_until(lambda: not list(client.scan_iter(match="tweet:*")), 10, "the bodies to expire")
        misses = fanout.stats()["cache"]["body_misses"]
        assert fanout.timeline(1, 10) == join.timeline(1, 10)
        assert fanout.stats()["cache"]["body_misses"] == misses + 10
        assert len(list(client.scan_iter(match="tweet:*"))) == 10, "the page's bodies are cached again"
    finally:
        join.stop()
        fanout.stop()
        redis_server.give_back_db(db)
