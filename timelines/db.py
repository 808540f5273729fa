"""Opening the source of truth the same way for all three apps: SQLite (the default,
`DATABASE_URL=sqlite:///timelines.db`) or PostgreSQL (`postgresql://user@host:port/db`,
timelines/postgres.py).

Both give the apps one interface. Reads are `await db.fetchall(sql, parameters)` on a
pooled connection. Writes are whole transactions, `await db.write(work)`: `work(tx)` runs
between BEGIN and COMMIT on a thread that owns a connection, one hop from the event loop,
and what it raises rolls the transaction back and reaches the caller (an HTTPException
answers the client). The transaction functions are plain functions of a `Transaction`, the
same for both engines.

SQL is written once, with `?` and `:name` parameters, where the dialects agree; where they
do not, the file that runs it shows both, side by side, as a `Dialects` pair.

SQLite: aiosqlite runs one statement at a time per connection (each connection is one
thread), so reads take a connection from a small pool instead of queueing behind one.
Writes go to one writer thread. Driving a transaction statement by statement from the loop
would hold SQLite's write lock across every turn of a busy loop; under load, writers then
queue for tens of milliseconds and the fanout worker starves. SQLite has one writer at a
time anyway; BEGIN IMMEDIATE takes the lock up front, so two processes never deadlock
upgrading a read lock, and busy_timeout makes the second one wait for it rather than fail.
"""

import asyncio
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite
import psycopg

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL: a 201 means the tweet survived a power cut, not just a process crash.
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
)
Result = TypeVar("Result")
log = logging.getLogger("uvicorn.error")
# Who is asking: the fanout worker sets it for its task (and the tasks it starts).
ROLE: ContextVar[str] = ContextVar("sqlite_role", default="requests")
# The database refused or lost a statement: busy, locked, down. Requests answer 503; the
# fanout worker retries.
UNAVAILABLE = (sqlite3.OperationalError, psycopg.OperationalError)
# A constraint said no (a username taken).
CONFLICT = (sqlite3.IntegrityError, psycopg.IntegrityError)


@dataclass(frozen=True, slots=True)
class Dialects:
    """One statement where SQLite and PostgreSQL need different SQL: both, side by side."""

    sqlite: str
    postgres: str


Sql = str | Dialects


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...


class Transaction(Protocol):
    """What a write's `work` gets: one connection inside BEGIN … COMMIT."""

    def execute(self, sql: Sql, parameters: Any = ()) -> Cursor: ...
    def executemany(self, sql: Sql, rows: list) -> None: ...


class Database(Protocol):
    dialect: str
    round_trips: Counter[str]  # reads and transactions by whom (ROLE): /stats shows them

    async def fetchall(self, sql: Sql, parameters: Any = ()) -> list[tuple]: ...
    async def fetchone(self, sql: Sql, parameters: Any = ()) -> tuple | None: ...
    async def write(self, work: Callable[[Transaction], Result]) -> Result: ...
    def snapshot(self) -> Any: ...  # async context: several reads that see one state
    async def problem(self) -> str | None: ...  # why it cannot answer now (/health), if so
    async def close(self) -> None: ...


async def open_database(database_url: str, connections: int = 4) -> Database:
    """The store DATABASE_URL names, schema applied; one clear line when it cannot be."""
    try:
        if database_url.startswith(("postgresql://", "postgres://")):
            from timelines.postgres import PostgresDatabase

            return await PostgresDatabase.open(database_url, connections)
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


def in_sqlite(sql: Sql) -> str:
    return sql.sqlite if isinstance(sql, Dialects) else sql


class SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def execute(self, sql: Sql, parameters: Any = ()) -> sqlite3.Cursor:
        return self._connection.execute(in_sqlite(sql), parameters)

    def executemany(self, sql: Sql, rows: list) -> None:
        self._connection.executemany(in_sqlite(sql), rows)


class SqliteSnapshot:
    def __init__(self, connection: aiosqlite.Connection):
        self._connection = connection

    async def execute(self, sql: Sql, parameters: Any = ()) -> aiosqlite.Cursor:
        return await self._connection.execute(in_sqlite(sql), parameters)


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, writer: sqlite3.Connection, readers: list[aiosqlite.Connection]):
        self._writer = writer
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = readers
        self.round_trips: Counter[str] = Counter()
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)

    @classmethod
    async def open(cls, path: str, readers: int = 4) -> "SqliteDatabase":
        writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            writer.execute(pragma)
        writer.executescript(SCHEMA.read_text())
        return cls(writer, [await _connect(path) for _ in range(readers)])

    async def close(self) -> None:
        for connection in self._readers:
            await connection.close()
        self._writer_thread.shutdown()
        self._writer.close()

    async def problem(self) -> str | None:
        return None  # a file next to the app: there whenever the app is

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SqliteSnapshot]:
        """Several reads that must see one consistent state of the database."""
        self.round_trips[ROLE.get()] += 1
        async with self.reading() as connection:
            await connection.execute("BEGIN")
            try:
                yield SqliteSnapshot(connection)
            finally:
                await connection.execute("COMMIT")

    async def write(self, work: Callable[[Transaction], Result]) -> Result:
        self.round_trips[ROLE.get()] += 1
        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._transact, work)

    def _transact(self, work: Callable[[Transaction], Result]) -> Result:
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            result = work(SqliteTransaction(self._writer))
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        return result

    async def fetchall(self, sql: Sql, parameters: Any = ()) -> list[tuple]:
        # One hop to the connection's thread instead of two (execute, then fetch).
        self.round_trips[ROLE.get()] += 1
        async with self.reading() as connection:
            return list(await connection.execute_fetchall(in_sqlite(sql), parameters))

    async def fetchone(self, sql: Sql, parameters: Any = ()) -> tuple | None:
        rows = await self.fetchall(sql, parameters)
        return rows[0] if rows else None


async def _connect(path: str) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        await connection.execute(pragma)
    return connection
