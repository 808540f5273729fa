"""What each request is: a home-timeline read or a tweet, and by whom, drawn in batches with
numpy so that a request costs one list lookup.

Every user has an activity rank, a seeded random permutation shared by all processes (so
"the most active user" is the same user everywhere). A read is by the user of activity
rank r with probability ~ 1/r^s (Zipf, --zipf s): active users read more. A tweet's author
is drawn from the same Zipf over activity ranks, mixed with a Zipf over follower ranks with
weight --author-bias (0: celebrities tweet like anyone else; 1: the most followed account
tweets most). Whether a request is a tweet is a Bernoulli draw with p = 1/(1 + read_ratio).
Each process draws from its own stream (seed, stream), so workers do not repeat each other.
"""

import numpy as np

from loadtest._population import Population

READ, TWEET = 0, 1
BATCH = 8192


def zipf_weights(count: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, count + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def cumulative(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class OperationMix:
    def __init__(
        self,
        population: Population,
        read_ratio: float,
        zipf: float = 1.0,
        author_bias: float = 0.0,
        seed: int = 1,
        stream: int = 0,
        batch: int = BATCH,
    ):
        n = len(population)
        self.population = population
        self.tweet_probability = 1.0 / (1.0 + read_ratio)
        rank_weights = zipf_weights(n, zipf)
        activity = np.empty(n)
        activity[np.random.default_rng(seed).permutation(n)] = rank_weights
        by_followers = np.empty(n)
        # Ties in follower count are broken by the activity order, so still seeded.
        by_followers[np.lexsort((-activity, -population.followers))] = rank_weights
        self.reader_cdf = cumulative(activity)
        self.author_cdf = cumulative((1 - author_bias) * activity + author_bias * by_followers)
        self.rng = np.random.default_rng([seed, 1 + stream])
        self.batch = batch
        self._next = iter(())

    def draw(self, size: int) -> list[tuple[int, int, int]]:
        """size requests as (READ or TWEET, user id, count): a tweet's count is its author's
        followers, a read's the reader's followees."""
        tweet = self.rng.random(size) < self.tweet_probability
        uniform = self.rng.random(size)
        index = np.where(
            tweet,
            np.searchsorted(self.author_cdf, uniform, side="right"),
            np.searchsorted(self.reader_cdf, uniform, side="right"),
        )
        np.minimum(index, len(self.population) - 1, out=index)  # float rounding in the cdf
        users = self.population.ids[index]
        counts = np.where(tweet, self.population.followers[index], self.population.following[index])
        return list(zip(tweet.astype(np.int8).tolist(), users.tolist(), counts.tolist(), strict=True))

    def next(self) -> tuple[int, int, int]:
        try:
            return next(self._next)
        except StopIteration:
            self._next = iter(self.draw(self.batch))
            return next(self._next)
