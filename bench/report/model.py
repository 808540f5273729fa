"""The capacity model: cores each design needs for Twitter 2012, from this run's measured
costs (cpu.csv). Written as twitter_2012.csv, its assumptions beside it in
twitter_2012_assumptions.csv (name, value, why), both redrawn with the charts.

cores = reads/s x us per read (+ pulls per read x us per pulled celebrity, the hybrid)
      + tweets/s x us per tweet + follower-writes/s x us per follower-write, app and Redis apart,
        and the database server apart when there is one (STORE=postgres; SQLite runs in the app).

Followers: a continuous power law, density ~ k^-2 between K_MIN and K_MAX = 30M followers, K_MIN
solved so that the mean is DDIA's 75. Accounts tweet at the same rate whatever their followers,
so a tweet reaches E[k] followers on average and the hybrid fans out E[k; k < T] of them; a
follow lands on an account of k followers with probability ~ k p(k), so a reader follows
75 x P(edge into k >= T) celebrities, each pulled at read time.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Site:
    """The load to price: DDIA's Twitter by default; the notebook lets a reader change it."""

    reads_per_s: float = 300_000  # DDIA, Twitter 2012
    tweets_per_s: float = 4_600
    mean_followers: float = 75
    most_followers: float = 30_000_000  # k_max: accounts with tens of millions of followers
    hybrid_thresholds: tuple[float, ...] = (10_000, 100_000, 1_000_000)


TWITTER_2012 = Site()

# Priced apart, each as its own column; postgres only when the run had a database server.
COMPONENTS = ("app", "redis", "postgres")

CANNOT_KNOW = (
    "join-on-read at Twitter's scale: the model prices each read at what it cost here, with the "
    "whole database in RAM on one SQLite file or one PostgreSQL server. It cannot know whether "
    "300k reads/s of 75-followee joins find their pages in memory (Twitter's tweets outgrew "
    "any one machine's RAM), nor the fan-in of a read across shards (75 followees on up to 75 "
    "shards, the slowest answer deciding)."
)


def design_label(approach: str, threshold: float | None) -> str:
    """A row of the model as a design: the hybrid with its threshold, `T=10,000`."""
    if threshold is None or pd.isna(threshold):
        return approach
    return f"{approach} T={threshold:,.0f}"


def k_min(mean: float, k_max: float) -> float:
    """The lower cut of a k^-2 law on [k_min, k_max] whose mean is `mean` (bisection)."""
    low, high = 1e-3, mean
    for _ in range(100):
        middle = (low + high) / 2
        if mean_of(middle, k_max) < mean:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean_of(lo: float, hi: float) -> float:
    return math.log(hi / lo) / (1 / lo - 1 / hi)


def fanned_share(threshold: float, lo: float, hi: float) -> float:
    """E[k; k < T] / E[k]: the share of follower-writes the hybrid still does."""
    return math.log(min(threshold, hi) / lo) / math.log(hi / lo)


def cost(cpu: pd.DataFrame, approach: str, operation: str, component: str, stat: str = "median") -> float:
    """us per operation (median, min or max over runs); below zero (idle noise) counts as 0."""
    rows = cpu[(cpu.approach == approach) & (cpu.operation == operation) & (cpu.component == component)]
    return max(0.0, float(rows[f"us_{stat}"].iloc[0])) if len(rows) else 0.0


