"""The apps on PostgreSQL (DATABASE_URL=postgresql://…), beyond what the differential test
shows: the joins' plans, tweet ids in commit order with writers side by side, and one clear
line or a 503 naming DATABASE_URL when the database is wrong or gone."""

import asyncio
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

import approach1
import approach2
import approach3_hybrid
from harness import APPS, AppServer, free_port
from rig.postgres import PostgresServer
from timelines.postgres import PostgresDatabase, PostgresTransaction, apply_schema, in_postgres
from timelines.users import insert_tweet

SCHEMA = Path(approach1.__file__).parent / "schema_postgres.sql"
JOINS = {
    "join-on-read home timeline": approach1.HOME_TIMELINE,
    "fanout regenerate": approach2.HOME_TIMELINE_IDS_ABOVE,
    "hybrid regenerate": approach3_hybrid.HOME_TIMELINE_IDS_ABOVE,
}
USERS = 3_000
PARAMETERS = {"user": 7, "before": 2**63 - 1, "above": 0, "limit": 50}


@pytest.fixture(scope="module")
def graph(postgres_server):
    """3,000 users following 20 each and 60,000 tweets, analysed as the loader leaves it: a
    reader's followees wrote one tweet in 150, as on a real site, not one in 15."""
    url = postgres_server.create_database("plans")
    rng = random.Random(1)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA.read_text())
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO users (id, username, created_at) VALUES (%s, %s, '')",
                [(u, f"u{u}") for u in range(1, USERS + 1)],
            )
            pairs = {(u, rng.randint(1, USERS)) for u in range(1, USERS + 1) for _ in range(20)}
            follows = sorted(pair for pair in pairs if pair[0] != pair[1])
            cursor.executemany("INSERT INTO follows VALUES (%s, %s)", follows)
            with cursor.copy("COPY tweets (user_id, text, created_at) FROM STDIN") as copy:
                for _ in range(20 * USERS):
                    copy.write_row((rng.randint(1, USERS), "x", ""))
            cursor.executemany("INSERT INTO celebrities VALUES (%s)", [(u,) for u in range(1, 6)])
        connection.execute("ANALYZE")
    yield url
    postgres_server.drop_database("plans")


def plan_of(url: str, sql) -> str:
    with psycopg.connect(url) as connection:
        rows = connection.execute("EXPLAIN " + in_postgres(sql), PARAMETERS).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("name", JOINS)
def test_each_followees_newest_tweets_come_from_the_author_index(graph, name):
    plan = plan_of(graph, JOINS[name])
    assert "tweets_by_author" in plan, plan
    assert "Seq Scan on tweets" not in plan, plan
    assert "Seq Scan on follows" not in plan, plan


def tweet_rows_read(url: str, sql) -> int:
    """Rows the statement's plan took from tweets, as EXPLAIN ANALYZE counted them."""
    with psycopg.connect(url) as connection:
        ((plan,),) = connection.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + in_postgres(sql), PARAMETERS
        ).fetchall()

    def walk(node: dict) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if node.get("Relation Name") == "tweets" else 0
        return own + sum(walk(child) for child in node.get("Plans", ()))

    return walk(plan[0]["Plan"])


def test_the_lateral_join_reads_at_most_limit_tweets_per_followee(graph):
    """Why PostgreSQL's statement differs from SQLite's: the join as written for SQLite has
    no per-followee limit, so PostgreSQL walks the tweets index backwards from the newest,
    skipping everyone else's, until 50 are the followees'; the LATERAL form reads each
    followee's newest, at most 50 each."""
    with psycopg.connect(graph) as connection:
        (followees,) = connection.execute("SELECT count(*) FROM follows WHERE follower_id = 7").fetchone()
    lateral = tweet_rows_read(graph, JOINS["join-on-read home timeline"])
    plain = tweet_rows_read(graph, JOINS["join-on-read home timeline"].sqlite)
    # each followee's newest 50 ids, then the 50 rows that won
    assert lateral <= (followees + 1) * PARAMETERS["limit"]
    assert plain > 1.5 * lateral, (plain, lateral)


