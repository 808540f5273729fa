"""Past capacity (docs/CONTRACT.md, Limits): every answer is a 200 or a quick 503 with
Retry-After that names what was busy, never a 500 or redis-py's "Too many connections", and
the app answers normally afterwards."""

import asyncio

import httpx
import pytest

from harness import APPS, FANOUT_APPS

BURST = 300


def build(app, readers: int = 20) -> tuple[list[int], list[int]]:
    """Two authors who have tweeted, and readers who follow both, so a read touches every store."""
    authors = [app.create_user(f"author{n}") for n in range(2)]
    users = [app.create_user(f"reader{n}") for n in range(readers)]
    for user in users:
        for author in authors:
            app.follow(user, author)
    for author in authors:
        app.tweet(author, "hello")
    return authors, users


async def burst(base_url: str, paths: list[str], method: str = "GET") -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.request(method, path) for path in paths))


def reads_and_unfollows(
    app, users: list[int], author: int, unfollowers: list[int]
) -> tuple[list[httpx.Response], list[int]]:
    """A read burst with unfollows of `author` by `unfollowers` in the middle of it."""

    async def both() -> tuple[list[httpx.Response], list[httpx.Response]]:
        reads = [f"/timeline/{users[n % len(users)]}" for n in range(BURST)]
        unfollows = [f"/users/{u}/following/{author}" for u in unfollowers]
        return await asyncio.gather(burst(app.url, reads), burst(app.url, unfollows, "DELETE"))

    reads, unfollows = asyncio.run(both())
    return reads, [r.status_code for r in unfollows]


def read_burst(app, users: list[int]) -> list[httpx.Response]:
    return asyncio.run(burst(app.url, [f"/timeline/{users[n % len(users)]}" for n in range(BURST)]))


def busy_answers(responses: list[httpx.Response]) -> list[str]:
    """The 503s' details, once every answer is checked to be a 200 or a 503 with Retry-After."""
    assert {r.status_code for r in responses} <= {200, 503}, [
        r.text for r in responses if r.status_code >= 300
    ][:3]
    busy = [r for r in responses if r.status_code == 503]
    assert all(r.headers.get("retry-after") == "1" for r in busy)
    return [r.json()["detail"] for r in busy]


def clients_of_db(redis_server, db: int) -> int:
    """Connections to Redis database `db`, but this one."""
    client = redis_server.client(db)
    me = client.client_id()
    return sum(1 for c in client.client_list() if c["db"] == str(db) and int(c["id"]) != me)


def assert_log_clean(app) -> None:
    log = app.log.read_text(errors="replace")
    assert "Too many connections" not in log
    assert "Traceback" not in log


def assert_answers_normally(app, users: list[int]) -> None:
    for user in users:
        assert len(app.timeline(user)) == 2
    assert app.http.get("/health").status_code == 200


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_a_tiny_redis_pool_waits_then_answers_503_naming_redis(start_app, redis_server, module):
    app = start_app(module, redis_max_connections=2, redis_pool_timeout=0.005, max_in_flight=10_000)
    authors, users = build(app)
    app.wait_for_fanout()
    readers, unfollowers = users[:10], users[10:]
    reads, unfollows = reads_and_unfollows(app, readers, authors[0], unfollowers)
    busy = busy_answers(reads)
    assert busy, "a 5 ms wait for one of 2 connections, 300 reads at once: some must wait it out"
    assert all("Redis" in detail and "REDIS_MAX_CONNECTIONS" in detail for detail in busy), busy[:3]
    # Committed, so answered 204 even when Redis could not take the change: the outbox owes it.
    assert unfollows == [204] * len(unfollowers)
    app.wait_for_fanout()
    assert all(len(app.timeline(user)) == 1 for user in unfollowers)
    users = readers
    db = int(app.redis_url.rsplit("/", 1)[1])
    assert 1 <= clients_of_db(redis_server, db) <= 2  # the pool keeps what it opened
    assert_answers_normally(app, users)
    assert_log_clean(app)


def test_a_tiny_postgres_pool_waits_then_answers_503_naming_postgres(start_app, postgres_url):
    app = start_app(
        "approach1",
        database_url=postgres_url,
        reader_connections=1,
        database_pool_timeout=0.005,
        max_in_flight=10_000,
    )
    _, users = build(app)
    busy = busy_answers(read_burst(app, users))
    assert busy, "a 5 ms wait for PostgreSQL's one read connection, 300 reads at once: some must wait it out"
    assert all("PostgreSQL" in detail and "READER_CONNECTIONS" in detail for detail in busy), busy[:3]
    assert_answers_normally(app, users)
    assert_log_clean(app)


@pytest.mark.parametrize("module", APPS)
def test_past_max_in_flight_requests_are_shed_with_503_and_the_app_stays_up(start_app, module):
    app = start_app(module, max_in_flight=4)
    _, users = build(app)
    if module in FANOUT_APPS:
        app.wait_for_fanout()
    busy = busy_answers(read_burst(app, users))
    assert busy, "300 reads at once, 4 allowed in flight: some must be shed"
    assert all("MAX_IN_FLIGHT=4" in detail for detail in busy), busy[:3]
    assert_answers_normally(app, users)
    assert app.http.get("/stats").status_code == 200
    assert_log_clean(app)
