"""PostgreSQL as the source of truth (`DATABASE_URL=postgresql://user@host:port/db`), with
psycopg 3: an asyncio pool for reads, and a pool of connections on threads for the write
transactions, so the same transaction functions (timelines/users.py, the approach files)
run on both engines.

Unlike SQLite, PostgreSQL runs writes side by side. Two of them can then deadlock (a follow
and the reverse follow update the same two counters in opposite order) or fail to
serialise; PostgreSQL aborts one, and it is run again. Ids of tweets still grow in commit
order: see insert_tweet's lock (timelines/users.py) and schema_postgres.sql.
"""

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from timelines.sql import ROLE, Dialects, Result, Row, Sql

SCHEMA = Path(__file__).resolve().parent.parent / "schema_postgres.sql"
SCHEMA_LOCK = "SELECT pg_advisory_lock(20130001)"  # two workers start at once
SCHEMA_UNLOCK = "SELECT pg_advisory_unlock(20130001)"
# CREATE INDEX IF NOT EXISTS takes a SHARE lock on its table even when the index exists, so
# a second worker applying the schema beside a running one queued behind its writes and
# deadlocked with them. The script runs only when one of its tables or indexes is missing.
SCHEMA_IS_COMPLETE = """
    SELECT bool_and(to_regclass(name) IS NOT NULL) FROM unnest(%s::text[]) AS name"""
CONNECT_SECONDS = 5.0
RETRIES = 8  # a write aborted by a deadlock or a serialisation failure, run again
# SQLSTATE class 40, "transaction rollback". Not an isinstance test: psycopg derives
# DeadlockDetected and SerializationFailure from OperationalError, not TransactionRollback.
ABORTED_TO_BE_RUN_AGAIN = "40"
NAMED = re.compile(r"(?<!:):([A-Za-z_]\w*)")  # :name, not the ::type of a cast
log = logging.getLogger("uvicorn.error")


@cache
def in_postgres(sql: Sql) -> str:
    """The statement in psycopg's parameter style: `?` becomes %s, `:name` %(name)s."""
    text = sql.postgres if isinstance(sql, Dialects) else sql
    return NAMED.sub(r"%(\1)s", text.replace("%", "%%").replace("?", "%s"))


class PostgresTransaction:
    def __init__(self, connection: psycopg.Connection):
        self._connection = connection

    def execute(self, sql: Sql, parameters: Any = ()) -> psycopg.Cursor:
        return self._connection.execute(in_postgres(sql), parameters)

    def executemany(self, sql: Sql, rows: list[Any]) -> None:
        self._connection.cursor().executemany(in_postgres(sql), rows)


class PostgresSnapshot:
    def __init__(self, connection: psycopg.AsyncConnection):
        self._connection = connection

    async def execute(self, sql: Sql, parameters: Any = ()) -> psycopg.AsyncCursor:
        return await self._connection.execute(in_postgres(sql), parameters)


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, url: str, reads: AsyncConnectionPool, writes: ConnectionPool, writers: int):
        self.url = url
        self._reads = reads
        self._writes = writes
        self._writer_threads = ThreadPoolExecutor(writers, thread_name_prefix="postgres-writer")
        self.round_trips: Counter[str] = Counter()

    @classmethod
    async def open(cls, url: str, connections: int = 4, pool_timeout: float = 5.0) -> "PostgresDatabase":
        await apply_schema(url)
        # A read that waits `pool_timeout` for a connection raises PoolTimeout: a 503 that
        # names the pool (timelines/http.py). Writes never wait: a thread each, a connection each.
        reads = AsyncConnectionPool(
            url,
            min_size=connections,
            max_size=connections,
            open=False,
            kwargs={"autocommit": True},
            timeout=pool_timeout,
        )
        writes = ConnectionPool(
            url, min_size=connections, max_size=connections, open=False, timeout=pool_timeout
        )
        try:
            await reads.open(wait=True, timeout=CONNECT_SECONDS)
            await asyncio.to_thread(writes.open, wait=True, timeout=CONNECT_SECONDS)
        except PoolTimeout as error:
            await reads.close()
            await asyncio.to_thread(writes.close)
            raise unreachable(url, error) from None
        return cls(url, reads, writes, connections)

    async def close(self) -> None:
        await self._reads.close()
        self._writer_threads.shutdown()
        await asyncio.to_thread(self._writes.close)

    async def problem(self) -> str | None:
        try:
            await self.fetchone("SELECT 1")
        except psycopg.OperationalError as error:
            return f"PostgreSQL unreachable at DATABASE_URL: {error}"
        return None

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PostgresSnapshot]:
        """Several reads that must see one consistent state of the database."""
        self.round_trips[ROLE.get()] += 1
        async with self._read_connection() as connection:
            await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PostgresSnapshot(connection)
            finally:
                await connection.execute("COMMIT")

    @asynccontextmanager
    async def _read_connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection. None within DATABASE_POOL_TIMEOUT is PoolTimeout (busy), or
        PostgreSQL not answering if the pool failed to connect meanwhile (reconnecting)."""
        failed_connects = self._reads.get_stats().get("connections_errors", 0)
        try:
            connection = await self._reads.getconn()
        except PoolTimeout as error:
            if self._reads.get_stats().get("connections_errors", 0) > failed_connects:
                raise psycopg.OperationalError(f"PostgreSQL does not answer: {error}") from error
            raise
        try:
            yield connection
        finally:
            await self._reads.putconn(connection)

    async def write(self, work: Callable[[PostgresTransaction], Result]) -> Result:
        self.round_trips[ROLE.get()] += 1
        return await asyncio.get_running_loop().run_in_executor(self._writer_threads, self._transact, work)

    def _transact(self, work: Callable[[PostgresTransaction], Result]) -> Result:
        for attempt in range(RETRIES):
            try:
                with self._writes.connection() as connection, connection.transaction():
                    return work(PostgresTransaction(connection))
            except PoolTimeout as error:  # each writer thread has a connection: one is missing
                raise psycopg.OperationalError(f"PostgreSQL does not answer: {error}") from error
            except psycopg.OperationalError as error:
                if not (error.sqlstate or "").startswith(ABORTED_TO_BE_RUN_AGAIN) or attempt == RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def fetchall(self, sql: Sql, parameters: Any = ()) -> list[Row]:
        self.round_trips[ROLE.get()] += 1
        async with self._read_connection() as connection:
            cursor = await connection.execute(in_postgres(sql), parameters)
            return await cursor.fetchall()

    async def fetchone(self, sql: Sql, parameters: Any = ()) -> Row | None:
        rows = await self.fetchall(sql, parameters)
        return rows[0] if rows else None


async def apply_schema(url: str) -> None:
    try:
        connection = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=int(CONNECT_SECONDS)
        )
    except psycopg.Error as error:
        raise unreachable(url, error) from None
    async with connection:
        await connection.execute(SCHEMA_LOCK)
        try:
            script = SCHEMA.read_text()
            cursor = await connection.execute(SCHEMA_IS_COMPLETE, (schema_objects(script),))
            [(complete,)] = await cursor.fetchall()
            if not complete:
                await connection.execute(script)
        finally:
            await connection.execute(SCHEMA_UNLOCK)


def schema_objects(script: str) -> list[str]:
    """The tables and indexes the script creates."""
    return re.findall(r"(?:TABLE|INDEX) IF NOT EXISTS (\w+)", script)


def unreachable(url: str, error: Exception) -> SystemExit:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return SystemExit(
        f"PostgreSQL unreachable at DATABASE_URL={url} ({detail}): start it or set DATABASE_URL"
    )
