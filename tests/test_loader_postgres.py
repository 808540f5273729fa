"""The PostgreSQL bulk loader (datagen/load_postgres.py) writes the rows the SQLite loader
writes, into the schema schema_postgres.sql makes, with statistics and sequences ready for
the apps: the same generated graph and history are loaded into both, then compared."""

import hashlib
import sqlite3
import subprocess
import sys
from contextlib import closing

import numpy as np
import psycopg
import pytest

from bench.seeding import fresh_postgres_copy, seeded_postgres, set_celebrities
from datagen.caches import load_redis
from datagen.graph import generate_graph
from datagen.history import generate_history
from datagen.load import Refused, load_sqlite
from datagen.load_postgres import SCHEMA, load_postgres
from datagen.scales import Scale
from harness import APPS, FANOUT_APPS, ROOT
from loadtest import _population as population
from timelines.designs import by_module

LENGTH = 10

QUERIES = {
    "users": "SELECT id, username, created_at, followers, following, tweets FROM users ORDER BY id",
    "follows": "SELECT follower_id, followee_id FROM follows ORDER BY follower_id, followee_id",
    "tweets": "SELECT id, user_id, text, created_at FROM tweets ORDER BY id",
    "celebrities": "SELECT user_id FROM celebrities ORDER BY user_id",
}


@pytest.fixture(scope="module")
def data():
    graph = generate_graph(300, 20, 1.1, seed=31)
    history = generate_history(graph, 6, seed=31)
    threshold = int(np.sort(graph.followers())[-3])  # the three most followed (or ties)
    return graph, history, threshold


@pytest.fixture
def both(data, tmp_path, postgres_url):
    """The same data loaded into a SQLite file and a PostgreSQL database."""
    graph, history, threshold = data
    path = tmp_path / "loaded.db"
    load_sqlite(path, graph, history, threshold, progress=False)
    load_postgres(postgres_url, graph, history, threshold, progress=False)
    return path, postgres_url


def digest(rows) -> tuple[int, str]:
    """(row count, sha256 of the rows in order): a checksum both stores' rows can meet."""
    hashed, count = hashlib.sha256(), 0
    for row in rows:
        hashed.update(repr(tuple(row)).encode())
        count += 1
    return count, hashed.hexdigest()


def test_postgres_holds_the_rows_sqlite_holds(both, data):
    path, url = both
    graph, history, _ = data
    with closing(sqlite3.connect(path)) as lite, psycopg.connect(url) as pg:
        for table, query in QUERIES.items():
            assert digest(pg.execute(query)) == digest(lite.execute(query)), table
        counts = pg.execute("SELECT (SELECT count(*) FROM follows), (SELECT count(*) FROM tweets)").fetchone()
        assert counts == (graph.edges, history.tweets)
        assert pg.execute("SELECT count(*) FROM celebrities").fetchone()[0] >= 3


def test_new_rows_get_ids_above_the_loaded_ones(both, data):
    _, url = both
    graph, history, _ = data
    with psycopg.connect(url) as connection:
        (user,) = connection.execute(
            "INSERT INTO users (username, created_at) VALUES (%s, %s) RETURNING id",
            ("newcomer", "2030-01-01T00:00:00.000000Z"),
        ).fetchone()
        (tweet,) = connection.execute(
            "INSERT INTO tweets (user_id, text, created_at) VALUES (%s, %s, %s) RETURNING id",
            (1, "after the load", "2030-01-01T00:00:00.000000Z"),
        ).fetchone()
    assert user == graph.users + 1
    assert tweet == history.tweets + 1


def schema_objects(url: str) -> set[tuple]:
    """Every index and constraint of the public schema, by name and definition."""
    with psycopg.connect(url) as connection:
        indexes = connection.execute(
            "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = %s", ("public",)
        ).fetchall()
        constraints = connection.execute(
            "SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = %s::regnamespace",
            ("public",),
        ).fetchall()
    return set(indexes) | set(constraints)


def test_indexes_and_keys_are_those_of_the_schema_and_statistics_exist(both, data, postgres_server):
    _, url = both
    _, history, _ = data
    empty = postgres_server.create_database("schema_only")
    try:
        with psycopg.connect(empty) as connection:
            connection.execute(SCHEMA.read_text())
        expected = schema_objects(empty)
    finally:
        postgres_server.drop_database("schema_only")
    assert schema_objects(url) == expected
    assert any(kind == "constraint" and "FOREIGN KEY" in definition for kind, _, definition in expected)
    with psycopg.connect(url) as connection:
        analyzed = connection.execute(
            "SELECT count(*) FROM pg_stats WHERE schemaname = %s AND tablename = %s", ("public", "tweets")
        ).fetchone()[0]
        (estimate,) = connection.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", ("tweets",)
        ).fetchone()
    assert analyzed > 0, "ANALYZE ran: the planner has column statistics"
    assert estimate == history.tweets


