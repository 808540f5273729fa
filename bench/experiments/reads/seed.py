"""The seeded stores of `python -m bench reads`, and who reads them.

One generated scale, loaded once into SQLite with the chosen CELEBRITY_THRESHOLD and
copied for each design (join-on-read, fanout, hybrid), plus the fanout and the hybrid caches
loaded by datagen's loader into their own Redis databases. The threshold is chosen so that
an average user follows a few celebrities, and the readers are users following between 1
and 5 of them whose home timeline holds a full page: the same readers for every design.
"""

import random
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.seeding import fresh_copy
from datagen.caches import load_redis
from datagen.load import load_sqlite
from datagen.scales import SCALES

TIMELINE_LENGTH = 800
CACHED = {"fanout": 1, "hybrid": 2}  # design -> its Redis database number

# Readers by how many celebrities they follow and how many tweets their followees wrote;
# those with at least a page, and a celebrity count in range, are eligible.
READERS = """
    SELECT follows.follower_id, count(celebrities.user_id) AS followed
    FROM follows
    JOIN users ON users.id = follows.followee_id
    LEFT JOIN celebrities ON celebrities.user_id = follows.followee_id
    GROUP BY follows.follower_id
    HAVING followed BETWEEN :fewest AND :most AND sum(users.tweets) >= :page
    ORDER BY follows.follower_id"""
CELEBRITIES = "SELECT count(*) FROM celebrities"


@dataclass(frozen=True)
class Seeded:
    databases: dict[str, Path]  # design -> its own SQLite file (the ceiling reads the join's)
    threshold: int
    celebrities: int
    eligible_readers: int
    readers: list[int]
    celebrities_followed: dict[int, int]  # reader -> how many celebrities it follows

    @property
    def mean_celebrities_followed(self) -> float:
        return sum(self.celebrities_followed[r] for r in self.readers) / len(self.readers)


def threshold_for(followers: np.ndarray, users: int, mean_followed: float) -> int:
    """The follower count that makes the most-followed accounts celebrities until a user
    follows `mean_followed` of them on average (each celebrity adds followers/users)."""
    ranked = np.sort(followers)[::-1]
    reach = np.cumsum(ranked) / users
    k = min(int(np.searchsorted(reach, mean_followed)), len(ranked) - 1)
    return max(int(ranked[k]), 1)


def seed(
    scale: str, work: Path, redis_urls: dict[str, str], threshold: int | None, mean_followed: float, say
) -> tuple[int, dict[str, Path]]:
    """Generates the scale, loads it, and returns the threshold and each design's file."""
    graph, history = SCALES[scale].generate()
    if threshold is None:
        threshold = threshold_for(graph.followers()[1:], graph.users, mean_followed)
    say(
        f"seeding {scale}: {graph.users:,} users, {graph.edges:,} follows, {history.tweets:,} tweets; "
        f"CELEBRITY_THRESHOLD {threshold:,}"
    )
    seeded = work / "seeded.db"
    load_sqlite(seeded, graph, history, threshold, progress=False)
    databases = {design: fresh_copy(seeded, work / f"{design}.db") for design in ("join", *CACHED)}
    for design, url in redis_urls.items():
        say(f"loading the {design} caches into {url}")
        load_redis(url, graph, history, design, TIMELINE_LENGTH, threshold, progress=False)
    return threshold, databases


def choose_readers(
    database: Path, count: int, fewest: int, most: int, page: int, seed: int
) -> tuple[dict[int, int], list[int]]:
    """Every eligible reader with its celebrity count, and `count` of them drawn with `seed`."""
    with closing(sqlite3.connect(database)) as db:
        eligible = dict(db.execute(READERS, {"fewest": fewest, "most": most, "page": page}).fetchall())
    if not eligible:
        raise SystemExit(
            f"no user follows {fewest}-{most} celebrities with a full page of {page}: "
            "pass another --threshold or --celebrities-followed"
        )
    chosen = random.Random(seed).sample(sorted(eligible), min(count, len(eligible)))
    return eligible, chosen


def count_celebrities(database: Path) -> int:
    with closing(sqlite3.connect(database)) as db:
        return db.execute(CELEBRITIES).fetchone()[0]


def prepare(
    scale: str,
    work: Path,
    redis_urls: dict[str, str],
    threshold: int | None,
    mean_followed: float,
    readers: int,
    page: int,
    seed_: int,
    say,
) -> Seeded:
    threshold, databases = seed(scale, work, redis_urls, threshold, mean_followed, say)
    eligible, chosen = choose_readers(databases["join"], readers, 1, 5, page, seed_)
    return Seeded(
        databases,
        threshold,
        count_celebrities(databases["join"]),
        len(eligible),
        chosen,
        {reader: eligible[reader] for reader in chosen},
    )