def test_tweet_ids_grow_in_commit_order(new_postgres_database):
    """A writer that inserts a tweet waits for the one before it to commit, so no id can
    become visible after a higher one (what the catch-up after a regeneration relies on)."""
    url = new_postgres_database()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA.read_text())
        connection.execute("INSERT INTO users (username, created_at) VALUES ('a', ''), ('b', '')")
    first, second = psycopg.connect(url), psycopg.connect(url)
    try:
        early = insert_tweet(PostgresTransaction(first), 1, "first, not yet committed")
        late: list[tuple] = []
        writer = threading.Thread(
            target=lambda: late.append(insert_tweet(PostgresTransaction(second), 2, "x"))
        )
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive(), "the second tweet did not wait for the first to commit"
        first.commit()
        writer.join(timeout=10)
        second.commit()
        assert late[0][0] > early[0]
    finally:
        first.close()
        second.close()


def test_a_write_that_loses_a_deadlock_is_run_again(new_postgres_database):
    """Two writes that update the same two rows in opposite order, as a follow and the reverse
    follow update two users' counters: PostgreSQL aborts one, and it runs again."""
    url = new_postgres_database()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SCHEMA.read_text())
        connection.execute("INSERT INTO users (username, created_at) VALUES ('a', ''), ('b', '')")
    both_hold_their_first_row = threading.Barrier(2, timeout=10)
    attempts: list[str] = []

    def counting(first: int, second: int):
        def work(tx) -> str:
            attempts.append(f"{first}->{second}")
            tx.execute("UPDATE users SET followers = followers + 1 WHERE id = ?", (first,))
            if len(attempts) <= 2:
                both_hold_their_first_row.wait()
            tx.execute("UPDATE users SET following = following + 1 WHERE id = ?", (second,))
            return "committed"

        return work

    async def opposite_orders() -> list[str]:
        database = await PostgresDatabase.open(url, connections=2)
        try:
            return await asyncio.gather(database.write(counting(1, 2)), database.write(counting(2, 1)))
        finally:
            await database.close()

    assert asyncio.run(opposite_orders()) == ["committed", "committed"]
    assert len(attempts) == 3, attempts  # the loser ran twice
    with psycopg.connect(url) as connection:
        counters = connection.execute("SELECT followers, following FROM users ORDER BY id").fetchall()
    assert counters == [(1, 1), (1, 1)]


def test_a_second_worker_starting_does_not_wait_for_the_first_ones_writes(new_postgres_database):
    """uvicorn --workers 2 on PostgreSQL: the second process applies the schema while the
    first already writes. It must not queue for table locks behind those writes."""
    url = new_postgres_database()
    asyncio.run(apply_schema(url))
    with psycopg.connect(url) as writing:
        writing.execute("INSERT INTO users (username, created_at) VALUES ('a', '')")  # open

        async def second_worker_starts() -> None:
            await asyncio.wait_for(apply_schema(url), timeout=5)

        asyncio.run(second_worker_starts())


@pytest.mark.parametrize(
    "url, says",
    [
        (f"postgresql://nobody@127.0.0.1:{free_port()}/none", "PostgreSQL unreachable at DATABASE_URL="),
        ("mysql://root@127.0.0.1/timelines", "DATABASE_URL must look like"),
    ],
)
def test_a_wrong_or_unreachable_database_is_one_line(tmp_path, url, says):
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "approach1:app", "--port", str(free_port())],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = started.stdout + started.stderr
    assert started.returncode != 0
    assert "Traceback" not in output, output
    assert len([line for line in output.splitlines() if "DATABASE_URL" in line]) == 1, output
    assert says in output, output


@pytest.mark.parametrize("module", APPS)
def test_a_lost_database_is_a_503_that_names_it(tmp_path, redis_server, module):
    server = PostgresServer().start()
    db = redis_server.take_db()
    url = server.create_database("lost")
    app = AppServer(module, tmp_path / "unused.db", redis_server.url(db), database_url=url).start()
    try:
        alice = app.create_user("alice")
        server.stop(mode="immediate")
        health = app.http.get("/health")
        assert health.status_code == 503 and "DATABASE_URL" in health.json()["detail"], health.text
        for response in (app.http.get(f"/users/{alice}"), app.http.post("/users", json={"username": "bob"})):
            assert response.status_code == 503, response.text
            assert "DATABASE_URL" in response.json()["detail"]
        assert "Traceback" not in app.log.read_text()
    finally:
        app.stop()
        server.stop()
        redis_server.give_back_db(db)
