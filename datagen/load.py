"""Bulk loading into SQLite: the rows the HTTP API would have written for a generated
graph and history, in seconds instead of hours. (PostgreSQL: datagen/load_postgres.py,
from the same row generators; Redis: datagen/caches.py.)

One new file, the apps' own schema.sql, users named user{id} with their counters (followers,
following, tweets), follows, tweets, and the celebrities table (users with followers >=
the threshold, as the hybrid's start-up reconciliation would make it); the outbox and the
fanout log stay empty, as after a drained backlog. The load runs without a journal and
without fsync (a crash mid-load leaves a file to throw away, never one to trust), inserts
in primary-key order into tables without their secondary indexes, builds those once at the
end, and leaves the file in WAL mode, as the apps expect. No ANALYZE: the apps never run
it, so the loaded file gets the same query plans as one the API built.
"""

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datagen.graph import Graph
from datagen.history import History, user_created_at
from timelines.sqlite import SCHEMA

ROWS_PER_CHUNK = 100_000  # rows per executemany: big, but the progress bar still moves
LOAD_PRAGMAS = (
    "PRAGMA journal_mode = OFF",
    "PRAGMA synchronous = OFF",
    "PRAGMA cache_size = -262144",
    "PRAGMA temp_store = MEMORY",
)


class Refused(Exception):
    """The target already holds data the loader will not overwrite unless forced."""


def load_sqlite(
    path: str | Path,
    graph: Graph,
    history: History,
    threshold: int,
    force: bool = False,
    progress: bool = True,
) -> None:
    path = Path(path)
    make_room(path, force)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in LOAD_PRAGMAS:
            connection.execute(pragma)
        connection.executescript(SCHEMA.read_text())
        indexes = drop_secondary_indexes(connection)
        connection.execute("BEGIN")
        insert_users(connection, graph, history)
        insert_follows(connection, graph, progress)
        insert_tweets(connection, history, progress)
        connection.executemany(
            "INSERT INTO celebrities (user_id) VALUES (?)",
            ((u,) for u in celebrities(graph, threshold).tolist()),
        )
        connection.execute("COMMIT")
        for sql in tqdm(indexes, "indexes", disable=not progress, file=sys.stderr):
            connection.execute(sql)
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def refuse_if_exists(path: str | Path, force: bool) -> None:
    if Path(path).exists() and not force:
        raise Refused(f"{path} already exists; pass --force to replace it")


def make_room(path: Path, force: bool) -> None:
    refuse_if_exists(path, force)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        file.unlink(missing_ok=True)


def drop_secondary_indexes(connection: sqlite3.Connection) -> list[str]:
    """Drops the schema's explicit indexes and returns the SQL that builds them again:
    building an index once from a full table beats updating it row by row."""
    rows = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in rows:
        connection.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


# The columns each row generator below yields, in order: both loaders write them so.
USER_COLUMNS = ("id", "username", "created_at", "followers", "following", "tweets")
FOLLOW_COLUMNS = ("follower_id", "followee_id")
TWEET_COLUMNS = ("id", "user_id", "text", "created_at")


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def insert_users(connection: sqlite3.Connection, graph: Graph, history: History) -> None:
    connection.executemany(insert_sql("users", USER_COLUMNS), user_rows(graph, history))


def user_rows(graph: Graph, history: History) -> Iterator[tuple]:
    """Every user's row, in USER_COLUMNS' order: named user{id}, with the counters the API
    would have kept."""
    ids = range(1, graph.users + 1)
    return zip(
        ids,
        (f"user{u}" for u in ids),
        user_created_at(graph.users),
        graph.followers()[1:].tolist(),
        graph.following()[1:].tolist(),
        history.per_author(graph.users)[1:].tolist(),
        strict=False,
    )


def chunks(total: int, label: str, progress: bool) -> Iterator[tuple[int, int]]:
    """(start, stop) slices of ROWS_PER_CHUNK rows, with a progress bar on stderr."""
    with tqdm(
        total=total, desc=label, unit="row", unit_scale=True, disable=not progress, file=sys.stderr
    ) as bar:
        for start in range(0, total, ROWS_PER_CHUNK):
            stop = min(start + ROWS_PER_CHUNK, total)
            yield start, stop
            bar.update(stop - start)


def insert_follows(connection: sqlite3.Connection, graph: Graph, progress: bool) -> None:
    for rows in follow_rows(graph, progress, "follows"):
        connection.executemany(insert_sql("follows", FOLLOW_COLUMNS), rows)


def follow_rows(graph: Graph, progress: bool, label: str) -> Iterator[Iterator[tuple]]:
    """Chunks of follow rows (follower_id, followee_id), in the graph's order."""
    for start, stop in chunks(graph.edges, label, progress):
        chunk = slice(start, stop)
        yield zip(graph.follower[chunk].tolist(), graph.followee[chunk].tolist(), strict=False)


def insert_tweets(connection: sqlite3.Connection, history: History, progress: bool) -> None:
    for rows in tweet_rows(history, progress, "tweets"):
        connection.executemany(insert_sql("tweets", TWEET_COLUMNS), rows)


def tweet_rows(
    history: History, progress: bool, label: str, keep: np.ndarray | None = None
) -> Iterator[Iterator[tuple]]:
    """Chunks of tweet rows (id, user_id, text, created_at), only those whose author is in
    `keep` (a mask by user id) when given."""
    for start, stop in chunks(history.tweets, label, progress):
        authors = history.author[start:stop]
        rows = zip(
            range(start + 1, stop + 1),
            authors.tolist(),
            history.texts(start, stop),
            history.created_at(start, stop),
            strict=False,
        )
        if keep is not None:
            rows = (row for row, kept in zip(rows, keep[authors].tolist(), strict=False) if kept)
        yield rows


def celebrities(graph: Graph, threshold: int) -> np.ndarray:
    """User ids with at least `threshold` followers: the hybrid's pulled accounts."""
    return np.flatnonzero(graph.followers() >= threshold)
