"""The timeline cache's Lua scripts on a real redis-server: trimming, the floor marker,
merging with a source floor, unmerging, and a regeneration that yields to a concurrent change."""

import asyncio

import pytest

from timelines.cache import Miss, Page, TimelineCache, connect, source_floor, timeline_key

LENGTH = 4


@pytest.fixture
def run(redis_server):
    """run(async_fn) -> its result, with a TimelineCache on a Redis db of its own."""
    db = redis_server.take_db()

    def run_with_cache(scenario):
        async def main():
            client = connect(redis_server.url(db))
            try:
                return await scenario(TimelineCache(client, LENGTH))
            finally:
                await client.aclose()

        return asyncio.run(main())

    yield run_with_cache
    redis_server.give_back_db(db)


async def built(cache: TimelineCache, user: int, ids: list[int]) -> TimelineCache:
    miss = await cache.read(user, 2**63 - 1, 1)
    assert isinstance(miss, Miss)
    assert await cache.regenerate(miss, ids)
    return cache


async def push(cache: TimelineCache, tweet_id: int, users: list[int]) -> int:
    return (await cache.push(tweet_id, [timeline_key(u) for u in users])).written


async def page(cache: TimelineCache, user: int, before: int = 2**63 - 1, limit: int = 50) -> Page:
    result = await cache.read(user, before, limit)
    assert isinstance(result, Page), "timeline should be cached"
    return result


def test_push_skips_timelines_that_are_not_cached(run):
    async def scenario(cache):
        await built(cache, 1, [])
        written = await push(cache, 10, [1, 2])
        return written, await page(cache, 1), await cache.read(2, 2**63 - 1, 50)

    written, cached, missing = run(scenario)
    assert written == 1
    assert cached.ids == [10] and cached.floor == 0
    assert isinstance(missing, Miss) and missing.token, "an uncached timeline is a miss, not an empty page"


def test_trimming_keeps_the_newest_and_raises_the_floor(run):
    async def scenario(cache):
        await built(cache, 1, [1, 2, 3])
        for tweet_id in (5, 6, 7):
            await push(cache, tweet_id, [1])
        return await page(cache, 1)

    cached = run(scenario)
    assert cached.ids == [7, 6, 5, 3]
    assert cached.floor == 2, "the highest id trimmed away"


def test_a_full_timeline_is_cut_back_a_slack_at_a_time(redis_server):
    async def scenario():
        client = connect(redis_server.url(db))
        cache = TimelineCache(client, 32)  # keeps 30 when it cuts
        try:
            await built(cache, 1, list(range(32, 0, -1)))  # full: ids 1..32
            sizes = []
            for tweet_id in range(33, 37):
                await push(cache, tweet_id, [1])
                sizes.append(len((await page(cache, 1)).ids))
            return sizes, await page(cache, 1)
        finally:
            await client.aclose()

    db = redis_server.take_db()
    try:
        sizes, cached = asyncio.run(scenario())
    finally:
        redis_server.give_back_db(db)
    assert sizes == [30, 31, 32, 30], "never over 32; cut to 30 when a push would pass it"
    assert cached.ids == list(range(36, 6, -1)) and cached.floor == 6


def test_push_below_the_floor_is_ignored(run):
    async def scenario(cache):
        await built(cache, 1, [10, 11, 12, 13, 14])  # five ids, LENGTH 4: floor 10
        assert (await page(cache, 1)).floor == 10
        written = await push(cache, 9, [1])  # a late fanout of an old tweet
        return written, await page(cache, 1)

    written, cached = run(scenario)
    assert written == 0 and cached.ids == [14, 13, 12, 11]


def test_read_pages_by_cursor_and_stops_at_the_floor(run):
    async def scenario(cache):
        await built(cache, 1, [2, 4, 6, 8, 10, 12])
        return await page(cache, 1, before=10, limit=2), await page(cache, 1, before=6, limit=5)

    first, deeper = run(scenario)
    assert first.ids == [8, 6]
    assert deeper.ids == [] and deeper.floor == 5, "below the floor the cache must not answer"


