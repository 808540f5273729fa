"""The bulk loader writes the state the HTTP API would have produced.

The same small generated graph and history are (a) bulk-loaded into fresh SQLite files and
Redis dbs, with the three apps started on them, and (b) built through the HTTP API on
three fresh apps, call by call. Every profile and every timeline page must then agree
between all six apps and the definition (tests/model.py), and the Redis timelines the
loader wrote must be exactly those the API-built fanout apps regenerate on first read.
TIMELINE_LENGTH 10 makes floors matter; the threshold makes a few accounts celebrities.
"""

import sqlite3
import subprocess
import sys

import numpy as np
import orjson
import pytest

from datagen.caches import load_redis
from datagen.graph import generate_graph
from datagen.history import generate_history
from datagen.load import load_sqlite
from harness import APPS, FANOUT_APPS, ROOT, AppServer
from model import TimelineModel
from timelines.designs import by_module
from timelines.encoding import tweet_json

LENGTH = 10


@pytest.fixture(scope="module")
def data():
    graph = generate_graph(60, 8, 1.1, seed=22)
    history = generate_history(graph, 4, seed=22)
    threshold = int(np.sort(graph.followers())[-2])  # the two most followed (or ties)
    celebrities = graph.followers() >= threshold
    assert 2 <= celebrities.sum() <= 4
    assert history.per_author(graph.users)[celebrities].min() > 0, "the hybrid should pull something"
    return graph, history, threshold


@pytest.fixture
def load_app(start_app):
    """load_app(module, graph, history, timeline_length, celebrity_threshold): an app started
    on stores the loader filled."""

    def start(module, graph, history, timeline_length, celebrity_threshold) -> AppServer:
        def load(database, redis_url) -> None:
            load_sqlite(database, graph, history, celebrity_threshold, progress=False)
            if module in FANOUT_APPS:
                load_redis(
                    redis_url,
                    graph,
                    history,
                    by_module(module).name,
                    timeline_length,
                    celebrity_threshold,
                    progress=False,
                )

        return start_app(
            module, prepare=load, timeline_length=timeline_length, celebrity_threshold=celebrity_threshold
        )

    return start


def build_through_api(app: AppServer, graph, history) -> None:
    for user in range(1, graph.users + 1):
        assert app.create_user(f"user{user}") == user
    for follower, followee in zip(graph.follower.tolist(), graph.followee.tolist(), strict=True):
        app.follow(follower, followee)
    tweets = zip(history.author.tolist(), history.texts(), strict=True)
    for tweet_id, (author, text) in enumerate(tweets, start=1):
        assert app.tweet(author, text)["id"] == tweet_id
    app.wait_for_fanout()


def pages(history) -> list[tuple[int, int | None]]:
    """(limit, before): first pages of every size around LENGTH, and pages deep in the past."""
    middle, last = history.tweets // 2, history.tweets
    return [
        (1, None),
        (LENGTH, None),
        (LENGTH + 1, None),
        (200, None),
        (3, middle),
        (50, middle),
        (200, last - 5),
        (5, 2),
        (50, last + 1),
    ]


def page(app: AppServer, user: int, limit: int, before: int | None) -> bytes:
    params = {"limit": limit, **({"before": before} if before else {})}
    response = app.http.get(f"/timeline/{user}", params=params)
    assert response.status_code == 200, response.text
    return response.content


def without_times(body: bytes) -> list[tuple]:
    """A page, less created_at: the API stamps its own clock, the loader a fixed epoch."""
    return [(t["id"], t["user_id"], t["text"]) for t in orjson.loads(body)["tweets"]]


def cached(app: AppServer, redis_server, db_of: dict, key: str) -> list[bytes]:
    return redis_server.client(db_of[app]).lrange(key, 0, -1)


