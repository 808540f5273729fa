"""The cached home timeline of the two fanout designs, in Mastodon's FeedManager vocabulary:
push, merge (on follow), unmerge (on unfollow), regenerate (after a flush, a restart or an
eviction).

One Redis list per user, `timeline:{id}`: tweet ids, newest first, then one tail element,
the marker `f<floor>[|<pulled>]`. A native list of small integers is what Twitter kept (and
what `python -m bench encodings` measured cheapest: a few bytes an entry against ~100 for a
sorted set, and less Redis CPU per push). The floor f says: every tweet of this timeline with
an id above f is here. A rebuilt timeline shorter than TIMELINE_LENGTH has f = 0 (it is
complete); trimming the oldest entries raises f to the highest id trimmed. That marker is
what lets a cache that is bounded, trimmed, merged into and unmerged from still answer
exactly what the join answers: a page that runs below f is finished from SQLite. `pulled`
(the hybrid only) lists the celebrities the owner follows, whose tweets are read from their
own lists, `recent:{id}`, which have the same layout. A missing key (never built, flushed,
evicted) is not an empty timeline; it is rebuilt from SQLite.

`token:{key}` guards a rebuild: a read that misses leaves a fresh token, every follow change
deletes it, and a rebuild writes only while its token is still there, so a rebuild that read
SQLite before a follow change never writes a stale timeline over it. Any of these keys may
be evicted at any moment (maxmemory-policy allkeys-lru): each absence is read as "rebuild".

Tweet bodies live once each in `tweet:{id}`, encoded as JSON, for TWEET_TTL seconds, so a
page is one Lua call: ids, then bodies, in one round trip; a body that has gone is read
from SQLite.

The scripts are timelines/lua/*.lua, each run after list.lua, the functions they share.
Every script keeps a single call short: the fanout sends followers in chunks sized to take
~2 ms (timelines/fanout.py).

On a Redis Cluster (REDIS_CLUSTER=1, REDIS_URL one seed node) a script may touch the keys of
one slot only, and a read must stay one call. So users are split into SHARDS shards by id,
and every key a reader's read touches carries the reader's shard as a hash tag, which Redis
hashes alone: `timeline:{s3.20}:1234`, its `token:timeline:{s3.20}:1234`, the bodies of
its page `tweet:{s3.20}:<id>`, and, in the hybrid, the recent lists it pulls,
`recent:{s3.20}:<celebrity>`. The scripts name the keys they are not passed (bodies, recent
lists, their tokens) with their given key's tag, so they stay in its slot. A fanout groups
the followers by shard, a call per shard's chunk (Keys.by_shard). Each celebrity's recent
list is kept once per shard, so a celebrity's tweet costs SHARDS pushes, however many
millions follow it; each body is stored once per shard (Keys.body_copies says why). On one
Redis, without REDIS_CLUSTER, nothing carries a tag: the keys are the ones above.
"""

import asyncio
import builtins
import contextlib
import functools
import itertools
import logging
import math
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeGuard, cast

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.connection import HiredisRespSerializer
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    OutOfMemoryError,
    RedisClusterException,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)
from redis.retry import Retry

log = logging.getLogger("uvicorn.error")


class ClusterUnavailable(ConnectionError):
    """No node of the cluster answered, or they do not yet cover every slot (still
    forming): as much "Redis is down" as a refused connection."""


class RedisBusy(Exception):
    """Every connection of this process's pool (REDIS_MAX_CONNECTIONS) stayed busy for
    REDIS_POOL_TIMEOUT: this process is overloaded, Redis is not down. Not a ConnectionError,
    so that a read does not fall back to the database, loading it too, but answers 503."""


# Redis cannot take a call now: down, too slow, or full under maxmemory-policy noeviction;
# on a cluster also failing (CLUSTERDOWN), resharding (TRYAGAIN) or a slot nobody serves.
# The apps answer from SQLite and the outbox keeps what is owed. Any other cluster error
# (keys of two slots in one call, say) is a bug, and is not caught as this.
REDIS_DOWN = (
    ConnectionError,
    TimeoutError,
    OutOfMemoryError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)

