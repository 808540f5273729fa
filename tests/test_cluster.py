"""The fanout designs on a Redis Cluster (REDIS_CLUSTER=1, REDIS_URL one seed node): the
differential history agrees with join-on-read and the model; every key a read touches is
in the reader's slot; a celebrity's tweet is read from the copy of its recent list in each
reader's own shard; a flush of every node and a node killed and restarted lose nothing; a
cluster that is not there yet, or still forming, is one warning line and a 503, then caught
up with.

Each fanout app has a 3-node cluster of its own: a cluster has one database, and two apps on
one would share keys. The differential history runs once, for the module (it is most of the
time); each test after it leaves the apps agreeing with the model, as it found them.
"""

import itertools
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from redis.cluster import RedisCluster as ClusterClient

from harness import FANOUT_APPS, AppServer, free_port
from history import SETTINGS, Lockstep, random_history, run_differential
from rig.redis_cluster import RedisCluster, start_clusters
from timelines.cache import Keys

SEED = 21
TIMELINE_LENGTH = 5  # pages run past the cache
TAGGED = re.compile(rb"^(token:)?(timeline|recent|tweet):\{s\d+(\.\d+)?\}:\d+$")
KEYS = Keys.sharded()


@dataclass
class ClusterRun:
    join: AppServer
    fanout: AppServer
    hybrid: AppServer
    clusters: dict[str, RedisCluster]  # by the module of the app that uses it
    lockstep: Lockstep
    users: int

    @property
    def apps(self) -> list[AppServer]:
        return [self.join, self.fanout, self.hybrid]

    @property
    def cached(self) -> list[tuple[AppServer, RedisCluster]]:
        return [(app, self.clusters[app.module]) for app in (self.fanout, self.hybrid)]


def start_all(apps: list[AppServer]) -> None:
    """Side by side: each app takes a second or two to import and open its stores."""
    with ThreadPoolExecutor(len(apps)) as pool:
        list(pool.map(AppServer.start, apps))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    # A node timeout longer than any test keeps a node down: it stays suspected, never
    # failed, so the rest of the cluster goes on serving, as a short outage would.
    clusters = {module: RedisCluster(tmp / module, node_timeout_ms=15_000) for module in FANOUT_APPS}
    settings = {**SETTINGS, "timeline_length": TIMELINE_LENGTH}
    apps = []
    try:
        start_clusters(list(clusters.values()))
        apps.append(AppServer("approach1", tmp / "approach1.db", "redis://127.0.0.1:1/0", **settings))
        apps += [
            AppServer(module, tmp / f"{module}.db", clusters[module].url(), redis_cluster=1, **settings)
            for module in FANOUT_APPS
        ]
        start_all(apps)
        lockstep = run_differential(apps, SEED)
        yield ClusterRun(*apps, clusters, lockstep, users=10)
    finally:
        for app in apps:
            app.stop()
        for cluster in clusters.values():
            cluster.stop()


def assert_pages(run: ClusterRun, users=None) -> int:
    """Every user's timeline, whole and walked in pages of 2 (past the cache's 5), is the
    model's in both fanout apps, once their backlogs are 0 (join-on-read, which has no
    cache to lose, agreed with the model throughout the differential history). Returns the
    pages compared."""
    for app, _ in run.cached:
        app.wait_for_fanout()
    model, pages = run.lockstep.model, 0
    for user in users or range(1, run.users + 1):
        for app, _ in run.cached:
            assert app.timeline(user, 200) == model.timeline(user, 200), f"{app.module}: user {user}"
            before = None
            while page := app.timeline(user, 2, before):
                assert page == model.timeline(user, 2, before), f"{app.module}: user {user} before {before}"
                before, pages = page[-1], pages + 1
    return pages


def client_of(cluster: RedisCluster) -> ClusterClient:
    return ClusterClient.from_url(cluster.url())


def keys_on(cluster: RedisCluster) -> dict[int, list[bytes]]:
    """Every key each node holds, by node."""
    keys = {}
    for index, node in enumerate(cluster.servers):
        with node.client() as client:
            keys[index] = list(client.scan_iter(count=1000))
    return keys


def slot_of(cluster: RedisCluster, key: str | bytes) -> int:
    with cluster.seed.client() as client:
        return client.execute_command("CLUSTER", "KEYSLOT", key)


