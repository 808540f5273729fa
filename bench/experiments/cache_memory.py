"""Redis bytes per cached timeline entry, as the apps build their cache, and how many users'
timelines fit in 4 GiB of Redis (issue 9).

    python -m bench cache-memory [--scale small] [--default-too] [--out DIR]

App-built (approach2, then approach3_hybrid, each on a fresh copy of the seeded SQLite file
and an empty redis-server of its own): every user's timeline is read over HTTP, round after
round, until a whole round is cache hits. The first round misses and regenerates each
timeline; the hybrid's second one also rebuilds the celebrities' `recent:` lists; the first
all-hit round stores the bodies of each first page, as a real reader would. Once the outbox
has drained, the app is stopped (its connections are not the cache) and Redis is measured:

- entries: over `timeline:*` and `recent:*`, LLEN - 1 each (the last element is the floor
  marker, counted in the bytes, not as an entry);
- used_memory (INFO memory) minus the empty server's, divided by the entries: bytes per
  entry, all in;
- per family, the used_memory freed by deleting it (tokens, bodies, recent lists, timelines,
  in that order; what is left is "other": the script cache, chiefly), beside MEMORY USAGE of
  up to 1,000 of its keys scaled to the family's count, a cross-check of the deletion.

With --default-too, `default` is loaded by the bulk loader the way a user loads it
(`python -m datagen default ... --approach fanout`, which writes what the app's
regeneration would, bodies included), timed, and measured the same way: bytes per user, and
4 GiB / bytes per user, the users whose every timeline fits in 4 GiB.

The run folder (default results/cache-memory-<UTC time>/) gets families.csv, summary.csv,
meta.json and the apps' and loader's logs.
"""

import argparse
import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from tqdm import tqdm

from bench.output import Progress, write_csv
from bench.plan import PLANS, Plan
from bench.report import meta
from bench.seeding import seeded_database
from bench.session import Stack, drain
from bench.stores import SqliteStore
from datagen.scales import SCALES
from rig.processes import ROOT, AppServer, Cpus, RedisServer, stop
from rig.redis_cluster import RedisCluster, redis_for, servers_of
from timelines import designs

LISTS = ("timeline", "recent")  # the families whose elements are entries
FAMILIES = ("token", "tweet", "recent", "timeline")  # in the order they are deleted
BUDGET = 4 * 2**30
SAMPLE = 1_000  # keys per family given to MEMORY USAGE
BATCH = 10_000  # keys per pipelined LLEN / DEL
MAX_ROUNDS = 4  # misses after this many rounds of reads mean something is wrong
CONCURRENCY = 16
DRAIN_SECONDS = 120
REDIS_LOADED = re.compile(r"^redis .*: loaded in ([\d.]+) s")


@dataclass(frozen=True)
class Family:
    name: str
    keys: int
    bytes: int  # used_memory freed by deleting the family
    sampled_bytes: int | None  # MEMORY USAGE of a sample of its keys, scaled to `keys`


@dataclass(frozen=True)
class Footprint:
    """One cache, built one way, measured."""

    setup: str  # how it was built: an app's reads, or the bulk loader
    scale: str
    redis_nodes: int  # 1: one redis-server; more: a Redis Cluster's nodes, summed
    users: int
    entries: int  # cached tweet ids: every list's length less its floor marker
    used_memory: int  # INFO used_memory above the empty server's (the nodes', summed)
    families: tuple[Family, ...]  # the key families, then "other"
    seconds: float  # to build it: the reads, or the loader's wall time

    @property
    def bytes_per_entry(self) -> float:
        return self.used_memory / self.entries

    @property
    def bytes_per_user(self) -> float:
        return self.used_memory / self.users

    @property
    def users_within_budget(self) -> int:
        return int(BUDGET / self.bytes_per_user)


say = Progress().say


# --- Redis, measured --------------------------------------------------------------------------


def used_memory(nodes: list[redis.Redis]) -> int:
    """INFO used_memory, summed over a cluster's nodes."""
    return sum(node.info("memory")["used_memory"] for node in nodes)


def settled_used_memory(nodes: list[redis.Redis], interval: float = 0.2, tries: int = 25) -> int:
    """used_memory once it holds still: Redis shrinks its key dicts in its cron after a
    delete, a few hundred ms later, and that memory belongs to what was deleted."""
    previous = used_memory(nodes)
    for _ in range(tries):
        time.sleep(interval)
        if (now := used_memory(nodes)) == previous:
            return now
        previous = now
    return previous


