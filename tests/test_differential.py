"""The three apps and an independent model of the definition, given the same seeded random
history, answer every timeline page identically once the fanout backlog is 0.

The settings make the hard cases common: a short TIMELINE_LENGTH so pages run past the
cache, CELEBRITY_THRESHOLD 4 so accounts cross it in both directions, and histories that
push one account over the threshold and back down on purpose.
"""

import psycopg
import pytest

from harness import APPS
from history import SETTINGS, run_differential


# 5 is cut back to 5 on every push; 33 is cut back to 31, two pushes at a time.
@pytest.mark.parametrize("seed, timeline_length", [(1, 5), (2, 5), (3, 33)])
def test_three_apps_and_the_model_agree(start_app, seed, timeline_length):
    settings = {**SETTINGS, "timeline_length": timeline_length}
    apps = [start_app(module, **settings) for module in APPS]
    lockstep = run_differential(apps, seed)
    hybrid = apps[2].stats()
    assert hybrid["fanout_writes"] < apps[1].stats()["fanout_writes"], (
        "the hybrid should skip fanout for celebrities"
    )
    assert len(lockstep.model.tweets) > 50
    if timeline_length == 33:
        assert apps[1].stats()["cache"]["beyond_cache"] > 0, "no page ran past the cache"


# The same history on PostgreSQL: the other dialect of every statement, writes that run side
# by side, claims with SKIP LOCKED.
@pytest.mark.parametrize("seed, timeline_length", [(5, 5), (6, 33)])
def test_three_apps_and_the_model_agree_on_postgresql(
    start_app, new_postgres_database, seed, timeline_length
):
    settings = {**SETTINGS, "timeline_length": timeline_length}
    urls = [new_postgres_database() for _ in APPS]
    apps = [start_app(module, database_url=url, **settings) for module, url in zip(APPS, urls, strict=True)]
    lockstep = run_differential(apps, seed)
    assert len(lockstep.model.tweets) > 50
    for url in urls:  # each app kept its rows in PostgreSQL, not in a SQLite file
        with psycopg.connect(url) as connection:
            (tweets,) = connection.execute("SELECT count(*) FROM tweets").fetchone()
        assert tweets == len(lockstep.model.tweets)
    if timeline_length == 33:
        assert apps[1].stats()["cache"]["beyond_cache"] > 0, "no page ran past the cache"


@pytest.mark.parametrize("seed", [4])
def test_agree_with_two_uvicorn_workers(start_app, seed):
    apps = [start_app("approach1", **SETTINGS)]
    apps += [start_app(module, workers=2, **SETTINGS) for module in APPS[1:]]
    run_differential(apps, seed)
    for app in apps[1:]:
        stats = app.stats()
        assert stats["tweets_fanned_out"] <= stats["tweets"]
