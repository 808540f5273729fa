"""A Redis Cluster of our own, beside rig/processes.py's RedisServer: N redis-server
processes in cluster mode (one RedisServer each, on free ports, persistence off), the slots
split evenly between them, joined, and waited for until every node says cluster_state:ok.
The tests run the apps on one (tests/test_cluster.py), `python -m bench fanout --redis-nodes
N` measures on one. Never the machine's Redis.

A node killed and started again on its port comes back with its slots (its nodes.conf, kept
in the directory) and none of its data: what a cache must survive.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import redis

from rig.processes import Cpus, RedisServer, free_port, wait_until

SLOTS = 16384
JOIN_TIMEOUT_SECONDS = 30


@dataclass(eq=False)
class ClusterNode(RedisServer):
    """One node: a RedisServer with cluster mode on. Its bus port is chosen here, not as
    port + 10000 (Redis's default), which can be taken, or past 65535."""

    bus_port: int = 0
    node_timeout_ms: int = 5000

    def __post_init__(self):
        while self.bus_port in (0, self.port):
            self.bus_port = free_port()
        self.arguments = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            f"nodes-{self.port}.conf",
            "--cluster-port",
            str(self.bus_port),
            # How long a silent node stays merely suspected: a node killed and restarted
            # within it never fails the cluster.
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
        )

    def info(self) -> dict[str, str]:
        with self.client() as client:
            text = client.execute_command("CLUSTER", "INFO")
        text = text.decode() if isinstance(text, bytes) else text
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def ready(self, nodes: int) -> bool:
        info = self.info()
        return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == nodes


@dataclass(eq=False)
class RedisCluster:
    """`nodes` primaries, no replicas. `ports`, when given, are the nodes' ports (a test
    points an app at a seed before the cluster exists); otherwise free ones."""

    directory: Path
    nodes: int = 3
    cpus: tuple[int, ...] = ()
    ports: tuple[int, ...] = ()
    node_timeout_ms: int = 5000
    servers: list[ClusterNode] = field(default_factory=list)

    def start(self) -> Self:
        self.start_nodes()
        self.join()
        return self

    def start_nodes(self) -> Self:
        """The nodes, each alone and with no slots yet: a cluster still forming."""
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        for port in self.ports or [None] * self.nodes:
            given = {} if port is None else {"port": port}
            # One at a time: each binds its ports before the next asks for a free one.
            node = ClusterNode(self.directory, self.cpus, node_timeout_ms=self.node_timeout_ms, **given)
            self.servers.append(node.start())
        return self

    def join(self) -> Self:
        self.meet()
        self.wait_ready()
        return self

    def meet(self) -> None:
        """What `redis-cli --cluster create ... --cluster-replicas 0` sends, which refuses
        fewer than three primaries while the fanout bench measures one and two: each node
        its even share of the slots and its own config epoch, then all of them met."""
        count = len(self.servers)
        for index, node in enumerate(self.servers):
            first, last = index * SLOTS // count, (index + 1) * SLOTS // count - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        with self.seed.client() as client:
            for node in self.servers[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)

    def wait_ready(self) -> None:
        wait_until(
            lambda: all(node.ready(len(self.servers)) for node in self.servers),
            JOIN_TIMEOUT_SECONDS,
            f"cluster_state:ok on every node of {self.describe()} (logs in {self.directory})",
            0.05,
        )

    def node_serving(self, slot: int) -> int:
        """The index of the node that meet() gave `slot` to."""
        count = len(self.servers)
        return next(index for index in range(count) if slot < (index + 1) * SLOTS // count)

    @property
    def seed(self) -> ClusterNode:
        return self.servers[0]

    def url(self) -> str:
        """REDIS_URL for an app with REDIS_CLUSTER=1: one seed node; the client finds the rest."""
        return self.seed.url()

    def kill(self, index: int) -> None:
        """SIGKILL one node: its slots go unserved, the rest of the cluster goes on (until the
        node timeout would mark it failed)."""
        self.servers[index].kill()

    def revive(self, index: int) -> None:
        """A killed node started again on its port and nodes.conf: back with its slots, empty."""
        self.servers[index].start()
        self.wait_ready()

    def client(self) -> redis.RedisCluster:
        """A client of the whole cluster, as RedisServer.client() is of one server."""
        return redis.RedisCluster.from_url(self.url())

    def flushall(self) -> None:
        """FLUSHALL on every node: a cluster's keys are spread over all of them."""
        for node in self.servers:
            with node.client() as client:
                client.flushall()

    def describe(self) -> str:
        return f"a {len(self.servers)}-node Redis Cluster on ports {[node.port for node in self.servers]}"

    def stop(self) -> None:
        for node in self.servers:
            node.stop()

    def __enter__(self) -> Self:
        if self.servers:
            return self
        try:
            return self.start()
        except BaseException:
            # `with` calls __exit__ only once __enter__ has returned: the nodes started so
            # far (or a Ctrl-C while they join) would outlive the run.
            self.stop()
            raise

    def __exit__(self, *_) -> None:
        self.stop()


def redis_for(nodes: int, directory: Path, cpus: Cpus) -> RedisServer | RedisCluster:
    """A bench's own Redis, not yet started (`with` starts it and stops it, Ctrl-C and errors
    included): one redis-server, or with `nodes` a Redis Cluster of that many. A cluster's
    nodes all go on the CPUs the one redis-server has: on 2 CPUs, one core they share."""
    if nodes:
        return RedisCluster(directory / "redis-cluster", nodes=nodes, cpus=cpus.redis)
    return RedisServer(directory, cpus=cpus.redis)


def servers_of(redis: RedisServer | RedisCluster) -> list[RedisServer]:
    """Every redis-server process of one Redis or of a cluster: what a meter sums over."""
    return redis.servers if isinstance(redis, RedisCluster) else [redis]


def start_clusters(clusters: list[RedisCluster]) -> list[RedisCluster]:
    """Several clusters at once: each node waits 2 s after its start before it serves
    (Redis's CLUSTER_WRITABLE_DELAY), so the waits overlap instead of adding up."""
    for cluster in clusters:
        cluster.start_nodes()
    for cluster in clusters:
        cluster.meet()
    for cluster in clusters:
        cluster.wait_ready()
    return clusters
