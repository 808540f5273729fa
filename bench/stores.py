"""Where `make bench` keeps the apps' state (STORE=sqlite or postgres, issue 13): the seeded
dataset, each app run's fresh copy of it, and a read-only connection through which the
runner reads what the app wrote (fanout_log, the newest tweet, the graph's facts).

  SqliteStore    a seeded file under --cache-dir, copied per app run into the run's scratch
                 folder; the copies go with that folder.
  PostgresStore  one private server per run (rig/postgres.py) on the server side's CPUs,
                 seeded by the same generator (COPY), each app run on a database copied
                 from the seeded one as a template, dropped once its app has stopped.

A location is what the app's DATABASE_URL names: a SQLite path, or a postgresql:// URL.
Statements are written once, in SQLite's `?` style; `sql()` gives the store's own.
"""

import sqlite3
import warnings
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg

from bench.seeding import fresh_copy, fresh_postgres_copy, seeded_database, seeded_postgres
from datagen.load_postgres import copy_sqlite_file
from datagen.scales import Scale
from rig.postgres import PostgresServer
from timelines.postgres import in_postgres

STORES = ("sqlite", "postgres")


@dataclass
class SqliteStore:
    work: Path
    cache_dir: Path
    say: Callable[[str], None] = print
    name: str = "sqlite"

    def seed(self, dataset: Scale, threshold: int) -> Path:
        return seeded_database(dataset, threshold, self.cache_dir, self.say)

    def copy(self, seeded: Path, tag: str) -> Path:
        return fresh_copy(seeded, self.work / f"{tag}.db")

    def adopt(self, built: Path, tag: str) -> Path:
        """A seeded location holding a SQLite file the bench built itself: that file."""
        return built

    def discard(self, location: Path) -> None:
        """Nothing: the copy lies in the run's scratch folder, removed with it."""

    def settings(self, location: Path) -> dict:
        return {}  # AppServer names the file in DATABASE_URL itself

    @contextmanager
    def reading(self, location: Path):
        with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as db:
            yield db

    def sql(self, statement: str) -> str:
        return statement

    def pid(self) -> int | None:
        return None  # SQLite runs inside the app: its CPU is the app's

    def describe(self) -> dict:
        return {}

    def __enter__(self) -> "SqliteStore":
        return self

    def __exit__(self, *_) -> None:
        pass


@dataclass
class PostgresStore:
    cpus: tuple[int, ...]
    say: Callable[[str], None] = print
    name: str = "postgres"
    server: PostgresServer = field(init=False)

    def __post_init__(self):
        self.server = PostgresServer(cpus=self.cpus)

    def seed(self, dataset: Scale, threshold: int) -> str:
        return self.server.url(seeded_postgres(self.server, dataset, threshold, self.say))

    def copy(self, seeded: str, tag: str) -> str:
        # Database names: the tags' dashes would need quoting everywhere they are written.
        return fresh_postgres_copy(self.server, database_name(seeded), tag.replace("-", "_"))

    def adopt(self, built: Path, tag: str) -> str:
        """A seeded location holding a SQLite file the bench built itself: a new database
        of its rows (COPY), never connected to again, so that it can serve as a template."""
        name = tag.replace("-", "_")
        self.server.drop_database(name)
        url = self.server.create_database(name)
        copy_sqlite_file(built, url)
        return url

    def discard(self, location: str) -> None:
        self.server.drop_database(database_name(location))

    def settings(self, location: str) -> dict:
        # AppServer.env puts settings after its own DATABASE_URL: this one wins.
        return {"database_url": location}

    @contextmanager
    def reading(self, location: str):
        # Autocommit: each query its own snapshot, no transaction held open against the app.
        with psycopg.connect(location, autocommit=True, options="-c default_transaction_read_only=on") as db:
            yield db

    def sql(self, statement: str) -> str:
        return in_postgres(statement)

    def pid(self) -> int | None:
        return self.server.postmaster_pid()

    def describe(self) -> dict:
        """The server's version and the settings a figure depends on, as the server reports them."""
        names = ("shared_buffers", "fsync", "synchronous_commit", "max_connections", "wal_level")
        with psycopg.connect(self.server.url("postgres"), autocommit=True) as db:
            shown = {
                name: db.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
                for name in ("server_version", *names)
            }
        return {"server_version": shown.pop("server_version"), "settings": shown}

    def __enter__(self) -> "PostgresStore":
        self.server.start()
        return self

    def __exit__(self, *_) -> None:
        self.server.stop()  # on Ctrl-C and errors too: the server and its folder go with the run


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def new_store(name: str, work: Path, cache_dir: Path, cpus: tuple[int, ...]) -> SqliteStore | PostgresStore:
    """The store `--store` names, not yet started: entering it (`with`) starts a server."""
    if name == "postgres":
        return PostgresStore(cpus)
    return SqliteStore(work, cache_dir)


def read_frame(db, statement: str, params: tuple) -> pd.DataFrame:
    """pandas reads a psycopg connection through the same DBAPI path as sqlite3's (so both
    stores give the same dtypes), warning only that it has not tested it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy", category=UserWarning)
        return pd.read_sql_query(statement, db, params=params)


def dataset_facts(store: SqliteStore | PostgresStore, database: Path | str, threshold: int) -> dict:
    """What the capacity model needs to carry this graph's costs to another: how many
    celebrities an average user follows here (each one a pull on the hybrid's reads)."""
    with store.reading(database) as db:
        users, followers = db.execute(store.sql("SELECT count(*), avg(followers) FROM users")).fetchone()
        (edges,) = db.execute(
            store.sql(
                """SELECT count(*) FROM follows WHERE followee_id IN
                                 (SELECT id FROM users WHERE followers >= ?)"""
            ),
            (threshold,),
        ).fetchone()
    return {
        "users": users,
        # PostgreSQL's avg is a numeric (a Decimal), which meta.json could not hold.
        "mean_followers": followers if followers is None else float(followers),
        "celebrity_threshold": threshold,
        "celebrities_followed_per_user": edges / users if users else 0.0,
    }
