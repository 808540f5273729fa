"""What a cached home timeline costs Redis, per encoding: bytes per entry, and Redis CPU per
follower-write on full timelines.

    .venv/bin/python -m bench encodings [--users 10000] [--length 800] [--tweets 40]
                                        [--share 0.25] [--chunk 256] [--csv PATH]

For each candidate, on a private redis-server (FLUSHALL between candidates, only on it):
  1. build --users full timelines of realistic ids (7 digits, ascending with gaps, each
     user's own), each holding what that encoding holds in its steady state (a lazily
     trimmed one sits anywhere between length and length + slack), in pipelines;
     bytes per entry = INFO used_memory after - before, / entries; MEMORY USAGE of one key;
  2. push --tweets new ids, each to a random --share of the users, in Lua calls of --chunk
     keys as the app's fanout does; Redis CPU per follower-write = INFO cpu
     (used_cpu_user + used_cpu_sys) delta / writes; bytes per entry again after the pushes.

Every candidate's push is one Lua script over a chunk of keys, in plain sight below, so the
rows differ by data structure and algorithm, not by protocol (Mastodon and Twitter pipeline
the same commands; a pipeline costs Redis more per command than a script does).
The same seed gives every candidate the same ids, the same followers per tweet.
"""

import argparse
import math
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import redis

from bench.output import write_csv
from rig.processes import Cpus, RedisServer
from timelines.cache import PUSH as APP_PUSH
from timelines.cache import TimelineCache, encode_timeline

LOWEST_ID = 1_000_000  # ids of 7 digits, as in a mid-sized deployment
MAX_GAP = 8_000  # between consecutive ids of one timeline: the tweets of people not followed
FIRST_PUSHED_ID = 8_000_000  # above any built id: every push is the newest tweet
BUILD_USERS_PER_PIPELINE = 100
DEFAULTS = {"zset-max-listpack-entries": "128"}  # what a candidate's config is reset to


def slack_of(length: int) -> int:
    return length // 16


# --- the candidates ------------------------------------------------------------------------


class Encoding:
    """One way of holding a timeline: how to build one, how to push into a chunk of them."""

    name = ""
    catch = ""
    script = ""
    config: Mapping[str, str] = MappingProxyType({})

    def prepare(self, client: redis.Redis, length: int) -> None:
        """Anything the encoding needs to know before it builds."""

    def held(self, length: int, rng: random.Random) -> int:
        """How many ids a timeline holds in this encoding's steady state, before a push."""
        return length

    def build(self, pipe, key: str, newest_first: list[int]) -> None:
        raise NotImplementedError

    def size(self, pipe, key: str) -> None:
        """Queues the command whose reply entries() turns into the ids a timeline holds."""
        pipe.llen(key)

    def entries(self, reply: int) -> int:
        return reply

    def args(self, tweet_id: int, keys: list[str], length: int, rng: random.Random) -> list:
        return [tweet_id, length]


# Copied from timelines/cache.py at eca13cb: the app's push before the switch to lists.
ZSET_TRIM = """
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
ZSET_PUSH = (
    ZSET_TRIM
    + """
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
)


class ZsetSlackTrim(Encoding):
    name = "zset, slack trim (today)"
    catch = "the app before the switch to lists"
    script = ZSET_PUSH

    def held(self, length, rng):
        return rng.randint(length - slack_of(length), length)  # keep..length, spread evenly

    def build(self, pipe, key, newest_first):
        pipe.execute_command(
            "ZADD", key, newest_first[-1] - 1, "floor", *(x for i in newest_first for x in (i, i))
        )

    def size(self, pipe, key):
        pipe.zcard(key)

    def entries(self, reply):
        return reply - 1  # the floor marker

    def args(self, tweet_id, keys, length, rng):
        return [tweet_id, length, length - slack_of(length)]


class ZsetListpack(ZsetSlackTrim):
    name = "zset in listpack (max-listpack-entries 1024)"
    catch = (
        "server-wide config; each ZADD/ZRANGE on an 800-entry listpack is a linear scan "
        "and memmove, and READ's ZRANGE BYSCORE too"
    )
    config = MappingProxyType({"zset-max-listpack-entries": "1024"})


ZSET_TRIM_EVERY_PUSH = """
local id, length, written = ARGV[1], tonumber(ARGV[2]), 0
for _, key in ipairs(KEYS) do
    written = written + redis.call('ZADD', key, id, id)
    redis.call('ZREMRANGEBYRANK', key, 0, -(length + 1))
end
return written
"""


