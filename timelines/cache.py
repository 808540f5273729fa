"""The cached home timeline of the two fanout designs, in Mastodon's FeedManager vocabulary:
push, merge (on follow), unmerge (on unfollow), regenerate (after a flush or a restart).

One sorted set per user, `timeline:{id}`, members and scores both tweet ids (ids grow with
time, so the id is the order and the cursor). Besides tweets it holds one marker member,
`floor`, whose score f says: every tweet of this timeline with an id above f is here. A
rebuilt timeline shorter than TIMELINE_LENGTH has f = 0 (it is complete); trimming the
oldest entries raises f to the highest id trimmed. That marker is what lets a cache that
is bounded, trimmed, merged into and unmerged from still answer exactly what the join
answers: a page that runs below f is finished from SQLite. A missing key (never built,
flushed, Redis restarted) is not an empty timeline; it is rebuilt from SQLite.

`timeline-version:{id}` counts merges and unmerges, so that a regeneration that read SQLite
before a follow change gives up instead of writing a stale timeline over it.

Tweet bodies live once each in `tweet:{id}`, encoded as JSON, so a page is one Lua call:
ids, then bodies, in one round trip.

Every script keeps a single call short: the fanout sends followers in chunks sized to
take ~2 ms (timelines/fanout.py), so no call holds Redis for more than a few milliseconds.
"""

import logging

import redis.asyncio as redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("uvicorn.error")

READ = """
local floor = redis.call('ZSCORE', KEYS[1], 'floor')
if not floor then
    return {0, redis.call('GET', KEYS[2]) or '0'}
end
local ids = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[1], '(' .. floor, 'BYSCORE', 'REV',
                       'LIMIT', 0, ARGV[2])
local bodies = {}
if #ids > 0 then
    local keys = {}
    for i, id in ipairs(ids) do keys[i] = 'tweet:' .. id end
    bodies = redis.call('MGET', unpack(keys))
end
return {1, floor, ids, bodies}
"""

# Shared by the scripts that add: a timeline never holds more than `length` tweets; one
# that would is cut back to the newest `keep` (a little fewer), and the floor rises to the
# highest id dropped. Cutting a slack at a time makes the cut, three commands on a cold
# sorted set, happen once every (length - keep) pushes instead of on every push: about a
# third of the fanout's cost on full timelines (bench/fanout.py). Rank 0 is always the
# floor marker, since every tweet scores above it.
TRIM = """
local function trim(key, length, keep)
    local size = redis.call('ZCARD', key) - 1
    if size > length then
        local drop = size - keep
        local cut = redis.call('ZRANGE', key, drop, drop, 'WITHSCORES')
        redis.call('ZREMRANGEBYRANK', key, 1, drop)
        redis.call('ZADD', key, cut[2], 'floor')
    end
end
"""

# KEYS: followers' timelines. ARGV: tweet id, length, keep. Returns timelines written.
PUSH = TRIM + """
local id, length, keep, written = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), 0
local score = tonumber(id)
for _, key in ipairs(KEYS) do
    local floor = redis.call('ZSCORE', key, 'floor')
    if floor and score > tonumber(floor) and redis.call('ZADD', key, id, id) == 1 then
        written = written + 1
        trim(key, length, keep)
    end
end
return written
"""

# KEYS: pairs of (timeline, version). ARGV: length, keep, source floor, tweet ids.
# The ids are complete above the source floor (a user's newest N tweets, say), so the
# merged timeline can only claim completeness above the higher of the two floors.
MERGE = TRIM + """
local length, keep, source_floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for k = 1, #KEYS, 2 do
    local key = KEYS[k]
    redis.call('INCR', KEYS[k + 1])
    local floor = redis.call('ZSCORE', key, 'floor')
    if floor then
        floor = math.max(tonumber(floor), source_floor)
        redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
        redis.call('ZADD', key, floor, 'floor')
        for i = 4, #ARGV do
            if tonumber(ARGV[i]) > floor then redis.call('ZADD', key, ARGV[i], ARGV[i]) end
        end
        trim(key, length, keep)
    end
end
return 1
"""

# KEYS: timeline, version. ARGV: tweet ids to take out.
UNMERGE = """
redis.call('INCR', KEYS[2])
for i = 1, #ARGV, 4000 do
    redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
end
return 1
"""

