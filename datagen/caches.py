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

On a Redis Cluster (`cluster=True`, the URL one node of it) the keys are the ones the apps
read with REDIS_CLUSTER=1, named by timelines.cache.Keys: each carries its user's shard tag;
a body goes into every shard whose lists hold its id, a celebrity's recent list into every
shard. Each primary gets a Sender of its own, and each key goes to the node serving its slot:
the pipelines stay plain RESP, so a cluster loads as fast as one Redis.

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
from redis.cluster import RedisCluster
from redis.crc import key_slot
from tqdm import tqdm

from datagen.graph import Graph
from datagen.history import History
from datagen.home import home_timelines
from datagen.load import Refused, celebrities, tweet_rows
from timelines.cache import ONE_REDIS, Keys, source_floor
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
    cluster: bool = False,
) -> None:
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, not {approach!r}")
    pulled = np.zeros(graph.users + 1, dtype=bool)
    if approach == "hybrid":
        pulled[celebrities(graph, threshold)] = True
    route = Route.to(url, cluster)
    try:
        make_room(route, url, force)
        route.start()
        try:
            held = Held(history.tweets)
            write_timelines(
                route, graph, history, length, pulled if approach == "hybrid" else None, held, progress
            )
            if approach == "hybrid":
                write_recent(route, history, np.flatnonzero(pulled), length, held)
            write_bodies(route, history, held, progress)
        finally:
            route.close()
    finally:
        route.disconnect()


class Route:
    """Where each key goes: on one Redis, its one Sender; on a cluster, the Sender of the
    primary that serves the key's slot."""

    def __init__(self, keys: Keys, clients: list[redis.Redis], node_of_slot: dict[int, int]):
        self.keys = keys
        self.clients = clients
        self.node_of_slot = node_of_slot
        self.senders: list[Sender] = []

    @classmethod
    def to(cls, url: str, cluster: bool) -> "Route":
        if not cluster:
            return cls(ONE_REDIS, [redis.Redis.from_url(url)], {})
        with RedisCluster.from_url(url) as client:
            primaries = client.get_primaries()
            index = {node.name: i for i, node in enumerate(primaries)}
            slots = client.nodes_manager.slots_cache
            node_of_slot = {slot: index[nodes[0].name] for slot, nodes in slots.items()}
            clients = [redis.Redis(host=node.host, port=node.port) for node in primaries]
        return cls(Keys.sharded(), clients, node_of_slot)

    def start(self) -> None:
        self.senders = [Sender(client) for client in self.clients]

    def node_of(self, key: str) -> int:
        return self.node_of_slot[key_slot(key.encode())] if self.node_of_slot else 0

    def send(self, keyed: list[tuple[str, bytes]]) -> None:
        """(key, its packed command) pairs: each to its key's node, in the order given."""
        if len(self.senders) == 1:
            self.senders[0].send([command for _, command in keyed])
            return
        parts: list[list[bytes]] = [[] for _ in self.senders]
        for key, command in keyed:
            parts[self.node_of(key)].append(command)
        for sender, part in zip(self.senders, parts, strict=True):
            sender.send(part)

    def close(self) -> None:
        """Every Sender drained and closed; the first error any of them met, raised."""
        errors = []
        for sender in self.senders:
            try:
                sender.close()
            except BaseException as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def disconnect(self) -> None:
        for client in self.clients:
            client.close()


class Held:
    """Which tweets some loaded list holds, per body namespace: on a cluster, a read finds a
    body only in its list's slot (Keys.sibling), so each shard needs the bodies of its own
    lists' ids; on one Redis there is one namespace, `tweet:`."""

    def __init__(self, tweets: int):
        self.tweets = tweets
        self.by_namespace: dict[str, np.ndarray] = {}

    def mark(self, beside: str, ids: np.ndarray) -> None:
        namespace = Keys.sibling(beside, "tweet", "")
        if namespace not in self.by_namespace:
            self.by_namespace[namespace] = np.zeros(self.tweets + 1, dtype=bool)
        self.by_namespace[namespace][ids] = True

    def any(self) -> np.ndarray:
        return np.logical_or.reduce(list(self.by_namespace.values())) if self.by_namespace else None