class ZsetTrimEveryPush(Encoding):
    name = "zset, trim every push (Mastodon)"
    catch = "no floor: a trimmed or merged timeline cannot say where it stops being complete"
    script = ZSET_TRIM_EVERY_PUSH

    def build(self, pipe, key, newest_first):
        pipe.execute_command("ZADD", key, *(x for i in newest_first for x in (i, i)))

    def size(self, pipe, key):
        pipe.zcard(key)


LIST_TRIM_EVERY_PUSH = """
local id, length = ARGV[1], tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
    redis.call('LPUSH', key, id)
    redis.call('LTRIM', key, 0, length - 1)
end
return #KEYS
"""


class ListTrimEveryPush(Encoding):
    name = "list, LPUSH+LTRIM every push"
    catch = "no floor, no dedup; pushes into timelines that were never cached"
    script = LIST_TRIM_EVERY_PUSH

    def build(self, pipe, key, newest_first):
        pipe.rpush(key, *newest_first)


LIST_LAZY_TRIM = """
local id, length, slack, written = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), 0
for _, key in ipairs(KEYS) do
    local size = redis.call('LPUSHX', key, id)
    if size > 0 then written = written + 1 end
    if size > length + slack then redis.call('LTRIM', key, 0, length - 1) end
end
return written
"""


class ListLazyTrim(ListTrimEveryPush):
    name = "list, LPUSHX + lazy trim 800-850 (Haplo)"
    catch = "no floor, no dedup, no order: a late id lands on top"
    script = LIST_LAZY_TRIM

    def held(self, length, rng):
        return rng.randint(length, length + slack_of(length))

    def args(self, tweet_id, keys, length, rng):
        return [tweet_id, length, slack_of(length)]


# Misskey decides in the client, per push: trim on one in ten. The script takes its choice.
LIST_TRIM_ONE_IN_TEN = """
local id, length, written = ARGV[1], tonumber(ARGV[2]), 0
for i, key in ipairs(KEYS) do
    redis.call('LPUSH', key, id)
    if ARGV[i + 2] == '1' then redis.call('LTRIM', key, 0, length - 1) end
    written = written + 1
end
return written
"""


class ListTrimOneInTen(ListTrimEveryPush):
    name = "list, trim one insert in ten (Misskey)"
    catch = "no floor, no dedup; length drifts (geometric, mean +9)"
    script = LIST_TRIM_ONE_IN_TEN

    def held(self, length, rng):
        # After a trim a timeline holds length; each later push adds one until the next
        # trim, which comes with probability 1/10: a geometric excess, capped far out.
        excess = 0
        while rng.random() >= 0.1 and excess < 2 * slack_of(length):
            excess += 1
        return length + excess

    def args(self, tweet_id, keys, length, rng):
        return [tweet_id, length, *("1" if rng.random() < 0.1 else "0" for _ in keys)]


class ListOrdered(ListTrimEveryPush):
    """The app's own cache: timelines.cache's PUSH script and encode_timeline, so this row
    always measures what the app runs."""

    name = "list, ordered dedup insert + tail floor + slack trim (the app)"
    catch = "the contract: floor, dedup, order; merge/unmerge rewrite the list (LRANGE + RPUSH)"
    script = APP_PUSH
    keep = 0

    def prepare(self, client, length):
        self.keep = TimelineCache(client, length).keep

    def held(self, length, rng):
        return rng.randint(self.keep, length)  # a push past length cuts back to keep

    def build(self, pipe, key, newest_first):
        pipe.rpush(key, *encode_timeline(newest_first, len(newest_first)))

    def entries(self, reply):
        return reply - 1  # the tail

    def args(self, tweet_id, keys, length, rng):
        return [tweet_id, length, self.keep]


# Fixed-width big-endian ids, oldest first after an 8-byte floor, so the newest tweet is an
# APPEND. ARGV: tweet id, the same packed, length, slack.
PACKED_PUSH = """
local id, packed, length, slack, written = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]),
                                           tonumber(ARGV[4]), 0
for _, key in ipairs(KEYS) do
    local bytes = redis.call('STRLEN', key)
    if bytes >= 8 then
        local floor = struct.unpack('>I8', redis.call('GETRANGE', key, 0, 7))
        local newest = bytes > 8 and struct.unpack('>I8', redis.call('GETRANGE', key, -8, -1)) or floor
        if id > newest then
            bytes = redis.call('APPEND', key, packed)
            written = written + 1
        elseif id > floor then
            -- A late id: rewrite the string with it in place (rare: an outbox retry).
            local all, at = redis.call('GET', key), bytes
            while at > 8 and struct.unpack('>I8', string.sub(all, at - 7, at)) > id do at = at - 8 end
            if at == 8 or struct.unpack('>I8', string.sub(all, at - 7, at)) < id then
                redis.call('SET', key, string.sub(all, 1, at) .. packed .. string.sub(all, at + 1))
                bytes = bytes + 8
                written = written + 1
            end
        end
        if bytes / 8 - 1 > length + slack then
            local cut = bytes - 8 * length  -- bytes 9..cut are dropped; the last of them is the floor
            redis.call('SET', key, redis.call('GETRANGE', key, cut - 8, bytes - 1))
        end
    end
end
return written
"""


