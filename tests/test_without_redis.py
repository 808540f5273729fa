"""A fanout app started with no Redis says so in one line naming REDIS_URL, serves from
SQLite meanwhile, and catches up by itself when Redis appears."""

import pytest

from harness import FANOUT_APPS, AppServer, RedisServer, free_port


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_start_without_redis_then_catch_up(tmp_path, module):
    port = free_port()
    app = AppServer(module, tmp_path / "app.db", f"redis://127.0.0.1:{port}/0").start()
    redis_server = RedisServer(tmp_path)
    try:
        log = app.log.read_text()
        assert "Traceback" not in log
        assert len([line for line in log.splitlines() if "Redis" in line]) == 1, log
        assert "REDIS_URL" in log

        health = app.http.get("/health")
        assert health.status_code == 503 and "REDIS_URL" in health.json()["detail"]
        alice, bob = app.create_user("alice"), app.create_user("bob")
        app.follow(alice, bob)
        tweet = app.tweet(bob, "posted while Redis is away")
        assert app.timeline(alice) == [tweet["id"]], "reads fall back to SQLite"
        # Owed: the tweet's fanout, and a rebuild of alice's timeline (her follow missed Redis).
        assert app.stats()["fanout_backlog"] == 2

        redis_server.port = port
        redis_server.start()
        app.wait_for_fanout(timeout=30)
        assert app.http.get("/health").status_code == 200
        assert app.timeline(alice) == [tweet["id"]]
        assert app.stats()["cache"]["hits"] >= 1 or app.stats()["cache"]["regenerations"] >= 1
        assert "Traceback" not in app.log.read_text()
    finally:
        app.stop()
        redis_server.stop()
