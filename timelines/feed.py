"""What both fanout designs do between SQLite and the timeline cache, in Mastodon's
FeedManager vocabulary: merge a followee's tweets on follow, unmerge them on unfollow,
regenerate a list Redis does not hold, hydrate a page's bodies, and answer from SQLite
where the cache cannot. Identical for approach 2 and the hybrid, so it lives once; the
queries that differ by design (which tweets a regenerated timeline holds, which accounts it
pulls) are passed in."""

from collections.abc import Awaitable, Sequence
from typing import cast

import orjson
from fastapi.responses import Response

from timelines.cache import REDIS_DOWN, Miss, Page, RedisBusy, source_floor
from timelines.encoding import tweet_json
from timelines.fanout import SELECT_TWEETS, JobKind, owe
from timelines.http import problem

# Where the cache cannot answer, the fanout apps answer as join-on-read does: with its join.
from timelines.join import HOME_TIMELINE
from timelines.sql import Sql
from timelines.state import CachedStores
from timelines.users import SELECT_USER_EXISTS, tweet_page

LAST_TWEET_ID = "SELECT coalesce(max(id), 0) FROM tweets"
NEWEST_TWEET_IDS = "SELECT id FROM tweets WHERE user_id = ? ORDER BY id DESC LIMIT ?"
TWEET_IDS_ABOVE = "SELECT id FROM tweets WHERE user_id = ? AND id > ?"
FOLLOWS_NOW = "SELECT 1 FROM follows WHERE follower_id = ? AND followee_id = ?"


async def merge(stores: CachedStores, follower_id: int, followee_id: int) -> None:
    """The followee's newest tweets join the follower's cached timeline."""
    length = stores.cache.length
    rows = await stores.db.fetchall(NEWEST_TWEET_IDS, (followee_id, length))
    tweet_ids = [tweet_id for (tweet_id,) in rows]
    await stores.cache.merge([follower_id], tweet_ids, source_floor(tweet_ids, length))
    await settle(stores, follower_id, followee_id, following=True)


async def pull(stores: CachedStores, follower_id: int, celebrity_id: int) -> None:
    """The hybrid: a celebrity's tweets are read from its own list at read time, not merged."""
    await stores.cache.pull([follower_id], celebrity_id)
    await settle(stores, follower_id, celebrity_id, following=True)


async def unmerge(stores: CachedStores, follower_id: int, followee_id: int) -> None:
    """The followee's tweets leave the follower's cached timeline (those above its floor are
    all it can hold), and the followee is no longer pulled (the hybrid)."""
    floor = await stores.cache.floor(follower_id)
    if floor is None:
        # Nothing cached, but a regeneration that read the old graph may be about to write
        # it: evicting drops its token, so that regeneration gives up (a merge drops it too).
        await stores.cache.evict_timeline(follower_id)
    else:
        rows = await stores.db.fetchall(TWEET_IDS_ABOVE, (followee_id, floor))
        await stores.cache.unmerge(follower_id, followee_id, [tweet_id for (tweet_id,) in rows])
    await settle(stores, follower_id, followee_id, following=False)


async def settle(stores: CachedStores, follower_id: int, followee_id: int, following: bool) -> None:
    """A follow and an unfollow of one pair, racing (two clients, two worker processes), can
    reach Redis in the opposite order to the one they committed in, and the cache would keep
    the loser's change. So each looks at the pair again once
    its change is in: whichever change reaches Redis last then sees the final state, and
    if that is not what it applied, the timeline is dropped, to be rebuilt from SQLite."""
    if (await stores.db.fetchone(FOLLOWS_NOW, (follower_id, followee_id)) is not None) != following:
        await stores.cache.evict_timeline(follower_id)


async def update_cache(stores: CachedStores, user_id: int, change: Awaitable[None]) -> None:
    """The follow is committed whatever happens here: if Redis cannot take the change now,
    the outbox owes this user a rebuild, so the cache never answers from the old graph.
    Its connections all busy (RedisBusy) is the same: the call must not answer 503 once
    the follow is committed."""
    try:
        await change
    except (*REDIS_DOWN, RedisBusy):
        await stores.db.write(lambda tx: owe(tx, JobKind.EVICT, user_id))
        stores.worker.wake.set()


async def regenerate_and_answer(
    stores: CachedStores,
    user_id: int,
    miss: Miss,
    before: int,
    limit: int,
    timeline_ids_above: Sql,
    pulled_accounts: Sql | None = None,
) -> Response:
    """Regenerates a timeline Redis does not hold, and answers this page from SQLite.
    `timeline_ids_above` (:user, :above, :limit) -> ids, newest first: what the design caches;
    `pulled_accounts` (user_id) -> the accounts whose tweets it reads at read time instead."""
    async with stores.db.snapshot() as db:
        if not await (await db.execute(SELECT_USER_EXISTS, (user_id,))).fetchone():
            return problem(404, f"no user {user_id}")
        pulled = (
            []
            if pulled_accounts is None
            else [account for (account,) in await (await db.execute(pulled_accounts, (user_id,))).fetchall()]
        )
    if await regenerate(stores, miss, timeline_ids_above, user_id, pulled):
        stores.counters["regenerations"] += 1
    return await page_from_database(stores, user_id, before, limit)


async def regenerate(
    stores: CachedStores, miss: Miss, ids_above: Sql, owner: int, pulled: Sequence[int] = ()
) -> bool:
    """Rebuilds one cached list from `ids_above` (:user, :above, :limit) -> ids. The database assigns
    ids in commit order, so a tweet the snapshot missed has an id above its last one:
    reading those again once the key exists catches any push that found no key meanwhile.
    True when this call wrote the list."""
    length = stores.cache.length
    async with stores.db.snapshot() as db:
        [(last_id,)] = await (await db.execute(LAST_TWEET_ID)).fetchall()
        rows = await (await db.execute(ids_above, {"user": owner, "above": 0, "limit": length})).fetchall()
    if not await stores.cache.regenerate(miss, [tweet_id for (tweet_id,) in rows], pulled):
        return False
    late = await stores.db.fetchall(ids_above, {"user": owner, "above": last_id, "limit": length})
    await stores.cache.catch_up(miss, [tweet_id for (tweet_id,) in late])
    return True


async def page_from_database(stores: CachedStores, user_id: int, before: int, limit: int) -> Response:
    return await tweet_page(stores.db, HOME_TIMELINE, user_id, before, limit)


async def beyond_the_cache(
    stores: CachedStores, user_id: int, page: Page, before: int, limit: int
) -> list[bytes]:
    """The rest of a page the cache could not fill: below its floor, only SQLite knows."""
    rows = await stores.db.fetchall(
        HOME_TIMELINE, {"user": user_id, "before": min(before, page.floor + 1), "limit": limit}
    )
    return [tweet_json(row) for row in rows]


async def hydrate(stores: CachedStores, page: Page) -> list[bytes]:
    """Bodies for a page of ids; the few Redis no longer holds come from SQLite."""
    missing = [tweet_id for tweet_id, body in zip(page.ids, page.bodies, strict=True) if body is None]
    if not missing:
        return cast(list[bytes], page.bodies)  # none is None
    stores.counters["body_misses"] += len(missing)
    rows = await stores.db.fetchall(SELECT_TWEETS, (orjson.dumps(missing).decode(),))
    found = {row[0]: tweet_json(row) for row in rows}
    await stores.cache.store_tweets(found, beside=page.key)
    return [body or found[tweet_id] for tweet_id, body in zip(page.ids, page.bodies, strict=True)]
