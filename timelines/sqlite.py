"""SQLite as the source of truth (`DATABASE_URL=sqlite:///timelines.db`, the default).

aiosqlite runs one statement at a time per connection (each connection is one thread), so
reads take a connection from a small pool instead of queueing behind one. Writes go to one
writer thread. Driving a transaction statement by statement from the loop would hold
SQLite's write lock across every turn of a busy loop; under load, writers then queue for
tens of milliseconds and the fanout worker starves. SQLite has one writer at a time anyway;
BEGIN IMMEDIATE takes the lock up front, so two processes never deadlock upgrading a read
lock, and busy_timeout makes the second one wait for it rather than fail.
"""

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite

from timelines.sql import ROLE, Dialects, Result, Row, SnapshotCursor, Sql

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL: a 201 means the tweet survived a power cut, not just a process crash.
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
)


def in_sqlite(sql: Sql) -> str:
    return sql.sqlite if isinstance(sql, Dialects) else sql


class SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection):
        self._connection = connection

    def execute(self, sql: Sql, parameters: Any = ()) -> sqlite3.Cursor:
        return self._connection.execute(in_sqlite(sql), parameters)

    def executemany(self, sql: Sql, rows: list[Any]) -> None:
        self._connection.executemany(in_sqlite(sql), rows)


class SqliteSnapshot:
    def __init__(self, connection: aiosqlite.Connection):
        self._connection = connection

    async def execute(self, sql: Sql, parameters: Any = ()) -> SnapshotCursor:
        return cast(SnapshotCursor, await self._connection.execute(in_sqlite(sql), parameters))


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

    async def write(self, work: Callable[[SqliteTransaction], Result]) -> Result:
        self.round_trips[ROLE.get()] += 1
        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._transact, work)

    def _transact(self, work: Callable[[SqliteTransaction], Result]) -> Result:
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            result = work(SqliteTransaction(self._writer))
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        return result

    async def fetchall(self, sql: Sql, parameters: Any = ()) -> list[Row]:
        # One hop to the connection's thread instead of two (execute, then fetch).
        self.round_trips[ROLE.get()] += 1
        async with self.reading() as connection:
            return cast(list[Row], list(await connection.execute_fetchall(in_sqlite(sql), parameters)))

    async def fetchone(self, sql: Sql, parameters: Any = ()) -> Row | None:
        rows = await self.fetchall(sql, parameters)
        return rows[0] if rows else None


async def _connect(path: str) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        await connection.execute(pragma)
    return connection
