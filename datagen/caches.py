"""Bulk loading into Redis: the caches of the fanout apps as they would be once every
user's timeline has been read (regenerated) on a quiet system.

`tweet:{id}`: the bytes timelines.http.tweet_json makes, for every tweet the app would have
fanned out (all of them for approach2; the hybrid fans out none of its celebrities', so
caches none of their bodies). `timeline:{id}` for every user: the newest TIMELINE_LENGTH
ids, and the floor marker at timelines.cache.source_floor(), as the REGENERATE script
writes them. No `timeline-version:{id}`: a missing version reads as 0, as on a fresh app.

Only those key families are written. A db that already holds timelines is refused unless
forced, and forcing deletes just those families (SCAN + UNLINK), never FLUSHDB: the db may
hold someone else's keys.

Speed: a timeline's ZADD is assembled as RESP bytes from each id's pre-encoded
"score member" pair (redis-py would spend ~1 µs per argument in Python, 30 s at `default`),
and a thread sends one batch while the next is computed, so that Python and Redis, each on
its own core, work at the same time.
"""

import queue
import sys
import threading
from itertools import chain

import hiredis
import numpy as np
import redis
from tqdm import tqdm

from datagen.graph import Graph
from datagen.history import History
from datagen.home import home_timelines
from datagen.load import Refused, celebrities, tweet_rows
from timelines.cache import source_floor, timeline_key
from timelines.designs import FANOUT_NAMES
from timelines.http import tweet_json

APPROACHES = FANOUT_NAMES  # the fanout designs' short names: their caches differ
BODIES_PER_MSET = 5_000
TIMELINES_PER_SEND = 2_000  # ~40 MB of ZADDs at TIMELINE_LENGTH 800
APP_KEYS = ("timeline:*", "timeline-version:*", "tweet:*")  # what force replaces


def load_redis(url: str, graph: Graph, history: History, approach: str, length: int,
               threshold: int, force: bool = False, progress: bool = True) -> None:
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, not {approach!r}")
    pulled = np.zeros(graph.users + 1, dtype=bool)
    if approach == "hybrid":
        pulled[celebrities(graph, threshold)] = True
    client = redis.Redis.from_url(url)
    try:
        make_room(client, url, force)
        sender = Sender(client)
        try:
            write_bodies(sender, history, ~pulled, progress)
            write_timelines(sender, graph, history, length, pulled if approach == "hybrid" else None,
                            progress)
        finally:
            sender.close()
    finally:
        client.close()


def refuse_if_loaded(url: str, force: bool) -> None:
    """Refused when the db at `url` already holds timelines (unless `force`);
    redis.ConnectionError when nothing answers there."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
        if not force and next(client.scan_iter(match="timeline:*", count=10_000), None) is not None:
            raise Refused(f"{url} already holds timeline keys; pass --force to replace them")
    finally:
        client.close()


def make_room(client: redis.Redis, url: str, force: bool) -> None:
    refuse_if_loaded(url, force)
    if force:
        for pattern in APP_KEYS:
            keys = list(client.scan_iter(match=pattern, count=10_000))
            for at in range(0, len(keys), 10_000):
                client.unlink(*keys[at:at + 10_000])


def write_bodies(sender: "Sender", history: History, keep: np.ndarray, progress: bool) -> None:
    for rows in tweet_rows(history, progress, "tweet bodies", keep):
        items = [(f"tweet:{row[0]}", tweet_json(row)) for row in rows]
        sender.send([hiredis.pack_command(("MSET", *chain.from_iterable(items[at:at + BODIES_PER_MSET])))
                     for at in range(0, len(items), BODIES_PER_MSET)])


def write_timelines(sender: "Sender", graph: Graph, history: History, length: int,
                    pulled: np.ndarray | None, progress: bool) -> None:
    pairs = encoded_pairs(history.tweets)
    with tqdm(total=graph.users, desc="timelines", unit="user", disable=not progress,
              file=sys.stderr) as bar:
        for batch in home_timelines(graph, history, length, pulled):
            for start in range(0, len(batch), TIMELINES_PER_SEND):
                users = range(start, min(start + TIMELINES_PER_SEND, len(batch)))
                sender.send([zadd(batch.first_user + i, batch.newest(i), length, pairs) for i in users])
                bar.update(len(users))


def encoded_pairs(tweets: int) -> list[bytes]:
    """pairs[id]: the RESP of the ZADD arguments score, member for tweet `id` (both the id)."""
    pairs = [b""]
    for tweet_id in range(1, tweets + 1):
        one = bulk(b"%d" % tweet_id)
        pairs.append(one + one)
    return pairs


def zadd(user_id: int, newest: np.ndarray, length: int, pairs: list[bytes]) -> bytes:
    """ZADD timeline:{user} floor 'floor' id id ...: what REGENERATE writes, as RESP."""
    floor = b"%d" % source_floor(newest, length)
    header = b"*%d\r\n$4\r\nZADD\r\n%s%s$5\r\nfloor\r\n" % (
        4 + 2 * len(newest), bulk(timeline_key(user_id).encode()), bulk(floor))
    return header + b"".join(map(pairs.__getitem__, newest.tolist()))


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class Sender:
    """Sends packed commands from a thread of its own, so that Redis executes one batch
    while Python computes and encodes the next (socket calls release the GIL): the load
    takes about as long as the slower of the two instead of their sum."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.connection = client.connection_pool.get_connection()
        self.queue: queue.Queue = queue.Queue(maxsize=4)  # bounds what waits in memory
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def send(self, commands: list[bytes]) -> None:
        """Each command already encoded (RESP); each answers one reply."""
        if self.error:
            raise self.error
        if commands:
            # One buffer, one sendall: each socket call gives up the GIL, and getting it
            # back from a busy main thread can take a switch interval (5 ms) every time.
            self.queue.put((b"".join(commands), len(commands)))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error:
                continue  # keep draining, so that send() never blocks on a full queue
            packed, replies = item
            try:
                self.connection.send_packed_command([packed], check_health=False)
                for _ in range(replies):
                    self.connection.read_response()  # raises on an error reply
            except BaseException as error:
                self.error = error

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error:
            self.connection.disconnect()  # replies may be left unread on it
        self.client.connection_pool.release(self.connection)
        if self.error:
            raise self.error
