"""Opening SQLite the same way for all three apps.

aiosqlite runs one statement at a time per connection (each connection is one thread), so
reads take a connection from a small pool instead of queueing behind one.

Writes are whole transactions handed to one writer thread: `await db.write(work)` runs
`work(connection)` between BEGIN IMMEDIATE and COMMIT in that thread, one hop from the
event loop. Driving a transaction statement by statement from the loop instead would hold
SQLite's write lock across every turn of a busy loop; under load, writers then queue for
tens of milliseconds and the fanout worker starves. SQLite has one writer at a time
anyway; BEGIN IMMEDIATE takes the lock up front, so two processes never deadlock upgrading
a read lock, and busy_timeout makes the second one wait for it rather than fail at once.
"""

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

import aiosqlite

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL: a 201 means the tweet survived a power cut, not just a process crash.
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
)
Result = TypeVar("Result")
# Who is asking: the fanout worker sets it for its task (and the tasks it starts).
ROLE: ContextVar[str] = ContextVar("sqlite_role", default="requests")


def sqlite_path(database_url: str) -> str:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise SystemExit(f"DATABASE_URL must look like sqlite:///path/to/file.db, got {database_url!r}")
    return database_url[len(prefix) :]


class Database:
    def __init__(self, writer: sqlite3.Connection, readers: list[aiosqlite.Connection]):
        self._writer = writer
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = readers
        # Reads and transactions handed to SQLite by this process, by whom (ROLE): /stats
        # shows them, so that one can tell a read the cache answered alone.
        self.round_trips: Counter[str] = Counter()
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)

    @classmethod
    async def open(cls, database_url: str, readers: int = 4) -> "Database":
        path = sqlite_path(database_url)
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
        self.round_trips[ROLE.get()] += 1
        async with self.reading() as connection:
            await connection.execute("BEGIN")
            try:
                yield connection
            finally:
                await connection.execute("COMMIT")

    async def write(self, work: Callable[[sqlite3.Connection], Result]) -> Result:
        """`work(connection)` in one transaction on the writer thread; what it raises rolls
        the transaction back and reaches the caller (an HTTPException answers the client)."""
        self.round_trips[ROLE.get()] += 1
        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._transact, work)

    def _transact(self, work: Callable[[sqlite3.Connection], Result]) -> Result:
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._writer)
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        return result

    async def fetchall(self, sql: str, parameters=()) -> list[sqlite3.Row]:
        # One hop to the connection's thread instead of two (execute, then fetch).
        self.round_trips[ROLE.get()] += 1
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
