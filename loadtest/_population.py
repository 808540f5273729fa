"""Who is out there: every user the run may pick, with the two counts the samples report
(followers of an author, followees of a reader), as numpy arrays.

Three sources, in order of preference:
  from_database  --database PATH: the app's SQLite file, opened read-only, one query.
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


def from_database(path: str) -> Population:
    if not Path(path).is_file():
        raise FileNotFoundError(f"--database {path}: no such file")
    uri = f"file:{pathname2url(str(Path(path).resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        connection.execute("BEGIN")  # one snapshot for the count and the rows
        (count,) = connection.execute("SELECT count(*) FROM users").fetchone()
        cursor = connection.execute("SELECT id, followers, following FROM users ORDER BY id")
        # Straight into numpy: a seeded database may hold millions of users.
        flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.int64, count=3 * count)
    return Population.from_rows(flat, f"database {path}")


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