def test_merge_with_a_cut_source_cannot_claim_below_it(run):
    async def scenario(cache):
        await built(cache, 1, [1, 3])  # complete: floor 0
        # The followee's newest LENGTH tweets, cut there: complete only above 19.
        followee = [26, 24, 22, 20]
        await cache.merge([1], followee, source_floor(followee, LENGTH))
        return await page(cache, 1)

    merged = run(scenario)
    assert merged.floor == 19
    assert merged.ids == [26, 24, 22, 20], "entries at or below the new floor are dropped"


def test_merge_then_unmerge_restores_the_timeline(run):
    async def scenario(cache):
        await built(cache, 1, [1, 3])
        await cache.merge([1], [4, 2], 0)
        after_merge = (await page(cache, 1)).ids
        await cache.unmerge(1, 7, [4, 2])
        return after_merge, await page(cache, 1)

    after_merge, after_unmerge = run(scenario)
    assert after_merge == [4, 3, 2, 1]
    assert after_unmerge.ids == [3, 1] and after_unmerge.floor == 0


def test_regeneration_yields_to_a_change_made_since_it_read_sqlite(run):
    async def scenario(cache):
        miss = await cache.read(1, 2**63 - 1, 50)  # a miss: the token to present
        await cache.merge([1], [5], 0)  # a follow lands meanwhile (no key yet: no-op)
        refused = await cache.regenerate(miss, [3, 2])
        retried = await cache.regenerate(await cache.read(1, 2**63 - 1, 50), [5, 3, 2])
        return refused, retried, await page(cache, 1)

    refused, retried, cached = run(scenario)
    assert not refused and retried
    assert cached.ids == [5, 3, 2]


def test_bodies_come_back_with_the_ids(run):
    async def scenario(cache):
        await built(cache, 1, [1, 2])
        await cache.store_tweets({2: b'{"id":2}'})
        return await page(cache, 1)

    cached = run(scenario)
    assert cached.ids == [2, 1]
    assert cached.bodies == [b'{"id":2}', None], "a body Redis lost is a None to fetch from SQLite"


def test_a_late_push_goes_to_its_place_and_a_repeated_one_is_not_pushed_twice(run):
    async def scenario(cache):
        await built(cache, 1, [2, 6])
        late, again, newest = await push(cache, 4, [1]), await push(cache, 4, [1]), await push(cache, 6, [1])
        return (late, again, newest), await page(cache, 1)

    written, cached = run(scenario)
    assert written == (1, 0, 0)
    assert cached.ids == [6, 4, 2]


def test_the_pulled_accounts_survive_trims_merges_and_unmerges(run):
    async def scenario(cache):
        await built(cache, 1, [1, 2])
        await cache.pull([1], 70)
        await cache.pull([1], 80)
        await cache.pull([1], 70)  # already pulled: named once
        for tweet_id in (3, 4, 5, 6):  # LENGTH 4: a trim
            await push(cache, tweet_id, [1])
        await cache.merge([1], [7], 0)
        tail_after_merge = await cache.redis.lindex(timeline_key(1), -1)
        await cache.unmerge(1, 70, [7])  # unfollowing 70 ends its pull
        return tail_after_merge, await cache.redis.lindex(timeline_key(1), -1), await page(cache, 1)

    tail_after_merge, tail_after_unmerge, cached = run(scenario)
    assert tail_after_merge.split(b"|")[1] == b"70,80"
    assert tail_after_unmerge.split(b"|")[1] == b"80"
    assert cached.ids == [6, 5, 4] and cached.floor == 3


def test_a_catch_up_after_a_follow_change_drops_the_list_instead(run):
    async def scenario(cache):
        miss = await cache.read(1, 2**63 - 1, 1)
        await cache.regenerate(miss, [2, 1])
        await cache.catch_up(miss, [3])  # nothing changed since: the late id goes in
        kept = await page(cache, 1)
        await cache.merge([2], [9], 0)  # someone else's change: no effect on user 1
        await cache.unmerge(1, 5, [])  # a follow change of user 1's own
        await cache.catch_up(miss, [4])
        return kept, await cache.read(1, 2**63 - 1, 50)

    kept, after = run(scenario)
    assert kept.ids == [3, 2, 1]
    assert isinstance(after, Miss), "a catch-up that may be stale drops the list"
