"""Bulk loading into Redis: the caches of the fanout apps as they would be once every
user's timeline has been read (regenerated) on a quiet system.

`timeline:{id}` for every user: the list timelines.cache.encode_timeline makes of the newest
TIMELINE_LENGTH ids (the hybrid's leave out its celebrities and name those the user follows
in the tail). `recent:{id}` for each of the hybrid's celebrities, the same of its own
tweets. `tweet:{id}`, with the app's TTL: the bytes timelines.encoding.tweet_json makes, for
every tweet some loaded list holds. No `token:` keys: a fresh app has none either.

Only those key families are written. A db that already holds timelines is refused unless
forced, and forcing deletes just those families (SCAN + UNLINK), never FLUSHDB: the db may
hold someone else's keys.

Speed: a timeline's RPUSH is assembled as RESP bytes from each id's pre-encoded bulk string
(redis-py would spend ~1 µs per argument in Python, 30 s at `default`), and a thread sends
one batch while the next is computed, so that Python and Redis, each on its own core, work
at the same time.
"""

import queue
import sys
import threading

import hiredis
import numpy as np
import redis
from tqdm import tqdm

from datagen.graph import Graph
from datagen.history import History
from datagen.home import home_timelines
from datagen.load import Refused, celebrities, tweet_rows
from timelines.cache import recent_key, source_floor, timeline_key
from timelines.designs import FANOUT_NAMES
from timelines.encoding import tweet_json
from timelines.settings import Settings

APPROACHES = FANOUT_NAMES  # the fanout designs' short names: their caches differ
BODIES_PER_SEND = 5_000
TIMELINES_PER_SEND = 2_000  # ~20 MB of RPUSHes at TIMELINE_LENGTH 800
APP_KEYS = ("timeline:*", "recent:*", "token:*", "tweet:*")  # what force replaces
TWEET_TTL = Settings.model_fields["tweet_ttl"].default


def load_redis(
    url: str,
    graph: Graph,
    history: History,
    approach: str,
    length: int,
    threshold: int,
    force: bool = False,
    progress: bool = True,
) -> None:
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
            held = np.zeros(history.tweets + 1, dtype=bool)
            write_timelines(
                sender, graph, history, length, pulled if approach == "hybrid" else None, held, progress
            )
            if approach == "hybrid":
                write_recent(sender, history, np.flatnonzero(pulled), length, held)
            write_bodies(sender, history, held, progress)
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
                client.unlink(*keys[at : at + 10_000])


def write_bodies(sender: "Sender", history: History, held: np.ndarray, progress: bool) -> None:
    """The bodies of the tweets some list holds; the others' would be unreachable."""
    for rows in tweet_rows(history, progress, "tweet bodies"):
        commands = [
            hiredis.pack_command(("SET", f"tweet:{row[0]}", tweet_json(row), "EX", TWEET_TTL))
            for row in rows
            if held[row[0]]
        ]
        for at in range(0, len(commands), BODIES_PER_SEND):
            sender.send(commands[at : at + BODIES_PER_SEND])


def write_timelines(
    sender: "Sender",
    graph: Graph,
    history: History,
    length: int,
    pulled: np.ndarray | None,
    held: np.ndarray,
    progress: bool,
) -> None:
    ids = encoded_ids(history.tweets)
    followees = graph.offsets()
    with tqdm(total=graph.users, desc="timelines", unit="user", disable=not progress, file=sys.stderr) as bar:
        for batch in home_timelines(graph, history, length, pulled):
            held[batch.ids] = True
            for start in range(0, len(batch), TIMELINES_PER_SEND):
                users = range(start, min(start + TIMELINES_PER_SEND, len(batch)))
                sender.send(
                    [
                        rpush(
                            timeline_key(batch.first_user + i),
                            batch.newest(i),
                            length,
                            ids,
                            pulled_by(graph, followees, pulled, batch.first_user + i),
                        )
                        for i in users
                    ]
                )
                bar.update(len(users))


def write_recent(
    sender: "Sender", history: History, authors: np.ndarray, length: int, held: np.ndarray
) -> None:
    """Each celebrity's newest tweet ids, as the hybrid's read would rebuild them."""
    ids = encoded_ids(history.tweets)
    for author in authors.tolist():
        newest = (np.flatnonzero(history.author == author) + 1)[::-1][:length]
        held[newest] = True
        sender.send([rpush(recent_key(author), newest, length, ids, ())])


def pulled_by(graph: Graph, followees: np.ndarray, pulled: np.ndarray | None, user: int) -> list[int]:
    if pulled is None:
        return []
    accounts = graph.followee[followees[user] : followees[user + 1]]
    return sorted(accounts[pulled[accounts]].tolist())


def encoded_ids(tweets: int) -> list[bytes]:
    """ids[id]: tweet `id` as a RESP bulk string."""
    return [b""] + [bulk(b"%d" % tweet_id) for tweet_id in range(1, tweets + 1)]


def rpush(key: str, newest: np.ndarray, length: int, ids: list[bytes], pulled: list[int]) -> bytes:
    """RPUSH key id ... tail: what a rebuild writes (timelines.cache.encode_timeline), as RESP."""
    tail = b"f%d" % source_floor(newest, length)
    if pulled:
        tail += b"|" + b",".join(b"%d" % account for account in pulled)
    header = b"*%d\r\n$5\r\nRPUSH\r\n%s" % (3 + len(newest), bulk(key.encode()))
    return header + b"".join(map(ids.__getitem__, newest.tolist())) + bulk(tail)


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
