"""Whether a phase's tweets reached their readers: what the `delivery` SLO judges beside the
reads (bench/report/summary.within_slo).

A tweet's lag runs from its commit (fanout_log.accepted_at) until the last follower's cached
timeline holds it (done_at). A tweet still owed when the phase ends is late whatever its age,
its lag recorded as its age at that moment (a lower bound). A tweet with no fanout row once the
backlog has drained is fanned out to nobody: join's tweets, the hybrid's celebrities' (pulled
at read time), delivered at commit. The drain is how long after the phase's end its last
tweet's fanout finished.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

LAG_BOUND_S = 5.0  # DDIA: a tweet in its followers' timelines within 5 s
DRAIN_BOUND_S = 10.0  # the backlog a step leaves must be gone this soon after it: load it can pay off
LATE_SHARE = 0.01  # lag p99 within the bound: at most 1 % of the tweets late
STEP_TWEETS = """SELECT t.id, f.accepted_at, f.done_at FROM tweets t
    LEFT JOIN fanout_log f ON f.tweet_id = t.id WHERE t.id > ? ORDER BY t.id"""


@dataclass(frozen=True)
class Delivery:
    tweets: int
    lag_p99_ms: float  # owed tweets counted at their age when the phase ended
    late_share: float  # lag over LAG_BOUND_S, or still owed at the phase's end
    drain_s: float  # from the phase's end until its last tweet was fanned out; 0 if none was owed

    def holds(self) -> bool:
        return self.late_share <= LATE_SHARE and self.drain_s <= DRAIN_BOUND_S


NOTHING = Delivery(0, np.nan, 0.0, 0.0)


def delivery_of(tweets: pd.DataFrame, ended: float) -> Delivery:
    """`tweets`: STEP_TWEETS's rows for the phase's tweets, read after its backlog drained."""
    if not len(tweets):
        return NOTHING
    fanned = tweets.done_at.notna()
    owed = fanned & (tweets.done_at > ended)
    lag_s = pd.Series(0.0, index=tweets.index)
    lag_s[fanned] = tweets.done_at[fanned] - tweets.accepted_at[fanned]
    lag_s[owed] = ended - tweets.accepted_at[owed]
    late = owed | (lag_s > LAG_BOUND_S)
    drain_s = max(0.0, float(tweets.done_at.max()) - ended) if fanned.any() else 0.0
    return Delivery(
        len(tweets), float(np.percentile(lag_s * 1000, 99)), float(late.mean()), round(drain_s, 3)
    )