def test_a_loaded_database_is_refused_unless_forced(both, data):
    _, url = both
    graph, history, threshold = data
    with pytest.raises(Refused, match="already has the tables users"):
        load_postgres(url, graph, history, threshold, progress=False)
    with psycopg.connect(url) as connection:
        connection.execute(
            "INSERT INTO fanout_outbox (kind, user_id, accepted_at) VALUES (%s, %s, %s)", ("evict", 1, 0)
        )
    load_postgres(url, graph, history, threshold, force=True, progress=False)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM fanout_outbox").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM tweets").fetchone() == (history.tweets,)


def test_cli_loads_into_postgres_and_refuses_a_second_time(postgres_url):
    command = [sys.executable, "-m", "datagen", "tiny", "--database-url", postgres_url]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "scale tiny: 1,000 users" in first.stdout and "postgresql postgresql://" in first.stdout
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (1000,)
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert "already has the tables" in again.stderr


def test_cli_wants_a_postgresql_url():
    command = [sys.executable, "-m", "datagen", "tiny", "--database-url", "sqlite:///x.db"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--database-url must be postgresql://" in result.stderr


def test_the_load_tests_population_reads_alike_from_both(both):
    path, url = both
    lite, pg = population.from_database(str(path)), population.from_database(url)
    for column in ("ids", "followers", "following"):
        assert np.array_equal(getattr(pg, column), getattr(lite, column)), column
    assert len(pg) == 300 and pg.source == f"database {url}"


def celebrity_rows(url: str, threshold: int) -> tuple[list, list]:
    """(the celebrities table, the users at or over `threshold` followers)."""
    with psycopg.connect(url) as connection:
        table = connection.execute("SELECT user_id FROM celebrities ORDER BY 1").fetchall()
        over = connection.execute(
            "SELECT id FROM users WHERE followers >= %s ORDER BY 1", (threshold,)
        ).fetchall()
    return table, over


def test_the_bench_seeds_once_and_gives_each_run_a_copy(postgres_server):
    dataset, threshold = Scale("unit", 200, 10, 1.1, 3, seed=5), 30
    said = []
    seeded = seeded_postgres(postgres_server, dataset, threshold, said.append)
    try:
        assert seeded_postgres(postgres_server, dataset, threshold, said.append) == seeded
        assert said[0].startswith("seeding unit") and said[1] == f"seeded unit: reusing database {seeded}"
        copy = fresh_postgres_copy(postgres_server, seeded, "run_copy")
        set_celebrities(copy, 1)  # a run with another threshold changes its copy alone
        table, over = celebrity_rows(copy, 1)
        assert table == over
        seed_table, seed_over = celebrity_rows(postgres_server.url(seeded), threshold)
        assert seed_table == seed_over and len(seed_table) < len(table)
        with psycopg.connect(copy) as connection:
            tweets = connection.execute("SELECT count(*) FROM tweets").fetchone()[0]
        assert tweets == dataset.generate()[1].tweets
    finally:
        postgres_server.drop_database("run_copy")
        postgres_server.drop_database(seeded)


@pytest.mark.parametrize("module", APPS)
def test_an_app_on_the_loaded_database_answers_as_on_the_loaded_file(module, data, start_app, postgres_url):
    graph, history, threshold = data

    def loader(into_postgres: bool):
        def prepare(database, redis_url) -> None:
            if into_postgres:
                load_postgres(postgres_url, graph, history, threshold, progress=False)
            else:
                load_sqlite(database, graph, history, threshold, progress=False)
            if module in FANOUT_APPS:
                name = by_module(module).name
                load_redis(redis_url, graph, history, name, LENGTH, threshold, progress=False)

        return prepare

    settings = {"timeline_length": LENGTH, "celebrity_threshold": threshold}
    on_file = start_app(module, prepare=loader(False), **settings)
    on_postgres = start_app(module, prepare=loader(True), database_url=postgres_url, **settings)
    entries = 0
    for user in range(1, graph.users + 1, 13):
        assert on_postgres.http.get(f"/users/{user}").json() == on_file.http.get(f"/users/{user}").json()
        page = on_file.timeline(user, limit=LENGTH + 5)  # past the cache: the database's join too
        assert on_postgres.timeline(user, limit=LENGTH + 5) == page
        entries += len(page)
    assert entries > 100
    assert on_postgres.create_user("newcomer") == graph.users + 1
    assert on_postgres.tweet(1, "after the load")["id"] == history.tweets + 1
