"""A directed follow graph shaped like Twitter's, drawn with numpy from a seed.

Out-degrees (followees per user) are log-normal around the configured mean: most people
follow some dozens of accounts, a few follow thousands. Whom they follow is drawn by
popularity: the account of popularity rank r is picked with weight r^-exponent (Zipf), and
the ranks are a random permutation of the users, so a user id says nothing about how
popular the account is. A Zipf exponent near 1 gives in-degrees a power-law tail with
density ~ k^-(1 + 1/exponent), about k^-2 as measured on Twitter: the median account has a
handful of followers and the top few are followed by a large share of everyone.

Each user's followees are a weighted sample without replacement, drawn the way such a
sample is defined: draw by weight, skip what was already drawn, until there are enough.
That is done for all users at once: every round draws twice each user's shortfall with
replacement, drops self-follows and repeats, and keeps each user's first new draws. The
few users still short after some rounds (those who follow a large share of all accounts,
where nearly every draw is a repeat) finish with an exact per-user draw (Gumbel top-k).
"""

from dataclasses import dataclass

import numpy as np

FOLLOWEE_SIGMA = 1.0  # log-normal spread of out-degrees: the 99th percentile is ~10x the median
OVERSAMPLE = 2  # draws per missing followee in a round: fewer rounds, each still cheap
BULK_ROUNDS = 12  # then the few users still short are finished one by one


@dataclass(frozen=True, eq=False)
class Graph:
    """Users 1..users; edges sorted by (follower, followee), each pair once, none to self."""

    users: int
    follower: np.ndarray
    followee: np.ndarray

    @property
    def edges(self) -> int:
        return len(self.follower)

    def followers(self) -> np.ndarray:
        """Followers of each user; index 0 is unused so that index = user id."""
        return np.bincount(self.followee, minlength=self.users + 1)

    def following(self) -> np.ndarray:
        return np.bincount(self.follower, minlength=self.users + 1)

    def offsets(self) -> np.ndarray:
        """follower u's edges are [offsets[u], offsets[u + 1]) (CSR by follower)."""
        return np.concatenate(([0], np.cumsum(self.following())))


def generate_graph(users: int, mean_followees: float, exponent: float, seed: int) -> Graph:
    if users < 2:
        raise ValueError("a follow graph needs at least 2 users")
    rng = np.random.default_rng([seed, 1])  # the graph's own stream: history draws from another
    degrees = out_degrees(users, mean_followees, rng)
    weights = popularity(users, exponent, rng)
    cdf = np.cumsum(weights)
    keys = np.empty(0, dtype=np.int64)  # edges as follower * (users + 1) + followee, sorted
    for _ in range(BULK_ROUNDS):
        short = degrees - np.bincount(keys // (users + 1), minlength=users + 1)
        if not short.any():
            break
        keys = merge(keys, draw_round(keys, short, cdf, users, rng))
    short = degrees - np.bincount(keys // (users + 1), minlength=users + 1)
    keys = merge(keys, top_up(keys, short, weights, users, rng))
    return Graph(users, keys // (users + 1), keys % (users + 1))


def out_degrees(users: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Followees wanted per user (index = user id, 0 wants none), mean `mean`, in [1, users-1]."""
    mu = np.log(mean) - FOLLOWEE_SIGMA**2 / 2  # a log-normal's mean is exp(mu + sigma^2 / 2)
    wanted = np.rint(rng.lognormal(mu, FOLLOWEE_SIGMA, users)).astype(np.int64)
    return np.concatenate(([0], np.clip(wanted, 1, users - 1)))


def popularity(users: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probability of each user (index = id, 0 never) being picked as a followee."""
    ranks = rng.permutation(users) + 1
    weights = np.concatenate(([0.0], ranks.astype(np.float64) ** -exponent))
    return weights / weights.sum()


def draw_round(
    keys: np.ndarray, short: np.ndarray, cdf: np.ndarray, users: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to short[u] new followees for every user u, as sorted edge keys."""
    follower = np.repeat(np.arange(users + 1, dtype=np.int64), short * OVERSAMPLE)
    followee = np.searchsorted(cdf, rng.random(len(follower)) * cdf[-1], side="right")
    followee = np.minimum(followee, users)  # rounding at the top end must not overflow
    drawn = follower * (users + 1) + followee
    drawn = drawn[(follower != followee) & ~contains(keys, drawn)]
    drawn = first_occurrences(drawn)  # still grouped by follower, in draw order
    follower = drawn // (users + 1)
    return np.sort(drawn[rank_in_group(follower) < short[follower]])


def rank_in_group(grouped: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values: [7, 7, 9, 9, 9] -> [0, 1, 0, 1, 2]."""
    starts = np.flatnonzero(np.diff(grouped, prepend=-1))
    return np.arange(len(grouped)) - np.repeat(starts, np.diff(starts, append=len(grouped)))


def contains(sorted_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(sorted_keys, values), max(len(sorted_keys) - 1, 0))
    return (sorted_keys[at] == values) if len(sorted_keys) else np.zeros(len(values), bool)


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """values without repeats, each kept where it first occurs, order otherwise unchanged."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return values[np.sort(order[first])]


def merge(sorted_a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    # A stable sort of two sorted runs is a linear merge (timsort finds the runs).
    return np.sort(np.concatenate((sorted_a, sorted_b)), kind="stable")


def top_up(
    keys: np.ndarray, short: np.ndarray, weights: np.ndarray, users: int, rng: np.random.Generator
) -> np.ndarray:
    """The rest of each still-short user's sample, drawn exactly: the top `short` keys of
    log(weight) + Gumbel noise among the accounts not yet followed are a weighted sample
    without replacement (the Gumbel top-k trick)."""
    added = [np.empty(0, dtype=np.int64)]
    follower = keys // (users + 1)
    for user in np.flatnonzero(short):
        have = keys[np.searchsorted(follower, user) : np.searchsorted(follower, user, side="right")]
        allowed = np.ones(users + 1, dtype=bool)
        allowed[[0, user]] = False
        allowed[have % (users + 1)] = False
        candidates = np.flatnonzero(allowed)
        scores = np.log(weights[candidates]) + rng.gumbel(size=len(candidates))
        chosen = candidates[np.argpartition(-scores, short[user] - 1)[: short[user]]]
        added.append(user * (users + 1) + np.sort(chosen))
    return np.sort(np.concatenate(added))