class PackedString(Encoding):
    name = "packed string, 8-byte ids + APPEND (alternative)"
    catch = (
        "APPEND's greedy growth doubles the allocation; a read reverses and binary-searches "
        "in Lua; merge/unmerge/late ids rewrite the whole string"
    )
    script = PACKED_PUSH

    def held(self, length, rng):
        return rng.randint(length, length + slack_of(length))

    def build(self, pipe, key, newest_first):
        oldest_first = newest_first[::-1]
        pipe.set(key, np.array([oldest_first[0] - 1, *oldest_first], dtype=">u8").tobytes())

    def size(self, pipe, key):
        pipe.strlen(key)

    def entries(self, reply):
        return reply // 8 - 1

    def args(self, tweet_id, keys, length, rng):
        return [tweet_id, np.array([tweet_id], dtype=">u8").tobytes(), length, slack_of(length)]


CANDIDATES: list[Encoding] = [
    ZsetSlackTrim(),
    ZsetTrimEveryPush(),
    ListTrimEveryPush(),
    ListLazyTrim(),
    ListTrimOneInTen(),
    ListOrdered(),
    ZsetListpack(),
    PackedString(),
]


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Figures:
    encoding: str
    bytes_per_entry: float
    one_key_bytes: int
    one_key_entries: int
    bytes_per_entry_after_pushes: float
    redis_cpu_us_per_write: float
    writes_per_s: float
    follower_writes: int
    catch: str


def timelines(users: int, length: int, seed: int) -> Iterator[list[int]]:
    """Each user's ids newest first, length + 2 * slack of them (the longest any candidate
    holds); the same for every candidate."""
    width = length + 2 * slack_of(length)
    rng = np.random.default_rng(seed)
    for first in range(0, users, 1000):
        count = min(1000, users - first)
        starts = rng.integers(LOWEST_ID, LOWEST_ID + 100_000, size=(count, 1))
        ids = starts + np.cumsum(rng.integers(1, MAX_GAP, size=(count, width)), axis=1)
        yield from (row[::-1] for row in ids.tolist())


def key_of(user: int) -> str:
    return f"timeline:{user}"


def used_memory(client: redis.Redis) -> int:
    return client.info("memory")["used_memory"]


