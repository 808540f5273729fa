"""A tweet history for a follow graph, drawn with numpy from a seed.

Activity is skewed the way it is on Twitter: each account's tweet count is Poisson around
a log-normal rate, so many accounts post a few tweets or none and a few post hundreds.
The most-followed accounts always post at least the mean: a celebrity who never tweets
would leave nothing for the hybrid to pull at read time. The depth (mean tweets per
author) is what makes join-on-read slow, so it is a parameter of every scale.

Tweet ids 1..T are in time order and the authors are interleaved at random over time.
created_at is a fixed epoch plus one second per tweet id, in the apps' own format
(microseconds, 'Z'), so it grows with the id; users are created, in id order, in the
seconds before the first tweet. Texts are runs of words cut from one seeded word salad,
40-140 code points long, ASCII: realistic row and body sizes, nothing to escape.
"""

from dataclasses import dataclass

import numpy as np

from datagen.graph import Graph

ACTIVITY_SIGMA = 1.5  # log-normal spread of tweet rates: the top 1% of accounts post ~20% of tweets
CELEBRITY_SHARE = 0.01  # the most-followed 1% of accounts post at least the mean
EPOCH = np.datetime64("2025-01-01T00:00:00", "us")  # before any tweet the apps will add
SECONDS_PER_TWEET = 1
TEXT_LENGTHS = (40, 140)
WORDS = """the a to of and in is it you that for on my this with be just so at not have are
was me but all like your out up now what time new can get day good one love today if about
how people think back know go more no see will got from when do night really tweet thanks
great lol home work coffee morning rain city train weekend music game news happy""".split()
SALAD_WORDS = 50_000  # texts are cut from this many seeded words (~250k characters)


@dataclass(frozen=True, eq=False)
class History:
    """Tweet i + 1 was written by author[i]; its text is salad[text_start[i]:text_stop[i]]."""

    author: np.ndarray
    text_start: np.ndarray
    text_stop: np.ndarray
    salad: str

    @property
    def tweets(self) -> int:
        return len(self.author)

    def per_author(self, users: int) -> np.ndarray:
        """Tweets of each user; index 0 is unused so that index = user id."""
        return np.bincount(self.author, minlength=users + 1)

    def texts(self, first: int = 0, stop: int | None = None) -> list[str]:
        """Texts of the tweets with ids first + 1 .. stop (0-based slice of the history)."""
        bounds = zip(self.text_start[first:stop].tolist(), self.text_stop[first:stop].tolist(), strict=False)
        return [self.salad[a:b] for a, b in bounds]

    def created_at(self, first: int = 0, stop: int | None = None) -> list[str]:
        ids = np.arange(first + 1, (self.tweets if stop is None else stop) + 1)
        return timestamps(ids * SECONDS_PER_TWEET)


def timestamps(seconds_after_epoch: np.ndarray) -> list[str]:
    """ISO 8601 UTC, microseconds and 'Z': exactly the apps' now_iso() format."""
    moments = EPOCH + (np.asarray(seconds_after_epoch) * 1_000_000).astype("timedelta64[us]")
    return [text + "Z" for text in np.datetime_as_string(moments, unit="us").tolist()]


def user_created_at(users: int) -> list[str]:
    return timestamps(np.arange(1, users + 1) - users - 1)


def generate_history(graph: Graph, mean_tweets: float, seed: int) -> History:
    rng = np.random.default_rng([seed, 2])  # its own stream: the graph's does not shift it
    counts = tweet_counts(graph, mean_tweets, rng)
    author = rng.permutation(np.repeat(np.arange(graph.users + 1), counts))
    salad, word_starts = word_salad(rng)
    start, stop = cut_texts(len(author), salad, word_starts, rng)
    return History(author, start, stop, salad)


def tweet_counts(graph: Graph, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Tweets per user (index = user id), mean ~`mean`, heavy-tailed."""
    mu = np.log(mean) - ACTIVITY_SIGMA**2 / 2  # so that the rates' mean is `mean`
    counts = np.concatenate(([0], rng.poisson(rng.lognormal(mu, ACTIVITY_SIGMA, graph.users))))
    followers = graph.followers()
    followers[0] = -1
    celebrities = np.argsort(-followers, kind="stable")[: max(1, int(graph.users * CELEBRITY_SHARE))]
    counts[celebrities] = np.maximum(counts[celebrities], round(mean))
    return counts


def word_salad(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """SALAD_WORDS seeded words joined by spaces, and where each word starts."""
    words = [WORDS[i] for i in rng.integers(len(WORDS), size=SALAD_WORDS)]
    lengths = np.array([len(word) + 1 for word in words])
    return " ".join(words), np.concatenate(([0], np.cumsum(lengths)[:-1]))


def cut_texts(
    count: int, salad: str, word_starts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per tweet, a run of whole words starting at a random word, as long as fits in a
    random length within TEXT_LENGTHS (never shorter than the shortest bound by more than
    one word, never longer than the longest)."""
    low, high = TEXT_LENGTHS
    last_start = np.searchsorted(word_starts, len(salad) - high) - 1  # room for `high` after it
    start = word_starts[rng.integers(last_start, size=count)]
    wanted = rng.integers(low, high + 1, size=count)
    # The last word that ends within `wanted`: the word before the first one starting
    # after start + wanted + 1 (a word ends one character before the next one starts).
    next_word = np.searchsorted(word_starts, start + wanted + 1, side="right")
    stop = word_starts[next_word - 1] - 1
    return start.astype(np.int32), stop.astype(np.int32)
