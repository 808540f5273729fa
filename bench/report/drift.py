"""drift.csv: each design's first repeat against its last. The rounds run in order (bench/run.py),
every round on fresh processes and stores, so what still differs between a design's first and
last round is the machine (thermal state, page cache, the other tenants), not the design.

A difference is flagged when it exceeds the spread of the measurement itself, which two
rounds cannot give from each other (their range is their difference):
  capacity       per mix and SLO rule, the held rate; spread: the wider of the two runs'
                 brackets (missed - held), what the search could not resolve
  cpu_us_per_read  every CPU the server side spent (app, Redis, PostgreSQL), less the tweets'
                 (at the design's median tweet cost, from tweets-k), per read, from fixed-k;
                 spread: the wider of the two rounds' own ranges over their DDIA-mix phases
                 (fixed-k and the DDIA capacity steps that held under the read rule with
                 MIN_READS reads or more: in a shorter step the app's idle CPU, spread over a
                 few reads, would pass for a spread); unknown (empty, never flagged) where
                 neither round has two such phases
"""

import math
import re

import numpy as np
import pandas as pd

from bench.phases import Phase
from bench.report import summary

COLUMNS = ["approach", "measure", "mix", "slo", "first_run", "last_run", "first", "last", "difference"]
COLUMNS += ["spread", "flagged"]
FIXED = re.compile(r"^fixed(?:-(\d+))?$")
DDIA_STEP = re.compile(r"^step-ddia-(\d+)-\d+$")
TWEETS = re.compile(r"^tweets-\d+$")
MIN_READS = 100


def row(approach: str, measure: str, mix: str, slo: str, first: tuple, last: tuple, spread: float) -> dict:
    """first, last: (run, value)."""
    difference = last[1] - first[1]
    return {
        "approach": approach,
        "measure": measure,
        "mix": mix,
        "slo": slo,
        "first_run": first[0],
        "last_run": last[0],
        "first": first[1],
        "last": last[1],
        "difference": difference,
        "spread": spread,
        "flagged": bool(abs(difference) > spread) if math.isfinite(spread) else False,
    }


def capacity_rows(searches: list[dict]) -> list[dict]:
    rows = []
    runs = pd.DataFrame(searches)
    if not len(runs):
        return rows
    for (approach, mix, slo), group in runs.groupby(["approach", "mix", "slo"], sort=False):
        first, last = group.loc[group.run.idxmin()], group.loc[group.run.idxmax()]
        spread = max(first.missed_rate - first.held_rate, last.missed_rate - last.held_rate)
        ends = (first.run, first.held_rate), (last.run, last.held_rate)
        rows.append(row(approach, "capacity", mix, slo, *ends, spread))
    return rows


def server_cpu_s(phase: Phase) -> float:
    usage = phase.usage
    return usage.app_s + usage.redis_s + (usage.postgres_s or 0.0)


def cpu_per_read_us(phase: Phase, tweet_us: float) -> float:
    counted = summary.figures(phase)
    reads, tweets = counted["read"]["count"], counted["tweet"]["count"]
    return (server_cpu_s(phase) * 1e6 - tweets * tweet_us) / reads if reads else np.nan


def round_of(phase: Phase) -> tuple[int, bool] | None:
    """(its round, whether it is the fixed-k phase), for the DDIA-mix phases drift reads."""
    if match := FIXED.match(phase.name):
        return int(match.group(1) or 1), True
    if match := DDIA_STEP.match(phase.name):
        return int(match.group(1)), False
    return None


def cpu_rows(phases: list[Phase], slo_ms: float) -> list[dict]:
    rows = []
    for approach in dict.fromkeys(phase.approach for phase in phases):
        mine = [phase for phase in phases if phase.approach == approach]
        tweet_us = [server_cpu_s(p) * 1e6 / c for p in mine if TWEETS.match(p.name) and (c := tweet_count(p))]
        cost = float(np.median(tweet_us)) if tweet_us else 0.0
        fixed, ranges = {}, {}
        for phase in mine:
            found = round_of(phase)
            if found is None or (not found[1] and not comparable_step(phase, slo_ms)):
                continue
            value = cpu_per_read_us(phase, cost)
            if found[1]:
                fixed[found[0]] = value
            ranges.setdefault(found[0], []).append(value)
        if not fixed:
            continue
        first, last = min(fixed), max(fixed)
        # A round of one comparable phase has no range of its own: unknown, not zero.
        spread = max((np.ptp(ranges[r]) for r in (first, last) if len(ranges[r]) > 1), default=np.nan)
        ends = (first, fixed[first]), (last, fixed[last])
        rows.append(row(approach, "cpu_us_per_read", "ddia", "", *ends, float(spread)))
    return rows


def comparable_step(phase: Phase, slo_ms: float) -> bool:
    return summary.figures(phase)["read"]["count"] >= MIN_READS and summary.within_slo(phase, slo_ms, "read")


def tweet_count(phase: Phase) -> int:
    return summary.figures(phase)["tweet"]["count"]


def table(phases: list[Phase], searches: list[dict], slo_ms: float) -> pd.DataFrame:
    return pd.DataFrame(capacity_rows(searches) + cpu_rows(phases, slo_ms), columns=COLUMNS)


def lines(drift: pd.DataFrame) -> list[str]:
    """drift.csv in words, one line per comparison, the flagged ones marked."""
    out = []
    for r in drift.itertuples():
        what = f"{r.measure} {r.mix}" + (f" slo={r.slo}" if r.slo else "")
        mark = "DRIFT" if r.flagged else ("ok" if math.isfinite(r.spread) else "?")
        out.append(
            f"{mark:5} {r.approach:<7} {what:<30} run {r.first_run}: {r.first:,.1f}, run {r.last_run}: "
            f"{r.last:,.1f} (difference {r.difference:+,.1f}, spread {r.spread:,.1f})"
        )
    return out