def family_keys(nodes: list[redis.Redis], family: str) -> list[list[bytes]]:
    """The family's keys, node by node (a key is measured and deleted on its own node)."""
    return [list(node.scan_iter(match=f"{family}:*", count=BATCH)) for node in nodes]


def entries_in(client: redis.Redis, lists: list[bytes]) -> int:
    """Tweet ids held by these lists: each one's length less its floor marker."""
    entries = 0
    for at in range(0, len(lists), BATCH):
        with client.pipeline(transaction=False) as pipe:
            for key in lists[at : at + BATCH]:
                pipe.llen(key)
            entries += sum(length - 1 for length in pipe.execute())
    return entries


def sampled_bytes(client: redis.Redis, keys: list[bytes]) -> int | None:
    """MEMORY USAGE (exact: SAMPLES 0) of evenly spaced keys, scaled to all of them."""
    sample = keys[:: max(1, len(keys) // SAMPLE)]
    if not sample:
        return None
    with client.pipeline(transaction=False) as pipe:
        for key in sample:
            pipe.memory_usage(key, samples=0)
        usages = pipe.execute()
    return round(sum(usages) / len(sample) * len(keys))


def delete(client: redis.Redis, keys: list[bytes]) -> None:
    """DEL, which frees now (UNLINK would free later), a key per command: a cluster node
    refuses one naming keys of two slots."""
    for at in range(0, len(keys), BATCH):
        with client.pipeline(transaction=False) as pipe:
            for key in keys[at : at + BATCH]:
                pipe.delete(key)
            pipe.execute()


def footprint(
    nodes: list[redis.Redis], empty: int, setup: str, scale: str, users: int, seconds: float
) -> Footprint:
    """Measures the cache, then deletes it family by family, leaving every node empty."""
    before = settled_used_memory(nodes)
    keys = {family: family_keys(nodes, family) for family in FAMILIES}
    entries = sum(
        entries_in(node, mine) for family in LISTS for node, mine in zip(nodes, keys[family], strict=True)
    )
    families, left = [], before
    for family in FAMILIES:
        count = sum(map(len, keys[family]))
        if not count:  # nothing to free: a delta here would be noise
            families.append(Family(family, 0, 0, None))
            continue
        sampled = [sampled_bytes(node, mine) for node, mine in zip(nodes, keys[family], strict=True)]
        for node, mine in zip(nodes, keys[family], strict=True):
            delete(node, mine)
        now = settled_used_memory(nodes)
        families.append(Family(family, count, left - now, sum(b for b in sampled if b is not None)))
        left = now
    families.append(Family("other", 0, left - empty, None))
    return Footprint(setup, scale, len(nodes), users, entries, before - empty, tuple(families), seconds)


@contextmanager
def empty_redis(work: Path, nodes: int, cpus: Cpus) -> Iterator[tuple[RedisServer | RedisCluster, list]]:
    """A redis-server of our own, or with `nodes` a Redis Cluster of that many; with a
    client of each of its servers."""
    with redis_for(nodes, work, cpus) as server:
        clients = [node.client() for node in servers_of(server)]
        try:
            yield server, clients
        finally:
            for client in clients:
                client.close()


def described(nodes: int) -> str:
    return f"an empty {nodes}-node Redis Cluster" if nodes else "an empty Redis"


# --- the cache as an app builds it ------------------------------------------------------------


async def read_every_timeline(url: str, users: int, desc: str) -> Counter:
    """GET /timeline/{id} for every user, CONCURRENCY at a time; how many of each status."""
    statuses, todo = Counter(), iter(range(1, users + 1))
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        with tqdm(
            total=users, desc=desc, unit="read", file=sys.stderr, leave=False, disable=not sys.stderr.isatty()
        ) as bar:

            async def reader() -> None:
                for user in todo:  # one iterator shared: each user is read once
                    statuses[(await client.get(f"/timeline/{user}")).status_code] += 1
                    bar.update()

            await asyncio.gather(*(reader() for _ in range(CONCURRENCY)))
    return statuses


def read_until_all_hits(app: AppServer, users: int) -> None:
    """Rounds of reads until one is all cache hits: every list is built and every first
    page's bodies stored."""
    for round_number in range(1, MAX_ROUNDS + 1):
        before = app.stats()["cache"]
        began = time.monotonic()
        statuses = asyncio.run(read_every_timeline(app.url, users, f"{app.module} round {round_number}"))
        seconds = time.monotonic() - began
        if set(statuses) != {200}:
            raise RuntimeError(f"{app.module}: answers other than 200: {dict(statuses)} (log: {app.log})")
        after = app.stats()["cache"]
        changed = {name: after[name] - before[name] for name in after}
        say(
            f"{app.module} round {round_number}: {users:,} reads in {seconds:.1f} s "
            f"({users / seconds:,.0f}/s): {changed['hits']:,} hits, {changed['misses']:,} misses, "
            f"{changed['regenerations'] + changed['recent_regenerations']:,} rebuilds, "
            f"{changed['body_misses']:,} bodies stored"
        )
        if changed["misses"] == 0:
            return
    raise RuntimeError(f"{app.module}: still missing after {MAX_ROUNDS} rounds of reads")


def app_built(
    module: str, plan: Plan, seeded: Path, work: Path, folder: Path, cpus: Cpus, nodes: int
) -> Footprint:
    with empty_redis(work, nodes, cpus) as (server, clients):
        empty = settled_used_memory(clients)
        stack = Stack(SqliteStore(work, work), server, cpus, folder / "logs", plan.timeline_length)
        name = designs.by_module(module).name
        say(f"{module}: started on {plan.scale} and {described(nodes)} ({empty:,} bytes used)")
        began = time.monotonic()
        # No caches loaded: the app builds them itself, from its reads.
        with stack.app(name, seeded, plan.celebrity_threshold, module) as app:
            read_until_all_hits(app, plan.dataset.users)
            drain(app, say, DRAIN_SECONDS)
            seconds = time.monotonic() - began
        say(f"{module}: stopped; measuring Redis family by family")
        return footprint(clients, empty, module, plan.scale, plan.dataset.users, seconds)


# --- the cache as the bulk loader writes it ---------------------------------------------------


def run_loader(
    scale: str, database: Path, redis_url: str, cluster: bool, length: int, log: Path
) -> tuple[float, float]:
    """`python -m datagen SCALE ... --approach fanout`, its output relayed line by line (its
    progress bars go to the log); (wall seconds, seconds it reports loading Redis)."""
    command = [
        sys.executable,
        "-m",
        "datagen",
        scale,
        "--database",
        str(database),
        "--redis-url",
        redis_url,
        "--approach",
        "fanout",
        "--timeline-length",
        str(length),
    ] + ["--redis-cluster"] * cluster
    began, redis_seconds = time.monotonic(), float("nan")
    with open(log, "ab") as errors:
        loader = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True
        )
    try:
        for line in loader.stdout:
            say(f"datagen: {line.rstrip()}")
            if loaded := REDIS_LOADED.match(line):
                redis_seconds = float(loaded[1])
        if loader.wait() != 0:
            raise RuntimeError(f"the loader failed ({loader.returncode}): {log.read_text()[-2000:]}")
    finally:
        stop(loader)
    return time.monotonic() - began, redis_seconds


def loader_built(
    scale: str, length: int, work: Path, folder: Path, cpus: Cpus, nodes: int
) -> tuple[Footprint, float]:
    with empty_redis(work, nodes, cpus) as (server, clients):
        empty = settled_used_memory(clients)
        say(f"loader: datagen {scale} --approach fanout into {described(nodes)} ({empty:,} bytes used)")
        database, log = work / f"{scale}-loaded.db", folder / "logs" / "datagen.log"
        wall, redis_seconds = run_loader(scale, database, server.url(), bool(nodes), length, log)
        say(f"loader: {wall:.1f} s wall ({redis_seconds:.1f} s of it loading Redis); measuring")
        return footprint(clients, empty, "datagen-fanout", scale, SCALES[scale].users, wall), redis_seconds


# --- what a run leaves ------------------------------------------------------------------------


def family_rows(prints: list[Footprint]) -> list[dict]:
    return [
        {
            "setup": p.setup,
            "scale": p.scale,
            "family": f.name,
            "keys": f.keys,
            "bytes": f.bytes,
            "bytes_per_entry": round(f.bytes / p.entries, 3),
            "sampled_bytes": f.sampled_bytes,
        }
        for p in prints
        for f in p.families
    ]


def summary_rows(prints: list[Footprint]) -> list[dict]:
    return [
        {
            "setup": p.setup,
            "scale": p.scale,
            "redis_nodes": p.redis_nodes,
            "users": p.users,
            "entries": p.entries,
            "used_memory": p.used_memory,
            "bytes_per_entry": round(p.bytes_per_entry, 3),
            "bytes_per_user": round(p.bytes_per_user, 1),
            "users_within_4gib": p.users_within_budget,
            "seconds": round(p.seconds, 1),
        }
        for p in prints
    ]


def table(prints: list[Footprint]) -> str:
    header = "setup              scale    family          keys       MiB  bytes/entry  sampled b/e"
    lines = [header]
    for p in prints:
        for f in p.families:
            sampled = "" if f.sampled_bytes is None else f"{f.sampled_bytes / p.entries:.2f}"
            lines.append(
                f"{p.setup:<18} {p.scale:<8} {f.name:<9} {f.keys:>10,} {f.bytes / 2**20:>9.1f} "
                f"{f.bytes / p.entries:>12.2f} {sampled:>12}"
            )
        lines.append(
            f"{p.setup:<18} {p.scale:<8} {'all':<9} {sum(f.keys for f in p.families):>10,} "
            f"{p.used_memory / 2**20:>9.1f} {p.bytes_per_entry:>12.2f}"
        )
    lines.append("")
    for p in prints:
        lines.append(
            f"{p.setup} at {p.scale}: {p.entries:,} entries for {p.users:,} users, used_memory "
            f"{p.used_memory:,} B above empty: {p.bytes_per_entry:.1f} B/entry all in, "
            f"{p.bytes_per_user:,.0f} B/user: 4 GiB holds {p.users_within_budget:,} users "
            f"(built in {p.seconds:.1f} s)"
        )
    return "\n".join(lines)


def write_meta(
    folder: Path,
    args,
    plan: Plan,
    started: datetime,
    source: dict,
    machine: dict,
    prints: list[Footprint],
    loader_redis_seconds: float | None,
) -> None:
    command = (
        f"python -m bench cache-memory --scale {args.scale}"
        + (" --default-too" * args.default_too)
        + (f" --redis-nodes {args.redis_nodes}" if args.redis_nodes else "")
    )
    document = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **source,
        "command": command,
        "settings": {
            "TIMELINE_LENGTH": plan.timeline_length,
            "CELEBRITY_THRESHOLD": plan.celebrity_threshold,
            "budget_bytes": BUDGET,
        },
        "machine": machine,
        "packages": meta.packages(),
        "footprints": [
            {
                **asdict(p),
                "bytes_per_entry": p.bytes_per_entry,
                "bytes_per_user": p.bytes_per_user,
                "users_within_4gib": p.users_within_budget,
            }
            for p in prints
        ],
        "loader_redis_seconds": loader_redis_seconds,
    }
    (folder / "meta.json").write_text(json.dumps(document, indent=2) + "\n")