LUA = Path(__file__).resolve().parent / "lua"


def lua(*files: str) -> str:
    """One Redis script of the files in timelines/lua/, in the order named: list.lua, the
    functions the others call, first (a script cannot import)."""
    return "".join((LUA / name).read_text() for name in files)


READ = lua("list.lua", "read.lua")
PUSH = lua("list.lua", "push.lua")
CATCH_UP = lua("list.lua", "catch_up.lua")
MERGE = lua("list.lua", "merge.lua")
UNMERGE = lua("list.lua", "unmerge.lua")
PULL = lua("list.lua", "pull.lua")
REGENERATE = lua("list.lua", "regenerate.lua")
EVICT = lua("evict.lua")


# Users are split into this many shards on a cluster, each one hash slot, so one node, so
# that a Lua call touches one. Fixed, not derived from the node count: key names must not
# change when nodes are added (Redis moves slots, data and all, instead) and must agree in
# every process. 16 lets up to 16 primaries share the fanout; its price is that a tweet's
# fanout is a call per shard its followers fall in (an author's 75 followers fall in ~15)
# where one Redis takes one call, and a celebrity's tweet is 16 pushes and 16 bodies.
SHARDS = 16
TAG = re.compile(r"\{[^}]*\}:")  # the Lua `sibling`'s pattern