def served_by(cluster: RedisCluster, user: int) -> int:
    """The index of the node holding `user`'s timeline."""
    return cluster.node_serving(slot_of(cluster, KEYS.timeline(user)))


def commands_run(cluster: RedisCluster) -> dict[int, Counter[str]]:
    """Commands each node has run, those of scripts included, but not the asking (INFO, and
    HELLO for each connection this opens)."""
    calls = {}
    for index, node in enumerate(cluster.servers):
        with node.client() as client:
            stats = client.info("commandstats")
        calls[index] = Counter(
            {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}
        )
        del calls[index]["info"], calls[index]["hello"]
    return calls


def cache_counters(app: AppServer) -> dict[str, int]:
    return app.stats()["cache"]


def test_the_three_apps_agree_on_clusters(run):
    """run_differential (in the fixture) compared every page at five points of the history,
    with a celebrity crossing the threshold both ways; here, that the caches answered them."""
    assert len(run.lockstep.model.tweets) > 50
    for app, cluster in run.cached:
        cache = cache_counters(app)
        assert cache["hits"] > 1000 and cache["database_reads"] == 0, f"{app.module}: {cache}"
        assert cache["beyond_cache"] > 0, f"{app.module}: no page ran past the cache"
        held = keys_on(cluster)
        assert all(held.values()), f"{app.module}: a node holds no key: {held}"
        untagged = [key for keys in held.values() for key in keys if not TAGGED.match(key)]
        assert untagged == [], f"{app.module}: keys outside every shard"
    assert cache_counters(run.hybrid)["recent_regenerations"] > 0
    assert run.hybrid.stats()["fanout_writes"] < run.fanout.stats()["fanout_writes"]


def test_a_celebrity_tweet_is_read_in_each_readers_shard(run):
    celebrity, readers = 11, [12, 18, 24, 30]  # shards 12, 2, 8 and 14: all three nodes
    for n in range(run.users + 1, 31):
        assert {app.create_user(f"user{n}") for app in run.apps} == {n}
    run.users = 30
    for reader in readers:  # the fourth makes 11 a celebrity (threshold 4)
        run.lockstep.apply(("follow", reader, celebrity))
    run.lockstep.apply(("tweet", celebrity))
    assert_pages(run, readers)  # the readers' timelines and copies of the recent list, rebuilt
    cluster = run.clusters[run.hybrid.module]
    copies = [KEYS.recent(celebrity, reader) for reader in readers]
    assert len({served_by(cluster, reader) for reader in readers}) == 3
    built, fanned_out = cache_counters(run.hybrid), run.hybrid.stats()["fanout_writes"]

    for _ in range(2):
        run.lockstep.apply(("tweet", celebrity))
    assert assert_pages(run, readers) > 0
    read = cache_counters(run.hybrid)
    assert read["misses"] == built["misses"] and read["recent_regenerations"] == built["recent_regenerations"]
    assert read["hits"] > built["hits"] and read["database_reads"] == 0
    assert run.hybrid.stats()["fanout_writes"] == fanned_out, "a celebrity's tweet went to its followers"
    newest_id = run.lockstep.model.tweets[-1][0]
    client = client_of(cluster)
    assert all(int(client.lindex(key, 0)) == newest_id for key in copies), "a copy missed the tweet"
    client.close()
    for reader in readers:
        before = commands_run(cluster)
        assert run.hybrid.timeline(reader, 1) == [newest_id]
        ran = {node: calls - before[node] for node, calls in commands_run(cluster).items()}
        ran = {node: calls for node, calls in ran.items() if calls}
        assert list(ran) == [served_by(cluster, reader)], f"reader {reader}'s read: {ran}"
        calls = ran.popitem()[1]
        assert calls.pop("evalsha") == 1 and set(calls) <= {"lindex", "lrange", "mget"}, (
            f"reader {reader}'s read was more than one call: {calls}"
        )