def refuse_if_loaded(url: str, force: bool, cluster: bool = False) -> None:
    """Refused when the db at `url` already holds timelines (unless `force`);
    redis.ConnectionError when nothing answers there."""
    route = Route.to(url, cluster)
    try:
        refuse_if_holding(route, url, force)
    finally:
        route.disconnect()


def refuse_if_holding(route: Route, url: str, force: bool) -> None:
    for client in route.clients:
        client.ping()
        if not force and next(client.scan_iter(match="timeline:*", count=10_000), None) is not None:
            raise Refused(f"{url} already holds timeline keys; pass --force to replace them")


def make_room(route: Route, url: str, force: bool) -> None:
    refuse_if_holding(route, url, force)
    if force:
        for client in route.clients:
            for pattern in APP_KEYS:
                keys = list(client.scan_iter(match=pattern, count=10_000))
                unlink(client, keys, by_key=bool(route.node_of_slot))


def unlink(client: redis.Redis, keys: list[bytes], by_key: bool) -> None:
    """On a cluster node a command may not name keys of two slots: one UNLINK a key there."""
    if by_key:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.unlink(key)
            pipe.execute()
        return
    for at in range(0, len(keys), 10_000):
        client.unlink(*keys[at : at + 10_000])


def write_bodies(route: Route, history: History, held: Held, progress: bool) -> None:
    """The bodies of the tweets some list holds, beside those lists; the others' would be
    unreachable."""
    anywhere = held.any()
    if anywhere is None:
        return
    for rows in tweet_rows(history, progress, "tweet bodies"):
        encoded = [(row[0], tweet_json(row)) for row in rows if anywhere[row[0]]]
        for namespace, holds in held.by_namespace.items():
            commands = [
                (key, hiredis.pack_command(("SET", key, body, "EX", TWEET_TTL)))
                for tweet_id, body in encoded
                if holds[tweet_id]
                for key in (f"{namespace}{tweet_id}",)
            ]
            for at in range(0, len(commands), BODIES_PER_SEND):
                route.send(commands[at : at + BODIES_PER_SEND])


def write_timelines(
    route: Route,
    graph: Graph,
    history: History,
    length: int,
    pulled: np.ndarray | None,
    held: Held,
    progress: bool,
) -> None:
    ids = encoded_ids(history.tweets)
    followees = graph.offsets()
    with tqdm(total=graph.users, desc="timelines", unit="user", disable=not progress, file=sys.stderr) as bar:
        for batch in home_timelines(graph, history, length, pulled):
            for start in range(0, len(batch), TIMELINES_PER_SEND):
                users = range(start, min(start + TIMELINES_PER_SEND, len(batch)))
                keyed = []
                for i in users:
                    key = route.keys.timeline(batch.first_user + i)
                    held.mark(key, batch.newest(i))
                    followed = pulled_by(graph, followees, pulled, batch.first_user + i)
                    keyed.append((key, rpush(key, batch.newest(i), length, ids, followed)))
                route.send(keyed)
                bar.update(len(users))


def write_recent(route: Route, history: History, authors: np.ndarray, length: int, held: Held) -> None:
    """Each celebrity's newest tweet ids, as the hybrid's read would rebuild them: on a
    cluster, into each shard's copy."""
    ids = encoded_ids(history.tweets)
    for author in authors.tolist():
        newest = (np.flatnonzero(history.author == author) + 1)[::-1][:length]
        keyed = []
        for key in route.keys.recent_copies(author):
            held.mark(key, newest)
            keyed.append((key, rpush(key, newest, length, ids, ())))
        route.send(keyed)


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
