"""The bulk loader on a Redis Cluster (load_redis(..., cluster=True)): the keys it writes are
the ones a fanout app with REDIS_CLUSTER=1 reads, so a loaded app answers every timeline
from the cache, bodies included, exactly as the model says, and never rebuilds one.

A small generated graph, TIMELINE_LENGTH 10 so that floors matter, and a threshold that makes
a few accounts celebrities (the hybrid's recent lists, one copy per shard). Each fanout app
has a 3-node cluster of its own.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

from datagen.caches import load_redis
from datagen.graph import generate_graph
from datagen.history import generate_history
from datagen.load import load_sqlite
from harness import FANOUT_APPS, ROOT, AppServer
from model import TimelineModel
from rig.redis_cluster import RedisCluster, start_clusters
from timelines.designs import by_module

LENGTH = 10
TAGGED = re.compile(rb"^(timeline|recent|tweet):\{s\d+(\.\d+)?\}:\d+$")


@pytest.fixture(scope="module")
def data():
    graph = generate_graph(60, 8, 1.1, seed=22)
    history = generate_history(graph, 4, seed=22)
    threshold = int(np.sort(graph.followers())[-2])  # the two most followed (or ties)
    return graph, history, threshold


@pytest.fixture(scope="module")
def loaded(data, tmp_path_factory):
    """{module: (app, cluster)}: each fanout app on the SQLite file and cluster the loader filled."""
    graph, history, threshold = data
    tmp = tmp_path_factory.mktemp("loaded-cluster")
    clusters = {module: RedisCluster(tmp / module) for module in FANOUT_APPS}
    apps = []
    try:
        start_clusters(list(clusters.values()))
        for module, cluster in clusters.items():
            database = tmp / f"{module}.db"
            load_sqlite(database, graph, history, threshold, progress=False)
            name = by_module(module).name
            load_redis(cluster.url(), graph, history, name, LENGTH, threshold, progress=False, cluster=True)
            app = AppServer(
                module,
                database,
                cluster.url(),
                redis_cluster=1,
                timeline_length=LENGTH,
                celebrity_threshold=threshold,
            )
            apps.append(app.start())
        yield {app.module: (app, clusters[app.module]) for app in apps}
    finally:
        for app in apps:
            app.stop()
        for cluster in clusters.values():
            cluster.stop()


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_a_loaded_cluster_answers_every_timeline_from_the_cache(module, data, loaded):
    graph, history, _ = data
    app, _ = loaded[module]
    model = TimelineModel.of_generated(graph, history)
    before = app.stats()["cache"]
    for user in range(1, graph.users + 1):
        assert app.timeline(user, limit=LENGTH) == model.timeline(user, LENGTH, None), f"user {user}"
    cache = app.stats()["cache"]
    assert cache["hits"] - before["hits"] == graph.users
    assert cache["misses"] == before["misses"] == 0, "a loaded timeline was not where the app reads it"
    assert cache["body_misses"] == 0, "a loaded body was not in its reader's slot"
    assert cache["recent_regenerations"] == 0


@pytest.mark.parametrize("module", FANOUT_APPS)
def test_every_loaded_key_carries_a_shard_tag_and_nodes_share_them(module, loaded):
    _, cluster = loaded[module]
    per_node = []
    for node in cluster.servers:
        with node.client() as client:
            keys = list(client.scan_iter(count=1000))
        assert keys and all(TAGGED.match(key) for key in keys), [k for k in keys if not TAGGED.match(k)][:5]
        per_node.append(len(keys))
    assert len(per_node) == 3 and min(per_node) > 0
    recent = [key for node in cluster.servers for key in node.client().scan_iter(match="recent:*")]
    assert (module == "approach3_hybrid") == bool(recent)


def test_cli_loads_a_cluster_the_app_reads_and_refuses_a_plain_redis(tmp_path, redis_server):
    """`python -m datagen tiny --database … --redis-url NODE --redis-cluster --approach fanout`:
    the keys an app with REDIS_CLUSTER=1 reads, spread over the nodes; the same flag against
    a Redis that is no cluster is one line, with nothing loaded."""
    command = [sys.executable, "-m", "datagen", "tiny", "--approach", "fanout", "--redis-cluster"]
    with RedisCluster(tmp_path / "cluster") as cluster:
        database = tmp_path / "tiny.db"
        loaded = subprocess.run(
            command + ["--database", str(database), "--redis-url", cluster.url()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert f"redis cluster {cluster.url()} (fanout): loaded" in loaded.stdout
        keys = [list(node.client().scan_iter(match="timeline:*", count=1000)) for node in cluster.servers]
        assert all(node_keys and all(TAGGED.match(k) for k in node_keys) for node_keys in keys)
        assert sum(map(len, keys)) == 1_000  # tiny's users, each one list
        app = AppServer("approach2", database, cluster.url(), redis_cluster=1).start()
        try:
            assert app.timeline(1, limit=5)
            assert app.stats()["cache"]["hits"] == 1 and app.stats()["cache"]["misses"] == 0
        finally:
            app.stop()

    db = redis_server.take_db()
    try:
        refused = subprocess.run(
            command + ["--database", str(tmp_path / "never.db"), "--redis-url", redis_server.url(db)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "no Redis Cluster at" in refused.stderr and "--redis-cluster" in refused.stderr
        assert not (tmp_path / "never.db").exists() and redis_server.client(db).dbsize() == 0
    finally:
        redis_server.give_back_db(db)
