"""Opening SQLite the same way for all three apps.

aiosqlite runs one statement at a time per connection (each connection is one thread), so
reads take a connection from a small pool instead of queueing behind one. Writes go through
a single connection per process inside BEGIN IMMEDIATE: SQLite has one writer at a time
anyway, and taking the lock up front means two processes never deadlock upgrading a read
lock. busy_timeout makes a second process wait for the lock rather than fail at once.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL: a 201 means the tweet survived a power cut, not just a process crash.
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
)


def sqlite_path(database_url: str) -> str:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise SystemExit(f"DATABASE_URL must look like sqlite:///path/to/file.db, got {database_url!r}")
    return database_url[len(prefix):]


class Database:
    def __init__(self, writer: aiosqlite.Connection, readers: list[aiosqlite.Connection]):
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self._readers = readers
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)

    @classmethod
    async def open(cls, database_url: str, readers: int = 4) -> "Database":
        path = sqlite_path(database_url)
        writer = await _connect(path)
        await writer.executescript(SCHEMA.read_text())
        return cls(writer, [await _connect(path) for _ in range(readers)])

    async def close(self) -> None:
        for connection in (self._writer, *self._readers):
            await connection.close()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """Several reads that must see one consistent state of the database."""
        async with self.reading() as connection:
            await connection.execute("BEGIN")
            try:
                yield connection
            finally:
                await connection.execute("COMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def fetchall(self, sql: str, parameters=()) -> list[sqlite3.Row]:
        # One hop to the connection's thread instead of two (execute, then fetch).
        async with self.reading() as connection:
            return list(await connection.execute_fetchall(sql, parameters))

    async def fetchone(self, sql: str, parameters=()):
        rows = await self.fetchall(sql, parameters)
        return rows[0] if rows else None


async def _connect(path: str) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        await connection.execute(pragma)
    return connection

