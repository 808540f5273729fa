"""Redis is only a cache: flushed, or killed and restarted empty, it costs no acknowledged
tweet, and the three apps still agree with each other and with the model."""

import random

import pytest

from harness import APPS, AppServer, RedisServer
from history import SETTINGS, USERS, Lockstep, random_history


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server this test alone may kill."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def apps_on_own_redis(tmp_path, own_redis):
    apps = [
        AppServer(module, tmp_path / f"{module}.db", own_redis.url(n), **SETTINGS)
        for n, module in enumerate(APPS)
    ]
    for app in apps:
        app.start()
    yield apps
    for app in apps:
        app.stop()


def build_history(apps, seed: int) -> Lockstep:
    lockstep = Lockstep(apps)
    lockstep.create_users()
    for step in random_history(seed):
        lockstep.apply(step)
    return lockstep


def test_flushall_loses_nothing(apps_on_own_redis, own_redis):
    lockstep = build_history(apps_on_own_redis, seed=11)
    rng = random.Random(11)
    lockstep.assert_all_agree(rng)
    assert own_redis.client().dbsize() > 0 or own_redis.client(1).dbsize() > 0

    own_redis.client().flushall()
    lockstep.assert_all_agree(rng)
    rebuilt = [app.stats()["cache"]["regenerations"] for app in apps_on_own_redis[1:]]
    assert all(count > 0 for count in rebuilt), f"no timeline was rebuilt after FLUSHALL: {rebuilt}"


def test_redis_killed_and_restarted_empty(apps_on_own_redis, own_redis):
    lockstep = build_history(apps_on_own_redis, seed=12)
    rng = random.Random(12)
    lockstep.assert_all_agree(rng)

    own_redis.kill()
    for app in apps_on_own_redis[1:]:
        response = app.http.get("/health")
        assert response.status_code == 503 and "REDIS_URL" in response.json()["detail"]
    # While Redis is down the fanout apps take writes (the outbox keeps what they owe) and
    # answer reads from SQLite; both must still be exact.
    for step in random_history(seed=13):
        lockstep.apply(step)
    for user in range(1, USERS + 1):
        expected = lockstep.model.timeline(user, 200)
        for app in apps_on_own_redis:
            assert app.timeline(user, 200) == expected, f"{app.module} while Redis is down"
    assert all(app.stats()["fanout_backlog"] > 0 for app in apps_on_own_redis[1:]), (
        "tweets posted while Redis is down must wait in the outbox"
    )

    own_redis.start()
    lockstep.assert_all_agree(rng)
    for app in apps_on_own_redis:
        assert app.http.get("/health").status_code == 200


def test_follow_changes_missed_by_a_stalled_redis_are_not_served_stale(apps_on_own_redis, own_redis):
    """Redis stalls (CLIENT PAUSE) through an unfollow and a follow, then comes back with
    all its data: the timelines it held from before must not be served as they were."""
    lockstep = build_history(apps_on_own_redis, seed=14)
    rng = random.Random(14)
    lockstep.assert_all_agree(rng)
    follower, followee = next(
        (a, b)
        for a, b in sorted(lockstep.model.follows)
        if lockstep.model.timeline(a, 200) and any(author == b for _, author in lockstep.model.tweets)
    )

    # Long enough for the app's call and its one retry to time out (socket_timeout 2 s).
    own_redis.client().execute_command("CLIENT", "PAUSE", 5000, "WRITE")
    lockstep.apply(("unfollow", follower, followee))
    lockstep.apply(("follow", followee, follower))
    lockstep.assert_all_agree(rng)
