"""Seeded state for the bench: one SQLite file per dataset, generated once and reused while
nothing that shaped it has changed; a fresh copy of it for every app run, and the fanout
caches loaded into an empty Redis database before each fanout app starts. With PostgreSQL
(issue 13) the seeded state is a database of the bench's private server, used as the
template of each run's fresh copy.

The seeded file is keyed by a hash of the dataset's parameters, the celebrity threshold
and the sources that write it (schema.sql, schema_postgres.sql, datagen/), so an edit to
any of them seeds again instead of measuring a stale file.
"""

import functools
import hashlib
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import astuple
from pathlib import Path

import psycopg

from datagen.caches import load_redis
from datagen.graph import Graph
from datagen.history import History
from datagen.load import load_sqlite
from datagen.load_postgres import is_postgres_url, load_postgres
from datagen.scales import Scale
from rig.postgres import PostgresServer
from timelines.designs import by_module

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "schema.sql", ROOT / "schema_postgres.sql", *sorted((ROOT / "datagen").glob("*.py")))
KEY_LENGTH = 12


@functools.lru_cache(maxsize=1)
def generated(dataset: Scale) -> tuple[Graph, History]:
    """Seconds of numpy at `default`: a run loads the same dataset's caches several times
    in a row (fanout, hybrid, each threshold), so the last one generated is kept."""
    return dataset.generate()


def seed_key(dataset: Scale, threshold: int) -> str:
    digest = hashlib.sha256(repr((astuple(dataset), threshold)).encode())
    for source in SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:KEY_LENGTH]


def seeded_database(dataset: Scale, threshold: int, cache_dir: Path, say) -> Path:
    """The seeded SQLite file for this dataset, generated now if no current one exists."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{dataset.name}-{seed_key(dataset, threshold)}.db"
    if path.exists():
        say(f"seeded {dataset.name}: reusing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return path
    for stale in cache_dir.glob(f"{dataset.name}-{'?' * KEY_LENGTH}.db"):  # not other datasets' files
        for suffix in ("", "-wal", "-shm"):
            Path(f"{stale}{suffix}").unlink(missing_ok=True)
    say(f"seeding {dataset.name}: {dataset.users:,} users, ~{dataset.mean_tweets:g} tweets each (once)")
    graph, history = generated(dataset)
    partial = path.with_suffix(f".{os.getpid()}.partial")  # a bench seeding beside us has its own
    load_sqlite(partial, graph, history, threshold, force=True)
    partial.rename(path)  # only a complete file carries the final name
    return path


def fresh_copy(seeded: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(seeded, target)
    return target


def seeded_postgres(server: PostgresServer, dataset: Scale, threshold: int, say) -> str:
    """The name of the seeded database on `server`, loaded now if it has none yet. Never
    connected to after the load: a template must have no sessions when it is copied."""
    name = f"seed_{dataset.name}_{seed_key(dataset, threshold)}"
    if server.has_database(name):
        say(f"seeded {dataset.name}: reusing database {name}")
        return name
    size = f"{dataset.users:,} users, ~{dataset.mean_tweets:g} tweets each"
    say(f"seeding {dataset.name} into PostgreSQL: {size}")
    graph, history = generated(dataset)
    partial = f"{name}_partial"  # only a complete load carries the final name
    server.drop_database(partial)
    load_postgres(server.create_database(partial), graph, history, threshold, force=True)
    server.rename_database(partial, name)
    return name


def fresh_postgres_copy(server: PostgresServer, seeded: str, name: str) -> str:
    """A run's own copy of the seeded database, replacing any earlier one of that name."""
    server.drop_database(name)
    return server.create_database(name, template=seeded)


def set_celebrities(database: Path | str, threshold: int) -> None:
    """The celebrities table as the loader writes it for `threshold`, so the hybrid starts
    reconciled instead of owing a backfill for every account the new threshold moves.
    `database`: a SQLite file, or a postgresql:// URL."""
    if is_postgres_url(str(database)):
        with psycopg.connect(str(database)) as db:  # commits on leaving
            reset_celebrities(db, "%s", threshold)
        return
    with closing(sqlite3.connect(database)) as db, db:
        reset_celebrities(db, "?", threshold)


def reset_celebrities(db: sqlite3.Connection | psycopg.Connection, placeholder: str, threshold: int) -> None:
    """One statement for both drivers; only their placeholder differs."""
    db.execute("DELETE FROM celebrities")
    db.execute(
        f"INSERT INTO celebrities (user_id) SELECT id FROM users WHERE followers >= {placeholder}",
        (threshold,),
    )


def load_caches(
    redis_url: str, module: str, dataset: Scale, length: int, threshold: int, cluster: bool = False
) -> None:
    """What the fanout app's caches hold on a warm system: every timeline, loaded (with
    `cluster`, into the Redis Cluster that `redis_url` is a node of, keys tagged by shard)."""
    graph, history = generated(dataset)
    load_redis(redis_url, graph, history, by_module(module).name, length, threshold, cluster=cluster)


def seed_stores(
    database: Path,
    redis_url: str,
    module: str,
    graph: Graph,
    history: History,
    length: int,
    threshold: int,
    progress: bool,
) -> None:
    """What `python -m datagen` does, for any graph: the SQLite file, and the caches of a
    fanout app (the runs that seed a store of their own each time: faults, soak)."""
    load_sqlite(database, graph, history, threshold, progress=progress)
    if by_module(module).fans_out:
        load_redis(redis_url, graph, history, by_module(module).name, length, threshold, progress=progress)
