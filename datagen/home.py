"""Every user's cached home timeline, computed with numpy instead of one SQL join per user:
what the fanout apps' regeneration would write (approach2.regenerate_and_answer), for all
users at once.

A user's cached timeline is the newest `length` ids among the tweets of the accounts the
user follows (the hybrid leaves out the pulled accounts, the celebrities). Gathering every
followee's tweets and sorting them per user would cost followees x history per user. The
generated authors are spread at random over time, though, so the newest `length` of a
union of S tweets start near id T - length * T / S: each user gets a cutoff somewhat below
that, and each follow edge contributes only the followee's tweets above it (one binary
search per edge). A user for whom that gathers fewer than `length` ids while older ones
exist is redone with no cutoff, so the result is exact for any history; the cutoff only
makes it fast (~1.5 x length ids per user instead of followees x history).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from datagen.graph import Graph
from datagen.history import History

BATCH_IDS = 8_000_000  # gathered ids per batch: ~200 MB of working arrays
# The cutoff leaves 1.5 x length ids expected above it: at 800 falling short of 800 is a
# 10-sigma event, so a redo is rare (yet harmless: it only costs time).
MARGIN = 1.5


@dataclass(frozen=True, eq=False)
class Timelines:
    """Users first_user, first_user + 1, ...: user first_user + i holds
    ids[offsets[i]:offsets[i + 1]], its newest `length` tweet ids (all, if fewer), newest first."""

    first_user: int
    offsets: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def newest(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def home_timelines(
    graph: Graph, history: History, length: int, pulled: np.ndarray | None = None
) -> Iterator[Timelines]:
    """Batches covering users 1..graph.users in order. `pulled`: a boolean mask by user id
    of the accounts whose tweets are not cached (the hybrid's celebrities)."""
    tweets, written = history.tweets, history.per_author(graph.users)
    per_author = written.copy()
    if pulled is not None:
        per_author[pulled] = 0  # as far as the cache is concerned, they never tweet
    order = np.argsort(history.author, kind="stable")
    by_author = order + 1  # tweet ids grouped by author, ascending within each author
    # author * (T + 1) + id, sorted: finds the first id above a cutoff in any author's run
    search = history.author[order] * (tweets + 1) + by_author
    author_end = np.cumsum(written)
    cutoff = cutoffs(graph, per_author, tweets, length)
    counts = above(graph, cutoff, search, author_end, per_author, length)
    got = np.bincount(graph.follower, weights=counts, minlength=graph.users + 1)
    available = np.bincount(
        graph.follower, weights=np.minimum(per_author, length)[graph.followee], minlength=graph.users + 1
    )
    redo = (got < length) & (got < available)
    if redo.any():  # the cutoff was too high for these: take everything they could have
        cutoff[redo] = 0
        counts = above(graph, cutoff, search, author_end, per_author, length)
        got = np.bincount(graph.follower, weights=counts, minlength=graph.users + 1)
    edge_offsets = graph.offsets()
    for first, stop in batches(np.cumsum(got), graph.users):
        edges = slice(edge_offsets[first], edge_offsets[stop])
        yield newest_per_user(
            graph.follower[edges] - first,
            author_end[graph.followee[edges]],
            counts[edges],
            by_author,
            stop - first,
            tweets,
            length,
            first,
        )


def cutoffs(graph: Graph, per_author: np.ndarray, tweets: int, length: int) -> np.ndarray:
    """Per user, an id below which its newest `length` ids very probably do not reach."""
    union = np.bincount(graph.follower, weights=per_author[graph.followee], minlength=graph.users + 1)
    span = np.ceil(MARGIN * length * tweets / np.maximum(union, 1))
    return np.maximum(tweets - span, 0).astype(np.int64)


def above(
    graph: Graph,
    cutoff: np.ndarray,
    search: np.ndarray,
    author_end: np.ndarray,
    per_author: np.ndarray,
    length: int,
) -> np.ndarray:
    """Per follow edge: how many of the followee's newest tweets to take, those above the
    follower's cutoff, at most `length` (no older one can be among the newest `length`)."""
    keys = graph.followee * (len(search) + 1) + cutoff[graph.follower]
    newer = author_end[graph.followee] - np.searchsorted(search, keys, side="right")
    return np.minimum(np.minimum(newer, per_author[graph.followee]), length)


def batches(cumulative: np.ndarray, users: int) -> Iterator[tuple[int, int]]:
    """(first, stop) user ranges gathering about BATCH_IDS ids each (at least one user)."""
    first = 1
    while first <= users:
        limit = cumulative[first - 1] + BATCH_IDS
        stop = max(first + 1, int(np.searchsorted(cumulative, limit, side="right")))
        stop = min(stop, users + 1)
        yield first, stop
        first = stop


def newest_per_user(
    owner: np.ndarray,
    source_end: np.ndarray,
    count: np.ndarray,
    by_author: np.ndarray,
    users: int,
    tweets: int,
    length: int,
    first_user: int,
) -> Timelines:
    """owner: each edge's follower (0-based in the batch); the edge contributes the `count`
    ids of by_author ending at source_end."""
    ids = by_author[ranges(source_end - count, count)]
    owner = np.repeat(owner, count)
    # One sort orders by user, and within a user newest first.
    keys = np.sort(owner * (tweets + 1) + (tweets - ids))
    sizes = np.bincount(owner, minlength=users)
    kept = np.minimum(sizes, length)
    segment_start = np.cumsum(sizes) - sizes
    newest = tweets - keys[ranges(segment_start, kept)] % (tweets + 1)
    return Timelines(first_user, np.concatenate(([0], np.cumsum(kept))), newest)


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(ends[-1] if len(ends) else 0)
