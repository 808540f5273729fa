"""The hybrid reads celebrities from memory: a warm read is one Redis call and no SQLite
round trip; a cold one (timeline or a celebrity's recent list gone) rebuilds what is missing;
crossing the threshold either way moves an account between pushed and pulled. Every page is
checked against join-on-read, driven over HTTP the same way."""

import pytest

from harness import AppServer

THRESHOLD = 4  # the reader and three fans
READER, CELEBRITY, FANS = 1, 2, (3, 4, 5)


@pytest.fixture
def pair(tmp_path, redis_server):
    """Join-on-read and the hybrid with the same history; the hybrid on a Redis db of its own."""
    db = redis_server.take_db()
    apps = [
        AppServer("approach1", tmp_path / "join.db", redis_server.url(db)),
        AppServer(
            "approach3_hybrid",
            tmp_path / "hybrid.db",
            redis_server.url(db),
            celebrity_threshold=THRESHOLD,
            timeline_length=8,
        ),
    ]
    for app in apps:
        app.start()
    yield apps, redis_server.client(db)
    for app in apps:
        app.stop()
    redis_server.give_back_db(db)


def everyone(apps, call: str, *args) -> None:
    for app in apps:
        getattr(app, call)(*args)


def build(apps) -> None:
    """Users 1-6; the reader follows 6 (ordinary) and 2, whom fans 3-5 make a celebrity."""
    for n in range(1, 7):
        everyone(apps, "create_user", f"user{n}")
    everyone(apps, "follow", READER, 6)
    everyone(apps, "follow", READER, CELEBRITY)
    for n in range(12):
        everyone(apps, "tweet", CELEBRITY if n % 3 else 6, f"tweet {n}")
    for fan in FANS:
        everyone(apps, "follow", fan, CELEBRITY)
    for n in range(12):
        everyone(apps, "tweet", CELEBRITY if n % 2 else 6, f"later {n}")


def assert_same_pages(apps) -> None:
    join, hybrid = apps
    hybrid.wait_for_fanout()
    newest = join.timeline(READER, 200)
    for limit in (1, 5, 8, 50):
        for before in (None, *newest[::4]):
            assert hybrid.timeline(READER, limit, before) == join.timeline(READER, limit, before), (
                f"limit={limit} before={before}"
            )


def pulled(client, user: int) -> list[bytes]:
    tail = client.lindex(f"timeline:{user}", -1)
    return tail.split(b"|")[1].split(b",") if b"|" in tail else []


def commands_run(client) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


def test_a_warm_read_is_one_redis_call_and_no_sqlite(pair):
    apps, client = pair
    build(apps)
    hybrid = apps[1]
    assert_same_pages(apps)
    assert hybrid.stats()["celebrities"] == 1 and pulled(client, READER) == [b"2"]
    hybrid.timeline(READER)  # warm: the timeline and the recent list are built

    def requests_sqlite() -> int:
        return hybrid.stats()["sqlite_round_trips"]["requests"]

    first = requests_sqlite()
    per_stats_call = requests_sqlite() - first  # /stats itself asks SQLite
    before_reads = requests_sqlite()
    client.config_resetstat()
    pages = [hybrid.timeline(READER, 5) for _ in range(10)]
    ran = commands_run(client)
    assert requests_sqlite() - before_reads == per_stats_call, "a warm read went to SQLite"
    assert ran.pop("evalsha") == 10 and ran.pop("mget") == 10, ran
    assert set(ran) <= {"lindex", "lrange", "info", "config|resetstat"}, f"more than the one call: {ran}"
    assert all(page == pages[0] for page in pages) and len(pages[0]) == 5
    assert set(pages[0]) & set(apps[0].timeline(READER, 5)) == set(pages[0])


def test_a_cold_read_rebuilds_the_celebrity_list_and_the_timeline(pair):
    apps, client = pair
    build(apps)
    hybrid = apps[1]
    assert_same_pages(apps)
    client.delete(f"recent:{CELEBRITY}")
    assert_same_pages(apps)  # the first page rebuilt it
    assert client.exists(f"recent:{CELEBRITY}")
    client.delete(f"timeline:{READER}", f"recent:{CELEBRITY}")
    assert_same_pages(apps)
    assert pulled(client, READER) == [b"2"], "a rebuilt timeline names the celebrities it follows"
    assert hybrid.stats()["cache"]["misses"] >= 2


def test_crossing_the_threshold_both_ways_moves_the_account_between_pushed_and_pulled(pair):
    apps, client = pair
    build(apps)
    hybrid = apps[1]
    assert_same_pages(apps)
    fanned_out = hybrid.stats()["tweets_fanned_out"]

    everyone(apps, "unfollow", FANS[0], CELEBRITY)  # 2 followers left: no longer a celebrity
    everyone(apps, "tweet", CELEBRITY, "pushed again")
    assert_same_pages(apps)
    assert hybrid.stats()["celebrities"] == 0
    # The backfill leaves the pull (harmless: the tweets are in the timeline too); a timeline
    # rebuilt now no longer names the account.
    client.delete(f"timeline:{READER}")
    assert_same_pages(apps)
    assert pulled(client, READER) == []
    hybrid.timeline(FANS[1])  # cached while the account is pushed, pulled from below
    assert hybrid.stats()["tweets_fanned_out"] == fanned_out + 1, "its new tweet is fanned out"

    everyone(apps, "follow", FANS[0], CELEBRITY)  # a celebrity again
    everyone(apps, "tweet", CELEBRITY, "pulled again")
    assert_same_pages(apps)
    assert hybrid.stats()["celebrities"] == 1
    assert pulled(client, READER) == [b"2"] and pulled(client, FANS[1]) == [b"2"]
    assert hybrid.stats()["tweets_fanned_out"] == fanned_out + 1, "its new tweet is not fanned out"


def test_a_run_of_celebrity_tweets_newer_than_the_page_is_read_past_the_first_few(pair):
    """The read takes a celebrity's recent tweets a few at a time, down to the owner's own
    page: a run longer than the first few must still come whole, and stop where it should."""
    apps, client = pair
    build(apps)
    for n in range(6):
        everyone(apps, "tweet", 6, f"ordinary {n}")
    for n in range(7):
        everyone(apps, "tweet", CELEBRITY, f"run {n}")
    everyone(apps, "tweet", 6, "after the run")
    assert_same_pages(apps)
    client.delete(f"timeline:{READER}", f"recent:{CELEBRITY}")
    assert_same_pages(apps)
