"""Opening the source of truth the same way for all three apps: SQLite (the default,
`DATABASE_URL=sqlite:///timelines.db`, timelines/sqlite.py) or PostgreSQL
(`postgresql://user@host:port/db`, timelines/postgres.py).

Both give the apps one interface, `Database`. Reads are `await db.fetchall(sql, parameters)`
on a pooled connection. Writes are whole transactions, `await db.write(work)`: `work(tx)`
runs between BEGIN and COMMIT on a thread that owns a connection, one hop from the event
loop, and what it raises rolls the transaction back and reaches the caller (an
HTTPException answers the client). The transaction functions are plain functions of a
`Transaction` (timelines/sql.py), the same for both engines.
"""

import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import psycopg

from timelines.postgres import PostgresDatabase
from timelines.sql import Result, Row, Snapshot, Sql, Transaction
from timelines.sqlite import SqliteDatabase

log = logging.getLogger("uvicorn.error")
# The database refused or lost a statement: busy, locked, down. Requests answer 503; the
# fanout worker retries.
UNAVAILABLE = (sqlite3.OperationalError, psycopg.OperationalError)
# A constraint said no (a username taken).
CONFLICT = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Database(Protocol):
    @property
    def dialect(self) -> str: ...
    @property
    def round_trips(self) -> Counter[str]: ...  # reads and transactions by whom (ROLE): /stats

    async def fetchall(self, sql: Sql, parameters: Any = ()) -> list[Row]: ...
    async def fetchone(self, sql: Sql, parameters: Any = ()) -> Row | None: ...
    async def write(self, work: Callable[[Transaction], Result]) -> Result: ...
    def snapshot(self) -> AbstractAsyncContextManager[Snapshot]: ...  # reads that see one state
    async def problem(self) -> str | None: ...  # why it cannot answer now (/health), if so
    async def close(self) -> None: ...


async def open_database(database_url: str, connections: int = 4, pool_timeout: float = 5.0) -> Database:
    """The store DATABASE_URL names, schema applied; one clear line when it cannot be.
    `pool_timeout`: how long a PostgreSQL read waits for a free connection."""
    try:
        if database_url.startswith(("postgresql://", "postgres://")):
            return await PostgresDatabase.open(database_url, connections, pool_timeout)
        return await SqliteDatabase.open(sqlite_path(database_url), connections)
    except SystemExit as reason:
        # uvicorn prints a traceback for anything a lifespan raises, SystemExit too; a wrong
        # or unreachable DATABASE_URL deserves one line, and the app cannot start without it.
        log.error("%s", reason)
        os._exit(3)


def sqlite_path(database_url: str) -> str:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise SystemExit(
            "DATABASE_URL must look like sqlite:///path/to/file.db or "
            f"postgresql://user@host:port/db, got {database_url!r}"
        )
    return database_url[len(prefix) :]