@functools.cache
def shard_tags(shards: int) -> tuple[str, ...]:
    """A hash tag per shard, chosen so that shard i's slot lies in the i-th 1/shards of the
    slot range: a cluster whose nodes hold even ranges of slots (as redis-cli and
    rig/redis_cluster.py split them) then holds shards/nodes shards each, within one.
    The plain `s0`..`s15` would put 6, 4 and 6 on three nodes."""
    tags = []
    for shard in range(shards):
        first, end = (
            shard * REDIS_CLUSTER_HASH_SLOTS // shards,
            (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards,
        )
        candidates = (f"s{shard}" if n == 0 else f"s{shard}.{n}" for n in itertools.count())
        tags.append(next(tag for tag in candidates if first <= key_slot(tag.encode()) < end))
    return tuple(tags)


@dataclass(frozen=True, slots=True)
class Keys:
    """The cache's key names: each user's keys carry the prefix of the user's shard. One
    Redis has one shard and an empty prefix: `timeline:{user}` and so on. A cluster has a
    hash tag per shard, `{s3.20}:`, so every key a user's read touches is in one slot."""

    prefixes: tuple[str, ...] = ("",)

    @classmethod
    def sharded(cls, shards: int = SHARDS) -> "Keys":
        return cls(tuple(f"{{{tag}}}:" for tag in shard_tags(shards)))

    def timeline(self, user_id: int) -> str:
        return f"timeline:{self.prefixes[user_id % len(self.prefixes)]}{user_id}"

    def recent(self, author_id: int, reader: int) -> str:
        """The copy of a celebrity's recent list that `reader`'s read merges."""
        return f"recent:{self.prefixes[reader % len(self.prefixes)]}{author_id}"

    def recent_copies(self, author_id: int) -> list[str]:
        """A celebrity's recent list, once per shard: its tweet is pushed into each, SHARDS
        pushes however many follow it, and any reader's read finds one in its own slot."""
        return [f"recent:{prefix}{author_id}" for prefix in self.prefixes]

    def body_copies(self, tweet_id: int) -> list[str]:
        """A new tweet's body, into every shard. It must be stored before its id is pushed
        (a follower may read the id at once), while the shards the followers fall in are
        known only as the walk reads them from SQLite, 10,000 at a time; an author with 50
        followers reaches 96 % of 16 shards anyway, and a celebrity's recent list is in
        all. The price: up to SHARDS copies of a tweet few follow, for TWEET_TTL."""
        return [f"tweet:{prefix}{tweet_id}" for prefix in self.prefixes]

    @staticmethod
    def sibling(key: str, kind: str, name: int | str) -> str:
        """The key `kind:name` in `key`'s slot (the Lua `sibling`): a tweet's body where a
        read of `key` looks for it, say."""
        tag = TAG.search(key)
        return f"{kind}:{tag.group() if tag else ''}{name}"

    def by_shard(self, users: list[int]) -> list[list[int]]:
        """`users` in parts whose keys share a slot, each in the order given."""
        shards = len(self.prefixes)
        if shards == 1:
            return [users] if users else []
        parts: dict[int, list[int]] = {}
        for user in users:
            parts.setdefault(user % shards, []).append(user)
        return list(parts.values())


ONE_REDIS = Keys()


def timeline_key(user_id: int) -> str:
    """On one Redis (the loader, the benches, the tests build these)."""
    return ONE_REDIS.timeline(user_id)


def recent_key(author_id: int) -> str:
    """A celebrity's newest tweet ids (the hybrid), laid out like a timeline, on one Redis."""
    return ONE_REDIS.recent_copies(author_id)[0]


def token_key(key: str) -> str:
    """In `key`'s slot: `token:` comes before the tag, which Redis alone hashes."""
    return f"token:{key}"


class HiredisPackedConnection(redis.Connection):
    """redis-py's asyncio connection encodes commands in Python, its sync one with hiredis's
    C packer; a fanout call of hundreds of keys spent most of the worker's time in the
    former (py-spy), so this one uses the latter.

    It also sends without redis-py's asyncio.wait_for around every send, which on Python
    3.11 runs the send as a Task of its own (python -m bench read-overheads). A
    send can only wait while the socket's buffer is full, so only that wait is bounded, by
    socket_timeout as before; the reply every call awaits is bounded by ReplyWatch."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return cast(list[bytes], self._packer.pack(*args))

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        # redis-py's own (redis is pinned, requirements.txt), its wait_for aside.
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            if isinstance(command, str):
                command = command.encode()
            writer.writelines([command] if isinstance(command, bytes) else command)
            if writer.transport.get_write_buffer_size():  # the kernel did not take it all
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()  # no wait: it raises if the connection was lost
        except builtins.TimeoutError:  # asyncio.timeout's; TimeoutError here is redis's
            await self.disconnect(nowait=True)
            raise TimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise ConnectionError(f"Error while writing to {self._host_error()}: {error}") from error
        except BaseException:
            # A send cut off midway leaves the connection unusable (a cancelled request, say).
            await self.disconnect(nowait=True)
            raise

    async def read_response(
        self, disable_decoding: bool = False, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        if timeout is not None or not self.socket_timeout:  # a caller's own bound (pub/sub)
            return await super().read_response(disable_decoding, timeout, **kwargs)
        watch = ReplyWatch.of(asyncio.get_running_loop())
        watch.waiting[self] = watch.loop.time() + self.socket_timeout
        try:
            return await super().read_response(disable_decoding, math.inf, **kwargs)
        except ConnectionError:
            if watch.expired.pop(self, False):
                raise TimeoutError(f"Timeout reading from {self._host_error()}") from None
            raise
        finally:
            watch.waiting.pop(self, None)
            watch.expired.pop(self, None)


class ReplyWatch:
    """Bounds the replies of an event loop's Redis connections by socket_timeout, as
    redis-py's asyncio.timeout around each read did, for the price of a dict entry instead
    of a timer per reply (python -m bench read-overheads): four times a second
    it closes the connections whose reply is overdue, and their read raises TimeoutError."""

    INTERVAL = 0.25  # a reply waits at most socket_timeout and this much more
    _loops: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReplyWatch]" = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiting: dict[HiredisPackedConnection, float] = {}  # connection -> its deadline
        self.expired: dict[HiredisPackedConnection, bool] = {}
        self._task = loop.create_task(self._watch())

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> "ReplyWatch":
        watch = cls._loops.get(loop)
        if watch is None or watch._task.done():
            watch = cls._loops[loop] = cls(loop)
        return watch

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.INTERVAL)
            now = self.loop.time()
            for connection, deadline in list(self.waiting.items()):
                if now > deadline and connection._writer is not None:
                    self.expired[connection] = True
                    connection._writer.transport.abort()  # the read ends with ConnectionError


class CacheCluster(RedisCluster):
    """redis-py's RedisCluster with the single client's packer, and a cluster it cannot map
    (no node answers, or the slots are not all served yet: still forming) raised as
    ClusterUnavailable, a ConnectionError, so the apps treat it as Redis down while any
    other RedisClusterException (keys of two slots in one call: a bug) stays loud."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.connection_kwargs["connection_class"] = HiredisPackedConnection  # nodes found later
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = HiredisPackedConnection

    async def _determine_slot(self, command: str, *args: Any) -> int:
        # A script's keys share a slot by construction (Keys), and Redis refuses any that
        # do not (CROSSSLOT); redis-py would hash every key to check, which was most of the
        # fanout worker's CPU (cProfile: ~1.5 us a key on calls of hundreds). redis is pinned
        # (requirements.txt): this private method is its own.
        if command.upper() in ("EVAL", "EVALSHA") and len(args) > 2 and int(args[1]) > 0:
            return self.keyslot(args[2])
        return await super()._determine_slot(command, *args)

    async def initialize(self, *args: Any, **kwargs: Any) -> Self:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as error:
            raise ClusterUnavailable(str(error)) from error
        return self


class WaitingPool(redis.BlockingConnectionPool):
    """redis-py's pool that waits for a free connection; one that waited its timeout out
    raises RedisBusy rather than a ConnectionError, which would read as Redis down.

    Only a call that must wait pays for the wait: the blocking pool's condition and timer
    on every call cost ~16 µs of the client's CPU a GET over the plain pool's path, as much
    as the timers HiredisPackedConnection took out of each call."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> redis.Connection:
        if self.can_get_connection():  # a free connection, or room for one: nothing to wait for
            with contextlib.suppress(MaxConnectionsError):  # taken while the lock was awaited
                return cast(redis.Connection, await redis.ConnectionPool.get_connection(self))  # type: ignore[no-untyped-call]
        try:
            return cast(redis.Connection, await super().get_connection(*args, **kwargs))  # type: ignore[no-untyped-call]
        except ConnectionError as error:
            if isinstance(error.__cause__, asyncio.TimeoutError):
                raise RedisBusy(f"all {self.max_connections} Redis connections busy") from error
            raise


# The cache's client: of one Redis, or of a Redis Cluster (REDIS_CLUSTER=1).
Client = redis.Redis | RedisCluster


def connect(
    redis_url: str, cluster: bool = False, max_connections: int = 64, pool_timeout: float = 1.0
) -> Client:
    """A client of one Redis, or with `cluster` of the Redis Cluster that REDIS_URL is a
    node of. One Redis's client opens at most `max_connections`, a call waiting up to
    `pool_timeout` seconds for one. Nothing connects until the first call."""
    # One retry reconnects a pooled socket that died with a restarted Redis (on a cluster, it
    # also maps the slots again); more would only make a request wait longer while Redis is
    # really down.
    options: dict[str, Any] = {
        "socket_timeout": 2,
        "socket_connect_timeout": 1,
        "retry": Retry(NoBackoff(), 1),
    }
    if cluster:
        # Not bounded by max_connections: redis-py's cluster nodes do not wait for a free
        # connection, and count ones lost with a killed node as still in use (tests/test_cluster.py).
        return CacheCluster.from_url(redis_url, **options)
    pool = WaitingPool.from_url(
        redis_url,
        connection_class=HiredisPackedConnection,
        max_connections=max_connections,
        timeout=pool_timeout,
        **options,
    )
    return redis.Redis.from_pool(pool)


def is_cluster(client: Client) -> TypeGuard[RedisCluster]:
    return isinstance(client, RedisCluster)


async def ping(client: Client) -> None:
    """Every primary of a cluster: one node down is a part of the cache down."""
    if is_cluster(client):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


def encode_timeline(tweet_ids: list[int], length: int, pulled: Sequence[int] = ()) -> list[bytes]:
    """The elements of a cached list holding someone's newest ids (newest first), as a
    rebuild writes them: what a loader RPUSHes to build one without the app."""
    tweet_ids = list(tweet_ids[:length])
    tail = b"f%d" % source_floor(tweet_ids, length)
    if pulled:
        tail += b"|" + b",".join(b"%d" % author for author in pulled)
    return [b"%d" % tweet_id for tweet_id in tweet_ids] + [tail]


def source_floor(newest_ids: list[int], length: int) -> int:
    """The floor of a list of someone's newest `length` ids: complete above its last id
    when it was cut at `length`, complete altogether when it was shorter."""
    return int(newest_ids[-1]) - 1 if len(newest_ids) >= length else 0


@dataclass(frozen=True, slots=True)
class Page:
    """What the cache holds for one page: ids newest first, bodies (None where gone), the
    floor below which the cache knows nothing, and the list it was read from."""

    ids: list[int]
    bodies: list[bytes | None]
    floor: int
    key: str


@dataclass(frozen=True, slots=True)
class Pushed:
    written: int  # lists that took the id (cached, above their floor, not there yet)
    redis_seconds: float  # what the call cost Redis, by its own clock


@dataclass(frozen=True, slots=True)
class Miss:
    """A list Redis does not hold. `token` is what its rebuild must present."""

    key: str
    token: str


class TimelineCache:
    """The lists of one Redis, or of a Redis Cluster (then `keys` carry a shard tag)."""

    def __init__(self, client: Client, length: int, tweet_ttl: int = 86_400):
        self.redis = client
        self.keys = Keys.sharded() if is_cluster(client) else ONE_REDIS
        self.length = length
        self.keep = length - length // 16
        self.tweet_ttl = tweet_ttl
        self._read = client.register_script(READ)
        self._push = client.register_script(PUSH)
        self._merge = client.register_script(MERGE)
        self._unmerge = client.register_script(UNMERGE)
        self._pull = client.register_script(PULL)
        self._regenerate = client.register_script(REGENERATE)
        self._catch_up = client.register_script(CATCH_UP)
        self._evict = client.register_script(EVICT)

    def script(self, script: str) -> AsyncScript:
        """A design's own script (approach3_hybrid.py's read)."""
        return self.redis.register_script(script)

    def calls_in_flight(self) -> int:
        """How many fanout calls to keep outstanding: two per node, so that each node works
        on one while the worker encodes and sends the next."""
        nodes = len(self.redis.get_primaries()) if is_cluster(self.redis) else 1
        return 2 * max(nodes, 1)

    async def read(self, user_id: int, before: int, limit: int) -> Page | Miss:
        key = self.keys.timeline(user_id)
        reply = await self._read(keys=[key, token_key(key)], args=[before, limit])
        return page_or_miss(key, reply)

    async def store_tweets(self, encoded: dict[int, bytes], beside: str | None = None) -> None:
        """Bodies where a read of `beside` finds them, or, for new tweets, where any read does."""
        if encoded:
            async with self.redis.pipeline(transaction=False) as pipe:
                for tweet_id, body in encoded.items():
                    copies = (
                        self.keys.body_copies(tweet_id)
                        if beside is None
                        else [Keys.sibling(beside, "tweet", tweet_id)]
                    )
                    for key in copies:
                        pipe.set(key, body, ex=self.tweet_ttl)
                await pipe.execute()

    async def push(self, tweet_id: int, keys: list[str]) -> Pushed:
        """Pushes into the given cached lists (of one slot, on a cluster)."""
        written, micros = await self._push(keys=keys, args=[tweet_id, self.length, self.keep])
        return Pushed(written, micros / 1e6)

    async def push_recent(self, tweet_id: int, author: int) -> None:
        """A celebrity's tweet into its recent list: on a cluster, into each shard's copy."""
        await asyncio.gather(*(self.push(tweet_id, [key]) for key in self.keys.recent_copies(author)))

    def _with_tokens(self, user_ids: list[int]) -> list[str]:
        return [key for u in user_ids for key in (self.keys.timeline(u), token_key(self.keys.timeline(u)))]

    async def merge(self, user_ids: list[int], tweet_ids: list[int], source_floor: int) -> None:
        """Into the timelines of `user_ids` (of one shard, on a cluster)."""
        newest_first = sorted(tweet_ids, reverse=True)
        await self._merge(
            keys=self._with_tokens(user_ids), args=[self.length, self.keep, source_floor, *newest_first]
        )

    async def unmerge(self, user_id: int, author: int, tweet_ids: list[int]) -> None:
        key = self.keys.timeline(user_id)
        await self._unmerge(keys=[key, token_key(key)], args=[author, *tweet_ids])

    async def pull(self, user_ids: list[int], author: int) -> None:
        """The timelines of `user_ids` (of one shard, on a cluster) start naming `author`."""
        await self._pull(keys=self._with_tokens(user_ids), args=[author])

    async def floor(self, user_id: int) -> int | None:
        tail = cast(bytes | None, await self.redis.lindex(self.keys.timeline(user_id), -1))
        return None if tail is None else int(tail[1:].split(b"|")[0])

    async def regenerate(self, miss: Miss, tweet_ids: list[int], pulled: Sequence[int] = ()) -> bool:
        """Writes the newest TIMELINE_LENGTH ids read from SQLite, unless a follow change
        happened since the miss. True when the list exists afterwards."""
        elements = encode_timeline(sorted(tweet_ids, reverse=True), self.length, pulled)
        floor, _, pulled_text = elements[-1][1:].partition(b"|")
        written: int = await self._regenerate(
            keys=[miss.key, token_key(miss.key)], args=[miss.token, floor, pulled_text, *elements[:-1]]
        )
        return written == 1

    async def catch_up(self, miss: Miss, tweet_ids: list[int]) -> None:
        """After a rebuild: the ids committed since its snapshot, unless a follow change came
        in between, which drops the list instead."""
        if tweet_ids:
            await self._catch_up(
                keys=[miss.key, token_key(miss.key)], args=[miss.token, self.length, self.keep, *tweet_ids]
            )

    async def evict(self, key: str) -> None:
        await self._evict(keys=[key, token_key(key)])

    async def evict_timeline(self, user_id: int) -> None:
        await self.evict(self.keys.timeline(user_id))

    async def evict_recent(self, author: int) -> None:
        """Every copy of a celebrity's recent list."""
        await asyncio.gather(*(self.evict(key) for key in self.keys.recent_copies(author)))


def page_or_miss(key: str, reply: list[Any]) -> Page | Miss:
    if reply[0] == 0:
        return Miss(key, reply[1].decode())
    _, floor, ids, bodies = reply
    return Page([int(i) for i in ids], bodies, int(floor), key)


def where(client: Client) -> str:
    """The cache as the settings name it, for a line saying it cannot be reached."""
    return "Redis Cluster (REDIS_CLUSTER=1, REDIS_URL a node of it)" if is_cluster(client) else "Redis"


async def redis_reachable(cache: TimelineCache, redis_url: str) -> bool:
    """Redis is a cache: the app starts without it, answers from SQLite and keeps what it
    owes in the outbox. One line says so when it is not there; no traceback."""
    try:
        await ping(cache.redis)
    except REDIS_DOWN as error:
        log.warning(
            "%s unreachable at REDIS_URL=%s (%s): answering from SQLite until it "
            "is back; start %s or set REDIS_URL%s",
            where(cache.redis),
            redis_url,
            error,
            "every node of the cluster" if is_cluster(cache.redis) else "redis-server",
            " and REDIS_CLUSTER" if is_cluster(cache.redis) else "",
        )
        return False
    return True