def cpu_seconds(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def build(client: redis.Redis, encoding: Encoding, args, seed: int) -> int:
    """Builds every timeline; returns the entries they hold."""
    rng, entries, pipe = random.Random(seed), 0, client.pipeline(transaction=False)
    for user, newest_first in enumerate(timelines(args.users, args.length, seed)):
        held = encoding.held(args.length, rng)
        encoding.build(pipe, key_of(user), newest_first[:held])
        entries += held
        if len(pipe) >= BUILD_USERS_PER_PIPELINE:
            pipe.execute()
    pipe.execute()
    return entries


def entries_held(client: redis.Redis, encoding: Encoding, users: int) -> int:
    pipe = client.pipeline(transaction=False)
    for user in range(users):
        encoding.size(pipe, key_of(user))
    return sum(encoding.entries(reply) for reply in pipe.execute())


def push(client: redis.Redis, encoding: Encoding, args, seed: int) -> tuple[int, float, float]:
    """Pushes every tweet to its followers; returns writes, wall seconds, Redis CPU seconds."""
    script, rng = client.register_script(encoding.script), random.Random(seed)
    script(keys=[], args=encoding.args(1, [], args.length, rng))  # loaded before the clock
    fanouts = [
        sorted(rng.sample(range(args.users), max(1, round(args.share * args.users))))
        for _ in range(args.tweets)
    ]
    written, cpu, start = 0, cpu_seconds(client), time.perf_counter()
    for tweet, followers in enumerate(fanouts):
        tweet_id = FIRST_PUSHED_ID + tweet * 1000
        for first in range(0, len(followers), args.chunk):
            keys = [key_of(f) for f in followers[first : first + args.chunk]]
            reply = script(keys=keys, args=encoding.args(tweet_id, keys, args.length, rng))
            written += reply[0] if isinstance(reply, list) else reply  # the app's adds its µs
    seconds = time.perf_counter() - start
    expected = sum(map(len, fanouts))
    if written != expected:
        raise SystemExit(f"{encoding.name}: {written} timelines written, expected {expected}")
    return written, seconds, cpu_seconds(client) - cpu


def measure(client: redis.Redis, encoding: Encoding, args) -> Figures:
    client.flushall(asynchronous=False)
    for name, value in encoding.config.items():
        client.config_set(name, value)
    try:
        encoding.prepare(client, args.length)
        empty = used_memory(client)
        entries = build(client, encoding, args, args.seed)
        built = used_memory(client)
        one_key = client.memory_usage(key_of(0), samples=0)
        one_key_entries = entries_held(client, encoding, 1)
        writes, seconds, cpu = push(client, encoding, args, args.seed + 1)
        after = (used_memory(client) - empty) / entries_held(client, encoding, args.users)
    finally:
        client.flushall(asynchronous=False)
        for name, value in DEFAULTS.items():
            if name in encoding.config:
                client.config_set(name, value)
    return Figures(
        encoding.name,
        (built - empty) / entries,
        one_key,
        one_key_entries,
        after,
        cpu / writes * 1e6,
        writes / seconds,
        writes,
        encoding.catch,
    )


# --- report --------------------------------------------------------------------------------

COLUMNS = ("B/entry", "one key B (entries)", "B/entry after", "Redis us/write", "writes/s")


def row_text(figures: Figures) -> str:
    return (
        f"{figures.encoding:<62} {figures.bytes_per_entry:>8.1f} "
        f"{f'{figures.one_key_bytes:,} ({figures.one_key_entries})':>20} "
        f"{figures.bytes_per_entry_after_pushes:>13.1f} {figures.redis_cpu_us_per_write:>14.2f} "
        f"{figures.writes_per_s:>10,.0f}"
    )


def print_table(rows: list[Figures], args) -> None:
    print(
        f"\n{args.users:,} timelines of {args.length} ids (7 digits); {args.tweets} tweets to "
        f"{args.share:.0%} of them each, {args.chunk} keys per Lua call; redis-server {args.version}"
    )
    header = (
        f"{'encoding':<62} {COLUMNS[0]:>8} {COLUMNS[1]:>20} {COLUMNS[2]:>13} {COLUMNS[3]:>14} "
        f"{COLUMNS[4]:>10}"
    )
    print(header)
    print("-" * len(header))
    for figures in rows:
        print(row_text(figures))
    print(
        "\nB/entry: INFO used_memory growth / entries held, after building and after the pushes; "
        "Redis us/write: INFO cpu (user + sys) / follower-writes; writes/s: the client's, one call "
        "at a time. 7-digit ids fit a listpack's 24-bit integers (~5 B with their headers); "
        "64-bit ids (Snowflake) would take ~10 B in a list, 8 in the packed string"
    )
    for figures in rows:
        print(f"  {figures.encoding}: {figures.catch}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="timelines built (default %(default)s)")
    parser.add_argument("--length", type=int, default=800, help="TIMELINE_LENGTH (default %(default)s)")
    parser.add_argument("--tweets", type=int, default=40, help="tweets pushed (default %(default)s)")
    parser.add_argument(
        "--share",
        type=float,
        default=0.25,
        help="share of the users each tweet goes to (default %(default)s)",
    )
    parser.add_argument("--chunk", type=int, default=256, help="keys per Lua call (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv", type=Path, metavar="PATH", help="also write the table as CSV")
    args = parser.parse_args(argv)
    if args.users < 1 or args.length < 16 or args.tweets < 1 or not 0 < args.share <= 1 or args.chunk < 1:
        parser.error("--users, --tweets, --chunk >= 1; --length >= 16; 0 < --share <= 1")
    return args


def run(args) -> list[Figures]:
    with (
        tempfile.TemporaryDirectory(prefix="encodings-") as directory,
        RedisServer(Path(directory), cpus=Cpus.plan().redis) as server,
        server.client() as client,
    ):
        args.version = client.info("server")["redis_version"]
        rows = []
        for encoding in CANDIDATES:
            start = time.monotonic()
            rows.append(measure(client, encoding, args))
            figures = rows[-1]
            print(
                f"{encoding.name}: {figures.bytes_per_entry:.1f} B/entry, "
                f"{figures.redis_cpu_us_per_write:.2f} us/write "
                f"({time.monotonic() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows = run(args)
    except KeyboardInterrupt:
        print("interrupted; redis-server stopped", file=sys.stderr)
        return 130
    print_table(rows, args)
    if args.csv:
        write_csv(args.csv, [asdict(figures) for figures in rows])
        print(f"\ntable written to {args.csv}")
    bad = [
        r.encoding
        for r in rows
        if not all(
            math.isfinite(v) and v > 0 for v in (r.bytes_per_entry, r.redis_cpu_us_per_write, r.writes_per_s)
        )
    ]
    return 1 if bad else 0