def test_every_key_of_a_read_is_in_the_readers_slot(run):
    assert_pages(run)  # every timeline read, so cached, with its bodies and recent lists
    for app, cluster in run.cached:
        client = client_of(cluster)
        for user in range(1, run.users + 1):
            timeline = KEYS.timeline(user)
            *ids, tail = client.lrange(timeline, 0, -1)
            assert tail, f"{app.module}: user {user}'s timeline is not cached"
            pulled = [int(author) for author in tail.split(b"|")[1].split(b",")] if b"|" in tail else []
            recent = [KEYS.recent(author, user) for author in pulled]
            assert all(client.exists(key) for key in recent), (
                f"{app.module}: user {user} pulls from elsewhere"
            )
            bodies = [Keys.sibling(timeline, "tweet", int(tweet_id)) for tweet_id in ids]
            assert all(client.exists(key) for key in bodies), f"{app.module}: user {user}'s bodies"
            tokens = [f"token:{key}" for key in (timeline, *recent)]
            slots = {slot_of(cluster, key) for key in [timeline, *recent, *bodies, *tokens]}
            assert len(slots) == 1, f"{app.module}: user {user}'s read spans slots {slots}"
        client.close()


def test_a_flush_of_every_node_is_rebuilt(run):
    rebuilt = [cache_counters(app)["regenerations"] for app, _ in run.cached]
    for _, cluster in run.cached:
        cluster.flushall()
        assert not any(keys_on(cluster).values())
    assert assert_pages(run) > 0
    after = [cache_counters(app)["regenerations"] for app, _ in run.cached]
    assert all(now > then for now, then in zip(after, rebuilt, strict=True)), (rebuilt, after)


def test_a_node_killed_and_restarted(run):
    """Node 1 of each cluster dies with its keys: its readers are answered from SQLite, the
    outbox keeps what is owed, and once it is back, empty, every page is right again."""
    for _, cluster in run.cached:
        cluster.kill(1)
    for app, _ in run.cached:
        health = app.http.get("/health")
        assert health.status_code == 503, health.text
        assert "Redis Cluster" in health.json()["detail"] and "REDIS_URL" in health.json()["detail"]
    for step in itertools.islice(random_history(SEED + 1), 30):
        run.lockstep.apply(step)
    from_sqlite = [cache_counters(app)["database_reads"] for app, _ in run.cached]
    for app, cluster in run.cached:
        down = [user for user in range(1, run.users + 1) if served_by(cluster, user) == 1]
        assert down, "no user's shard is on the node killed"
        for user in down:
            assert app.timeline(user, 200) == run.lockstep.model.timeline(user, 200), f"{app.module}: {user}"
    assert all(
        cache_counters(app)["database_reads"] > then
        for (app, _), then in zip(run.cached, from_sqlite, strict=True)
    )

    for _, cluster in run.cached:
        cluster.revive(1)
    assert assert_pages(run) > 0
    for app, _ in run.cached:
        assert app.http.get("/health").status_code == 200
        assert "Traceback" not in app.log.read_text()


def distinct_free_ports(count: int) -> tuple[int, ...]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return tuple(ports)


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_a_cluster_not_there_yet_then_forming_then_up(tmp_path, module):
    ports = distinct_free_ports(3)
    url = f"redis://127.0.0.1:{ports[0]}/0"
    app = AppServer(module, tmp_path / "app.db", url, redis_cluster=1).start()
    cluster = RedisCluster(tmp_path / "cluster", ports=ports)
    try:
        said = [line for line in app.log.read_text().splitlines() if "Redis" in line]
        assert len(said) == 1 and "REDIS_URL" in said[0] and "REDIS_CLUSTER" in said[0], said
        alice, bob = app.create_user("alice"), app.create_user("bob")
        app.follow(alice, bob)
        tweet = app.tweet(bob, "posted before the cluster exists")["id"]

        def still_waiting() -> None:
            health = app.http.get("/health")
            assert health.status_code == 503 and "Redis Cluster" in health.json()["detail"], health.text
            assert app.timeline(alice) == [tweet], "reads fall back to SQLite"
            assert app.stats()["fanout_backlog"] == 2  # the tweet, and alice's missed follow

        still_waiting()
        cluster.start_nodes()  # up, but serving no slot yet: a cluster still forming
        still_waiting()
        cluster.join()
        app.wait_for_fanout(timeout=30)
        assert app.http.get("/health").status_code == 200
        assert app.timeline(alice) == [tweet]
        assert cache_counters(app)["regenerations"] == 1
        log = app.log.read_text()
        assert "Traceback" not in log
        said = [line for line in log.splitlines() if "Redis" in line]
        assert len(said) == 2 and "Redis is back" in said[1], said
    finally:
        app.stop()
        cluster.stop()