# --- command line -----------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench cache-memory", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", choices=PLANS, default="small", help="the apps build their cache here")
    parser.add_argument(
        "--default-too",
        action="store_true",
        help="also bulk-load `default` with datagen (fanout) and measure it",
    )
    parser.add_argument(
        "--redis-nodes",
        type=int,
        default=0,
        metavar="N",
        help="on a Redis Cluster of N nodes it starts (the apps' REDIS_CLUSTER=1); 0: one redis-server",
    )
    parser.add_argument("--out", type=Path, help="the run folder (default results/cache-memory-<UTC time>/)")
    args = parser.parse_args(argv)
    if args.redis_nodes < 0:
        parser.error("--redis-nodes must be 0 (one redis-server) or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A TERM unwinds like Ctrl-C: every context manager stops the process it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return measure(args)
    except KeyboardInterrupt:
        say("interrupted: every process this run started is stopped")
        return 130


def measure(args: argparse.Namespace) -> int:
    plan, cpus = PLANS[args.scale], Cpus.plan()
    started, source = datetime.now(UTC), meta.source_version()
    folder = args.out or ROOT / "results" / f"cache-memory-{started:%Y-%m-%dT%H%M%SZ}"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    cache_dir = ROOT / ".bench-cache"
    cache_dir.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memory-", dir=cache_dir))
    say(f"cache memory at {plan.scale} -> {folder}; {cpus.describe()}")
    try:
        with RedisServer(work) as probe:
            machine = meta.machine(cpus, probe)
        seeded = seeded_database(plan.dataset, plan.celebrity_threshold, cache_dir, say)
        nodes = args.redis_nodes
        prints = [
            app_built(module, plan, seeded, work, folder, cpus, nodes) for module in designs.FANOUT_MODULES
        ]
        loader_redis_seconds = None
        if args.default_too:
            loaded, loader_redis_seconds = loader_built(
                "default", plan.timeline_length, work, folder, cpus, nodes
            )
            prints.append(loaded)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_csv(folder / "families.csv", family_rows(prints))
    write_csv(folder / "summary.csv", summary_rows(prints))
    write_meta(folder, args, plan, started, source, machine, prints, loader_redis_seconds)
    print(table(prints))
    say(f"done: {folder}")
    return 0