def cores(
    cpu: pd.DataFrame,
    approach: str,
    site: Site,
    writes_per_tweet: float,
    pulls_per_read: float,
    pulls_measured: float,
) -> dict:
    """The measured read already paid for `pulls_measured` pulls (the run's graph): the model
    swaps them for `pulls_per_read` (Twitter's), so that term may be negative. Median costs;
    the spread takes each term at whichever end (min or max over runs) gives the lowest, then
    the highest, total."""
    terms = [
        (site.reads_per_s, "read"),
        (site.reads_per_s * (pulls_per_read - pulls_measured), "celebrity_pull"),
        (site.tweets_per_s, "tweet"),
        (site.tweets_per_s * writes_per_tweet, "follower_write"),
    ]
    row = {}
    components = [c for c in COMPONENTS if c != "postgres" or c in set(cpu.component)]
    for component in components:

        def term(rate: float, operation: str, stat: str, component=component) -> float:
            return rate * cost(cpu, approach, operation, component, stat)

        ends = [(term(rate, op, "min"), term(rate, op, "max")) for rate, op in terms]
        row[f"{component}_cores"] = max(0.0, sum(term(rate, op, "median") for rate, op in terms)) / 1e6
        row[f"{component}_cores_min"] = max(0.0, sum(min(end) for end in ends)) / 1e6
        row[f"{component}_cores_max"] = max(0.0, sum(max(end) for end in ends)) / 1e6
    for suffix in ("", "_min", "_max"):
        row[f"total_cores{suffix}"] = sum(row[f"{component}_cores{suffix}"] for component in components)
    return row


def table(cpu: pd.DataFrame, pulls_measured: float = 0.0, site: Site = TWITTER_2012) -> pd.DataFrame:
    lo = k_min(site.mean_followers, site.most_followers)
    rows = []
    for approach in [a for a in ("join", "fanout", "hybrid") if a in set(cpu.approach)]:
        thresholds = site.hybrid_thresholds if approach == "hybrid" else (None,)
        for threshold in thresholds:
            share = (
                0.0
                if approach == "join"
                else fanned_share(threshold or site.most_followers, lo, site.most_followers)
            )
            pulls = site.mean_followers * (1 - share) if approach == "hybrid" else 0.0
            writes = site.mean_followers * share
            rows.append(
                {
                    "approach": approach,
                    "celebrity_threshold": threshold,
                    "reads_per_s": site.reads_per_s,
                    "tweets_per_s": site.tweets_per_s,
                    "follower_writes_per_s": site.tweets_per_s * writes,
                    "celebrities_pulled_per_read": pulls,
                    **cores(
                        cpu, approach, site, writes, pulls, pulls_measured if approach == "hybrid" else 0.0
                    ),
                }
            )
    return pd.DataFrame(rows)


def assumptions(site: Site = TWITTER_2012) -> pd.DataFrame:
    lo = k_min(site.mean_followers, site.most_followers)
    return pd.DataFrame(
        [
            ("timeline reads/s", site.reads_per_s, "DDIA, Twitter 2012"),
            ("tweets/s", site.tweets_per_s, "DDIA, Twitter 2012"),
            ("followers: density ~ k^-2 on [k_min, k_max]", 2, "Twitter's measured tail is about k^-2"),
            (
                "k_max (most-followed account)",
                site.most_followers,
                "accounts with tens of millions of followers",
            ),
            ("k_min (solved)", round(lo, 3), f"so that the mean is {site.mean_followers:g}"),
            ("mean followers = mean followees", site.mean_followers, "DDIA's 75"),
            ("tweets per account", "equal", "a tweet reaches E[k] followers; celebrities tweet no more"),
            (
                "cost per operation",
                "cpu.csv medians",
                "measured here, on this machine; assumed flat in scale",
            ),
            (
                "hybrid pulls per read",
                "75 x P(edge into k >= T)",
                "each pulled celebrity at the measured cost, "
                "the run's own pulls per read (meta.json dataset_facts) taken out of the measured read first",
            ),
            ("what the model cannot know", "-", CANNOT_KNOW),
        ],
        columns=["assumption", "value", "why"],
    )


def write(folder: Path) -> None:
    path = folder / "cpu.csv"
    if not path.exists() or path.stat().st_size < 5:
        return
    cpu = pd.read_csv(path)
    if not len(cpu):
        return
    facts = json.loads((folder / "meta.json").read_text()).get("dataset_facts", {})
    table(cpu, facts.get("celebrities_followed_per_user", 0.0)).to_csv(
        folder / "twitter_2012.csv", index=False
    )
    assumptions().to_csv(folder / "twitter_2012_assumptions.csv", index=False)