def test_loaded_apps_answer_as_apps_built_through_the_api(data, load_app, start_app, redis_server):
    graph, history, threshold = data
    settings = {"timeline_length": LENGTH, "celebrity_threshold": threshold}
    loaded = [load_app(module, graph, history, **settings) for module in APPS]
    built = [start_app(module, **settings) for module in APPS]
    for app in built:
        build_through_api(app, graph, history)
    model = TimelineModel.of_generated(graph, history)
    texts, author = dict(enumerate(history.texts(), start=1)), dict(model.tweets)

    for user in range(1, graph.users + 1):
        profiles = {app.http.get(f"/users/{user}").content for app in loaded + built}
        assert len(profiles) == 1, f"user {user}: {profiles}"
        for limit, before in pages(history):
            loaded_pages = [page(app, user, limit, before) for app in loaded]
            assert loaded_pages.count(loaded_pages[0]) == 3, f"loaded apps differ: {user} {limit} {before}"
            want = [(i, author[i], texts[i]) for i in model.timeline(user, limit, before)]
            assert without_times(loaded_pages[0]) == want, f"timeline({user}, {limit}, {before})"
            for app in built:
                assert without_times(page(app, user, limit, before)) == want, f"{app.module} {user}"

    db_of = {app: int(app.env["REDIS_URL"].rsplit("/", 1)[1]) for app in loaded + built}
    for loaded_app, built_app in zip(loaded[1:], built[1:], strict=True):
        assert built_app.stats()["cache"]["regenerations"] == graph.users
        assert loaded_app.stats()["cache"]["misses"] == 0, "a loaded timeline was missing"
        recent = sorted(redis_server.client(db_of[loaded_app]).scan_iter(match="recent:*"))
        assert (loaded_app.module == "approach3_hybrid") == bool(recent)
        for key in [f"timeline:{user}" for user in range(1, graph.users + 1)] + [k.decode() for k in recent]:
            assert cached(loaded_app, redis_server, db_of, key) == cached(
                built_app, redis_server, db_of, key
            ), f"{loaded_app.module} {key}"
        assert_bodies_match(
            redis_server.client(db_of[loaded_app]), redis_server.client(db_of[built_app]), loaded_app.database
        )


def assert_bodies_match(loaded, built, database) -> None:
    """A body for each tweet a loaded list holds and no other (the API-built app has those
    and maybe more, until their TTL); bodies tweet_json of the loaded rows, with a TTL."""
    keys = set(loaded.scan_iter(match="tweet:*", count=1000))
    held = {
        b"tweet:" + tweet_id
        for pattern in ("timeline:*", "recent:*")
        for key in loaded.scan_iter(match=pattern, count=1000)
        for tweet_id in loaded.lrange(key, 0, -2)
    }
    assert keys == held
    assert keys <= set(built.scan_iter(match="tweet:*", count=1000))
    with sqlite3.connect(database) as connection:
        rows = {row[0]: row for row in connection.execute("SELECT id, user_id, text, created_at FROM tweets")}
    for key in keys:
        assert loaded.get(key) == tweet_json(rows[int(key.split(b":")[1])])
        assert loaded.ttl(key) > 0


def test_sqlite_file_is_what_the_apps_expect(data, tmp_path):
    graph, history, threshold = data
    path = tmp_path / "loaded.db"
    load_sqlite(path, graph, history, threshold, progress=False)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        indexes = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        assert indexes == {"follows_by_followee", "tweets_by_author"}
        mismatched = connection.execute("""
            SELECT count(*) FROM users
            WHERE followers != (SELECT count(*) FROM follows WHERE followee_id = users.id)
               OR following != (SELECT count(*) FROM follows WHERE follower_id = users.id)
               OR tweets != (SELECT count(*) FROM tweets WHERE user_id = users.id)""").fetchone()
        assert mismatched == (0,)
        celebrities = connection.execute("SELECT user_id FROM celebrities ORDER BY 1").fetchall()
        assert (
            celebrities
            == connection.execute(
                "SELECT id FROM users WHERE followers >= ? ORDER BY 1", (threshold,)
            ).fetchall()
        )
        assert connection.execute("SELECT count(*) FROM fanout_outbox").fetchone() == (0,)
        assert connection.execute("SELECT username FROM users WHERE id = 7").fetchone() == ("user7",)


def test_cli_loads_refuses_to_overwrite_and_replaces_only_its_keys(tmp_path, redis_server):
    db = redis_server.take_db()
    try:
        client = redis_server.client(db)
        client.set("someone:else", "kept")
        command = [
            sys.executable,
            "-m",
            "datagen",
            "tiny",
            "--database",
            str(tmp_path / "tiny.db"),
            "--redis-url",
            redis_server.url(db),
            "--approach",
            "hybrid",
            "--celebrity-threshold",
            "300",
        ]
        first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert "scale tiny: 1,000 users" in first.stdout and "celebrities" in first.stdout
        assert client.exists("timeline:1000") and not client.exists("timeline:1001")

        again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
        assert "tiny.db already exists; pass --force" in again.stderr

        client.rpush("timeline:5000", "f0")  # left by an earlier, bigger load
        forced = subprocess.run(command + ["--force"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert forced.returncode == 0, forced.stderr
        assert not client.exists("timeline:5000") and client.get("someone:else") == b"kept"
        assert client.exists("timeline:1000")
    finally:
        redis_server.give_back_db(db)


def test_redis_with_timelines_is_refused_before_anything_is_written(data, tmp_path, redis_server):
    db = redis_server.take_db()
    try:
        redis_server.client(db).rpush("timeline:1", "f0")
        database = tmp_path / "never.db"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "datagen",
                "tiny",
                "--database",
                str(database),
                "--redis-url",
                redis_server.url(db),
                "--approach",
                "fanout",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and "already holds timeline keys" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not database.exists()
    finally:
        redis_server.give_back_db(db)
