"""The joins the apps run use the indexes: DDIA's home-timeline join finds the follower's
followees through an index of follows and each followee's tweets by (user_id, id); neither
big table is ever scanned."""

import random
import sqlite3

import pytest

import approach1
import approach2
import approach3_hybrid
from timelines.sqlite import SCHEMA

JOINS = {
    "join-on-read home timeline": approach1.HOME_TIMELINE,
    "fanout regenerate": approach2.HOME_TIMELINE_IDS_ABOVE,
    "hybrid regenerate": approach3_hybrid.HOME_TIMELINE_IDS_ABOVE,
}


@pytest.fixture(scope="module", params=["fresh", "analyzed"])
def database(tmp_path_factory, request):
    connection = sqlite3.connect(tmp_path_factory.mktemp("plan") / "plan.db")
    connection.executescript(SCHEMA.read_text())
    rng = random.Random(1)
    users = range(1, 301)
    connection.executemany(
        "INSERT INTO users (id, username, created_at) VALUES (?, ?, '')", [(u, f"u{u}") for u in users]
    )
    connection.executemany(
        "INSERT OR IGNORE INTO follows VALUES (?, ?)",
        [(u, rng.choice(users)) for u in users for _ in range(20)],
    )
    connection.executemany(
        "INSERT INTO tweets (user_id, text, created_at) VALUES (?, 'x', '')",
        [(rng.choice(users),) for _ in range(30_000)],
    )
    connection.executemany("INSERT INTO celebrities VALUES (?)", [(u,) for u in users[:5]])
    if request.param == "analyzed":
        connection.execute("ANALYZE")
    yield connection
    connection.close()


@pytest.mark.parametrize("name", JOINS)
def test_home_timeline_joins_use_the_indexes(database, name):
    parameters = {"user": 7, "before": 10_000, "above": 10_000, "limit": 50}
    plan = [row[3] for row in database.execute("EXPLAIN QUERY PLAN " + JOINS[name].sqlite, parameters)]
    assert any(
        step.startswith("SEARCH follows USING")
        and ("PRIMARY KEY (follower_id=?" in step or "follows_by_followee" in step)
        for step in plan
    ), plan
    assert any(
        step.startswith("SEARCH tweets USING") and "INDEX tweets_by_author (user_id=? AND id" in step
        for step in plan
    ), plan
    # Only the celebrities table, a handful of rows by definition, may be read whole.
    assert not [step for step in plan if step.startswith("SCAN") and step != "SCAN celebrities"], plan


def test_a_celebritys_recent_list_is_rebuilt_through_the_author_index(database):
    plan = [
        row[3]
        for row in database.execute(
            "EXPLAIN QUERY PLAN " + approach3_hybrid.AUTHOR_IDS_ABOVE,
            {"user": 3, "above": 10_000, "limit": 800},
        )
    ]
    assert plan == ["SEARCH tweets USING COVERING INDEX tweets_by_author (user_id=? AND id>?)"], plan


def test_the_celebrities_a_user_follows_come_from_their_follows(database):
    plan = [
        row[3]
        for row in database.execute("EXPLAIN QUERY PLAN " + approach3_hybrid.CELEBRITIES_FOLLOWED, (7,))
    ]
    # Either way round: the user's follows by primary key, or each celebrity's (a handful)
    # by the followee index with the follower fixed.
    assert any(step.startswith("SEARCH follows USING") and "follower_id=?" in step for step in plan), plan
    assert not [step for step in plan if step.startswith("SCAN") and step != "SCAN celebrities"], plan
