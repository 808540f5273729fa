"""What every statement and both engines (timelines/sqlite.py, timelines/postgres.py) share:
SQL written once, the transaction a write's work gets, and who is asking.

SQL is written once, with `?` and `:name` parameters, where the dialects agree; where they
do not, the file that runs it shows both, side by side, as a `Dialects` pair.
"""

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

Result = TypeVar("Result")  # what a write's work returns, handed back to its caller
# One row as a driver returns it: its columns' types are the query's business.
Row = tuple[Any, ...]
# Who is asking: the fanout worker sets it for its task (and the tasks it starts).
ROLE: ContextVar[str] = ContextVar("sqlite_role", default="requests")


@dataclass(frozen=True, slots=True)
class Dialects:
    """One statement where SQLite and PostgreSQL need different SQL: both, side by side."""

    sqlite: str
    postgres: str


Sql = str | Dialects


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...


class Transaction(Protocol):
    """What a write's `work` gets: one connection inside BEGIN … COMMIT."""

    def execute(self, sql: Sql, parameters: Any = ()) -> Cursor: ...
    def executemany(self, sql: Sql, rows: list[Any]) -> None: ...


class SnapshotCursor(Protocol):
    async def fetchone(self) -> Row | None: ...
    async def fetchall(self) -> list[Row]: ...


class Snapshot(Protocol):
    """Several reads that see one state of the database."""

    async def execute(self, sql: Sql, parameters: Any = ()) -> SnapshotCursor: ...