# KEYS: timeline, version. ARGV: the version read before the regeneration's SQL, floor, ids.
REGENERATE = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('ZADD', KEYS[1], ARGV[2], 'floor')
for i = 3, #ARGV, 2000 do
    local last = math.min(i + 1999, #ARGV)
    local args = {}
    for j = i, last do
        args[#args + 1] = ARGV[j]
        args[#args + 1] = ARGV[j]
    end
    redis.call('ZADD', KEYS[1], unpack(args))
end
return 1
"""

# KEYS: timeline, version. Drops a timeline whose follows changed while Redis was away.
EVICT = """
redis.call('INCR', KEYS[2])
return redis.call('DEL', KEYS[1])
"""


def timeline_key(user_id: int) -> str:
    return f"timeline:{user_id}"


def version_key(user_id: int) -> str:
    return f"timeline-version:{user_id}"


def connect(redis_url: str) -> redis.Redis:
    # One retry reconnects a pooled socket that died with a restarted Redis; more would
    # only make a request wait longer while Redis is really down.
    return redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=1,
                                retry=Retry(NoBackoff(), 1))


class Page:
    """What the cache holds for one page: ids newest first, bodies (None where evicted),
    and the floor below which the cache knows nothing."""

    __slots__ = ("ids", "bodies", "floor")

    def __init__(self, ids: list[int], bodies: list[bytes | None], floor: int):
        self.ids, self.bodies, self.floor = ids, bodies, floor


class TimelineCache:
    def __init__(self, client: redis.Redis, length: int):
        self.redis = client
        self.length = length
        self.keep = length - length // 16
        self._read = client.register_script(READ)
        self._push = client.register_script(PUSH)
        self._merge = client.register_script(MERGE)
        self._unmerge = client.register_script(UNMERGE)
        self._regenerate = client.register_script(REGENERATE)
        self._evict = client.register_script(EVICT)

    async def read(self, user_id: int, before: int, limit: int) -> Page | str:
        """A Page, or (timeline not cached) the version string a regeneration must present."""
        reply = await self._read(keys=[timeline_key(user_id), version_key(user_id)],
                                 args=[before, limit])
        if reply[0] == 0:
            return reply[1].decode()
        _, floor, ids, bodies = reply
        return Page([int(i) for i in ids], bodies, int(float(floor)))

    async def store_tweets(self, encoded: dict[int, bytes]) -> None:
        if encoded:
            await self.redis.mset({f"tweet:{tweet_id}": body for tweet_id, body in encoded.items()})

    async def push(self, tweet_id: int, follower_ids: list[int]) -> int:
        return await self._push(keys=[timeline_key(f) for f in follower_ids],
                                args=[tweet_id, self.length, self.keep])

    async def merge(self, user_ids: list[int], tweet_ids: list[int], source_floor: int) -> None:
        keys = [key for u in user_ids for key in (timeline_key(u), version_key(u))]
        await self._merge(keys=keys, args=[self.length, self.keep, source_floor, *tweet_ids])

    async def unmerge(self, user_id: int, tweet_ids: list[int]) -> None:
        await self._unmerge(keys=[timeline_key(user_id), version_key(user_id)], args=tweet_ids)

    async def floor(self, user_id: int) -> int | None:
        score = await self.redis.zscore(timeline_key(user_id), "floor")
        return None if score is None else int(score)

    async def regenerate(self, user_id: int, version: str, tweet_ids: list[int]) -> bool:
        """Writes the newest TIMELINE_LENGTH ids of a timeline read from SQLite, unless a
        merge or unmerge happened since `version` was read. True when the key exists."""
        tweet_ids = tweet_ids[: self.length]
        floor = source_floor(tweet_ids, self.length)
        written = await self._regenerate(keys=[timeline_key(user_id), version_key(user_id)],
                                         args=[version, floor, *tweet_ids])
        return written == 1

    async def evict(self, user_id: int) -> None:
        await self._evict(keys=[timeline_key(user_id), version_key(user_id)])


def source_floor(newest_ids: list[int], length: int) -> int:
    """The floor of a list of someone's newest `length` ids: complete above its last id
    when it was cut at `length`, complete altogether when it was shorter."""
    return newest_ids[-1] - 1 if len(newest_ids) >= length else 0


async def say_if_unreachable(cache: TimelineCache, redis_url: str) -> bool:
    """Redis is a cache: the app starts without it, answers from SQLite and keeps what it
    owes in the outbox. One line says so; no traceback. True when Redis answered."""
    try:
        await cache.redis.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("Redis unreachable at REDIS_URL=%s (%s): answering from SQLite until it "
                    "is back; start redis-server or set REDIS_URL", redis_url, error)
        return False
    return True
