"""Who is out there: every user the run may pick, with the two counts the samples report
(followers of an author, followees of a reader), as numpy arrays.

Three sources, in order of preference:
  from_database  --database PATH: the app's SQLite file, opened read-only, one query; or
                 --database postgresql://…: the app's PostgreSQL database, likewise.
  discover       a seeded app reached over HTTP only: GET /users/1 answers 200, the highest
                 id is found by galloping and bisecting over GET /users/{id} (ids are 1..n,
                 as SQLite assigns them and the contract never deletes a user), then the
                 profiles of up to --discover-limit of them are read.
  _bootstrap.py  an empty app (GET /users/1 is 404): a small graph is created first.
"""

import itertools
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.request import pathname2url

import numpy as np
import psycopg

from datagen.load_postgres import is_postgres_url, redacted
from loadtest._api import Api, ApiError

log = logging.getLogger(__name__)


@dataclass
class Population:
    ids: np.ndarray  # int64 user ids
    followers: np.ndarray  # int64, the same order
    following: np.ndarray  # int64, the same order
    source: str

    def __len__(self) -> int:
        return len(self.ids)

    def to_message(self) -> dict:
        return {
            "ids": self.ids.tolist(),
            "followers": self.followers.tolist(),
            "following": self.following.tolist(),
            "source": self.source,
        }

    @classmethod
    def from_message(cls, data: dict) -> "Population":
        return cls(
            *(np.asarray(data[key], dtype=np.int64) for key in ("ids", "followers", "following")),
            source=data["source"],
        )

    @classmethod
    def from_rows(cls, rows, source: str) -> "Population":
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        if not len(table):
            raise ValueError(f"{source}: no users")
        return cls(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), source)

    def describe(self) -> str:
        return (
            f"{len(self)} users from {self.source}; followers mean {self.followers.mean():.1f} "
            f"max {self.followers.max()}, followees mean {self.following.mean():.1f} "
            f"max {self.following.max()}"
        )


# What reading --database may raise, beside OSError and ValueError.
DATABASE_ERRORS = (sqlite3.Error, psycopg.Error)
COUNT = "SELECT count(*) FROM users"
USERS = "SELECT id, followers, following FROM users ORDER BY id"


def check_database(location: str) -> None:
    """What the master can tell before its workers read --database: a SQLite file exists.
    A PostgreSQL URL is only known good once a worker has connected."""
    if not is_postgres_url(location) and not Path(location).is_file():
        raise FileNotFoundError(f"--database {location}: no such file")


def from_database(location: str) -> Population:
    if is_postgres_url(location):
        return Population.from_rows(from_postgres(location), f"database {redacted(location)}")
    check_database(location)
    uri = f"file:{pathname2url(str(Path(location).resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        connection.execute("BEGIN")  # one snapshot for the count and the rows
        flat = users_array(connection.execute(COUNT).fetchone()[0], connection.execute(USERS))
    return Population.from_rows(flat, f"database {location}")


def from_postgres(url: str) -> np.ndarray:
    with psycopg.connect(url) as connection:
        # One snapshot for the count and the rows, as with SQLite's BEGIN.
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        with connection.transaction():
            (count,) = connection.execute(COUNT).fetchone()
            return users_array(count, connection.execute(USERS))


def users_array(count: int, rows) -> np.ndarray:
    # Straight into numpy: a seeded database may hold millions of users.
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=3 * count)


def app_is_empty(api: Api) -> bool:
    status, _ = api.call("GET", "/users/1")
    if status not in (200, 404):
        raise ApiError(f"GET {api.host}/users/1 answered {status}: is this a timelines app?")
    return status == 404


def discover(api: Api, limit: int, seed: int) -> Population:
    def exists(user_id: int) -> bool:
        status, _ = api.call("GET", f"/users/{user_id}")
        if status not in (200, 404):
            raise ApiError(f"GET /users/{user_id} answered {status}")
        return status == 200

    if not exists(1):
        raise ApiError(f"{api.host} has no users")
    low, high = 1, 2  # exists(low), and high is the next guess
    while exists(high):
        if high > 2**40:
            raise ApiError(f"{api.host} answers GET /users/{{id}} for every id tried: not a timelines app?")
        low, high = high, high * 2
    while high - low > 1:  # exists(low), not exists(high)
        middle = (low + high) // 2
        low, high = (middle, high) if exists(middle) else (low, middle)
    count = low
    if count <= limit:
        chosen = np.arange(1, count + 1)
        note = f"all {count} users of {api.host}"
    else:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(count, size=limit, replace=False)) + 1
        note = f"{limit} of the {count} users of {api.host} (a seeded sample; --database reads all)"
        log.warning("reading %s", note)

    def profile(user_id: int):
        status, body = api.call("GET", f"/users/{user_id}")
        return (body["id"], body["followers"], body["following"]) if status == 200 else None

    rows = [row for row in api.map(profile, chosen.tolist()) if row is not None]
    return Population.from_rows(rows, f"HTTP: {note}")
