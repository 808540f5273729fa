"""Bulk loading into PostgreSQL (DATABASE_URL=postgresql://…): the same rows as
datagen/load.py writes into SQLite, from the same row generators, with COPY.

The apps' schema_postgres.sql, then users, follows, tweets and celebrities with the ids the
generator chose, all in one transaction, so a load cut short leaves the database as it was.
Foreign keys and secondary indexes are dropped before the COPYs and made again after: one
index build over a full table, and one pass checking every reference, beat maintaining
them row by row. The identity sequences are then moved past the loaded ids, or the app's
first INSERT would collide with row 1.
"""

import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import psycopg
from psycopg import sql
from tqdm import tqdm

from datagen.graph import Graph
from datagen.history import History
from datagen.load import (
    FOLLOW_COLUMNS,
    TWEET_COLUMNS,
    USER_COLUMNS,
    Refused,
    celebrities,
    follow_rows,
    tweet_rows,
    user_rows,
)
from timelines.postgres import SCHEMA  # the apps' own schema, as datagen/load.py uses theirs

# A sort of the largest table in memory rather than in temporary files.
LOAD_SETTINGS = {"maintenance_work_mem": "512MB"}


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.startswith(("postgresql://", "postgres://"))


def schema_tables() -> list[str]:
    """The tables schema_postgres.sql creates, in its order: what the loader owns (and
    drops, when forced) in a database."""
    return re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA.read_text())


def refuse_if_populated(url: str, force: bool) -> None:
    """Refused when any of the schema's tables exists already, unless forced: a database
    holding an app's tables is someone's state, as an existing SQLite file is."""
    if force:
        return
    with psycopg.connect(url) as connection:
        present = [table for table in schema_tables() if exists(connection, table)]
    if present:
        tables = ", ".join(present)
        raise Refused(f"{redacted(url)} already has the tables {tables}; pass --force to replace them")


def exists(connection: psycopg.Connection, table: str) -> bool:
    return connection.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def redacted(url: str) -> str:
    """The URL without a password, for messages."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def load_postgres(
    url: str,
    graph: Graph,
    history: History,
    threshold: int,
    force: bool = False,
    progress: bool = True,
) -> None:
    refuse_if_populated(url, force)
    with psycopg.connect(url) as connection, connection.transaction():
        for name, value in LOAD_SETTINGS.items():
            connection.execute("SELECT set_config(%s, %s, true)", (name, value))
        drop_tables(connection)
        connection.execute(SCHEMA.read_text())
        rebuild = drop_foreign_keys(connection) + drop_secondary_indexes(connection)
        copy_all(connection, graph, history, threshold, progress)
        for statement in tqdm(rebuild, "indexes", disable=not progress, file=sys.stderr):
            connection.execute(statement)
        move_sequences_past_loaded_ids(connection)
    # Unlike the SQLite loader, which leaves statistics out so that the loaded file plans as
    # one the API built: PostgreSQL's planner without statistics guesses a table's size from
    # its pages and may scan where the apps need the index plans, and without the visibility
    # map that VACUUM sets, the join's ids cannot come from tweets_by_author alone (2.4×
    # the time per read at `small`). Autovacuum does both in time on a live database; the
    # bench's first minute should not depend on when. VACUUM refuses a transaction block.
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def copy_sqlite_file(path: Path, url: str) -> None:
    """The rows of a SQLite file in schema.sql's form, copied into an empty PostgreSQL
    database (the celebrity sweep builds its synthetic graph in SQLite for either store).
    The two schemas name the same tables and columns."""
    with (
        closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as source,
        psycopg.connect(url) as connection,
        connection.transaction(),
    ):
        connection.execute(SCHEMA.read_text())
        for table in schema_tables():  # in the schema's order: a follow after its users
            rows = source.execute(f'SELECT * FROM "{table}"')  # our own schema's names
            copy_rows(connection, table, tuple(column for column, *_ in rows.description), [rows])
        move_sequences_past_loaded_ids(connection)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")  # as load_postgres, and for the same reasons


def copy_all(
    connection: psycopg.Connection, graph: Graph, history: History, threshold: int, progress: bool
) -> None:
    copy_rows(connection, "users", USER_COLUMNS, [user_rows(graph, history)])
    copy_rows(connection, "follows", FOLLOW_COLUMNS, follow_rows(graph, progress, "follows"))
    copy_rows(connection, "tweets", TWEET_COLUMNS, tweet_rows(history, progress, "tweets"))
    pulled = ((user,) for user in celebrities(graph, threshold).tolist())
    copy_rows(connection, "celebrities", ("user_id",), [pulled])


def drop_tables(connection: psycopg.Connection) -> None:
    """The schema's tables, gone (reached only when forced or when none exists)."""
    for table in reversed(schema_tables()):
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))


def drop_foreign_keys(connection: psycopg.Connection) -> list[sql.Composed]:
    """Drops the schema's foreign keys and returns the statements that add them again."""
    rows = connection.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
    ).fetchall()
    statements = []
    for table, name, definition in rows:
        connection.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
        )
        statements.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
    return statements


def drop_secondary_indexes(connection: psycopg.Connection) -> list[sql.Composed]:
    """Drops the indexes no constraint owns (the primary keys stay: COPY writes in their
    order) and returns the statements that build them again."""
    rows = connection.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " JOIN pg_class ON pg_class.oid = indexrelid"
        " WHERE pg_class.relnamespace = 'public'::regnamespace"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)"
    ).fetchall()
    for name, _ in rows:
        connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [sql.SQL(definition) for _, definition in rows]


def copy_rows(connection: psycopg.Connection, table: str, columns: tuple[str, ...], chunks) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for rows in chunks:
            for row in rows:
                copy.write_row(row)


def move_sequences_past_loaded_ids(connection: psycopg.Connection) -> None:
    """Each identity column's sequence set to its table's largest id, so the next INSERT
    takes the id after it. An empty table keeps its sequence at 1 (setval(NULL) is a no-op)."""
    identities = connection.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND is_identity = 'YES'"
    ).fetchall()
    for table, column in identities:
        connection.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), max({})) FROM {}").format(
                sql.Identifier(column), sql.Identifier(table)
            ),
            (table, column),
        )
