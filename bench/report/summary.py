"""From raw samples to the run folder's tables. Percentiles come from every request's
latency (numpy, linear interpolation), never from Locust's rounded histograms.

  phases.csv        every phase x operation: offered, achieved, latencies, the server side's CPU
                    (app and redis-server) and Redis's own count of timeline pushes
  summary.csv       the first `fixed` phase, one row per approach and operation (as before)
  latency.csv       every latency repeat together: per approach, mix and operation, the median,
                    min and max over repeats of each percentile
  capacity.csv      the capacity search: per approach, mix and SLO rule (slo: read, delivery),
                    runs, the held rate's median, min and max, and each run's bracket (held;
                    missed, within the tolerance above)
  max_throughput.csv  capacity.csv's DDIA mix under the read rule, in the older layout
  drift.csv         each design's first repeat against its last (bench/report/drift.py)
  cpu.csv           us of CPU per read, per tweet and per follower-write, app and Redis apart
                    (and PostgreSQL, a component of its own, when it was the store)
  celebrity_sweep.csv  per approach and followers: the tweet's POST, fanout lag, writes, CPU;
                    the hybrid's read with one celebrity pulled against none
  fanout_lag.csv    every tweet of the latency and threshold phases, its author's followers and
                    how long its fanout took (0 for a hybrid's pulled tweet)
  thresholds.csv    the hybrid's read latency and fanout writes/s per threshold (when run)
  depths.csv        read latency per approach and history depth (when run)
  arithmetic.csv    DDIA's tweets/s x followers beside Redis's own count of timeline pushes, in
                    the celebrities phases (celebrities tweeting: the hybrid's contrast)
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bench.phases import Phase
from bench.plan import Plan

PERCENTILES = {"p50_ms": 50, "p95_ms": 95, "p99_ms": 99, "p999_ms": 99.9}
OPERATIONS = ("read", "tweet")
FIXED_PHASE = r"^fixed(-\d+)?$"  # every repeat of DDIA's mix at the fixed rate: fixed, fixed-2, ...
CELEBRITY_PHASE = r"^celebrities(-\d+)?$"  # every repeat of that mix: celebrities, celebrities-2, ...


def read_samples(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"operation": "category"})


def operation_figures(samples: pd.DataFrame, seconds: float) -> dict:
    figures = {}
    for operation in OPERATIONS:
        rows = samples[samples.operation == operation]
        latency_ms = rows.latency_us.to_numpy() / 1000
        failed = (rows.status < 200) | (rows.status >= 300)
        figures[operation] = {
            "count": len(rows),
            "throughput_per_s": len(rows) / seconds if seconds else 0.0,
            **{
                name: float(np.percentile(latency_ms, q)) if len(rows) else np.nan
                for name, q in PERCENTILES.items()
            },
            "errors": int(failed.sum()),
            # A tweet's count is its author's followers, a read's the reader's followees.
            "mean_count_ok": float(rows["count"][~failed].mean()) if (~failed).any() else np.nan,
        }
    return figures


def figures(phase: Phase) -> dict:
    if not phase.figures:
        seconds = phase.loadtest.get("elapsed_s") or (phase.ended - phase.began)
        phase.figures = operation_figures(read_samples(phase.samples), seconds)
    return phase.figures


SLO_RULES = ("read", "delivery")  # bench/experiments/capacity.py says what each judges


def within_slo(phase: Phase, slo_ms: float, rule: str = "read") -> bool:
    """Whether a step held under `rule` (SLO_RULES)."""
    if rule not in SLO_RULES:
        raise ValueError(f"SLO rule {rule!r}: one of {', '.join(SLO_RULES)}")
    row, read = phase.row(), figures(phase)["read"]
    errors = sum(f["errors"] for f in figures(phase).values())
    held = (
        read["count"] > 0
        and read["p99_ms"] <= slo_ms
        and errors == 0
        and row["achieved_rate"] >= 0.95 * (row["target_rate"] or 0)
    )
    if rule == "read" or not held:
        return held
    tweet = figures(phase)["tweet"]
    # A step without a tweet has nothing to deliver; one whose delivery was not read cannot hold.
    delivered = phase.delivery is not None and phase.delivery.holds()
    return (not tweet["count"] or tweet["p99_ms"] <= slo_ms) and delivered


def phase_line(phase: Phase) -> str:
    row, f = phase.row(), figures(phase)
    parts = [
        f"{f[op]['count']} {op}s p50 {f[op]['p50_ms']:.1f} p99 {f[op]['p99_ms']:.1f} ms"
        for op in OPERATIONS
        if f[op]["count"]
    ]
    rate = f"{row['achieved_rate']:.0f} req/s"
    if row["target_rate"]:
        rate += f" ({row['achieved_rate'] / row['target_rate']:.0%} of target)"
    errors = sum(f[op]["errors"] for op in OPERATIONS)
    return f"{', '.join(parts)}; {rate}; {errors} errors"


def phase_table(phases: list[Phase]) -> pd.DataFrame:
    rows = [{**phase.row(), "operation": op, **figures(phase)[op]} for phase in phases for op in OPERATIONS]
    return pd.DataFrame(rows)


def spread(values: pd.Series) -> dict:
    return {"median": float(values.median()), "min": float(values.min()), "max": float(values.max())}


def latency(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table.phase.str.match(r"^(fixed|celebrities)(-\d+)?$")].copy()
    rows["mix"] = rows.phase.str.replace(r"-\d+$", "", regex=True)
    out = []
    for (approach, mix, operation), group in rows.groupby(["approach", "mix", "operation"], sort=False):
        row = {
            "approach": approach,
            "mix": mix,
            "operation": operation,
            "repeats": len(group),
            "target_rate": group.target_rate.iloc[0],
        }
        for column in ("achieved_rate", *PERCENTILES):
            for stat, value in spread(group[column]).items():
                row[f"{column}_{stat}"] = value
        out.append(row)
    return pd.DataFrame(out)


CAPACITY_COLUMNS = ["approach", "mix", "slo", "runs", "median", "min", "max", "brackets", "steps"]


def capacity(searches: list[dict]) -> pd.DataFrame:
    """Per approach, mix and SLO rule: the held rate's median, min and max over the runs."""
    runs = pd.DataFrame(searches)
    if not len(runs):
        return pd.DataFrame(columns=CAPACITY_COLUMNS)
    out = []
    for (approach, mix, slo), group in runs.groupby(["approach", "mix", "slo"], sort=False):
        out.append(
            {
                "approach": approach,
                "mix": mix,
                "slo": slo,
                "runs": len(group),
                **spread(group.held_rate),
                "brackets": "; ".join(f"{r.held_rate:.1f}-{r.missed_rate:.1f}" for r in group.itertuples()),
                "steps": int(group.steps.sum()),
            }
        )
    return pd.DataFrame(out, columns=CAPACITY_COLUMNS)


def max_throughput_from(capacity_table: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The older layout, and its older rule: the DDIA mix under the read SLO."""
    ddia = capacity_table[(capacity_table.mix == "ddia") & (capacity_table.slo == "read")]
    return pd.DataFrame(
        {
            "approach": ddia.approach,
            "slo_read_p99_ms": plan.slo_ms,
            "max_rate_per_s": ddia["median"],
            "held_min": ddia["min"],
            "held_max": ddia["max"],
            "steps_tried": ddia.steps,
        }
    )


def max_throughput(table: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    steps = (
        table[table.phase.str.startswith("step-")]
        .pivot_table(
            index=["approach", "phase", "target_rate", "achieved_rate", "errors"],
            columns="operation",
            values="p99_ms",
            aggfunc="first",
        )
        .reset_index()
    )
    rows = []
    for approach, group in steps.groupby("approach", sort=False):
        held = group[(group.read <= plan.slo_ms) & (group.achieved_rate >= 0.95 * group.target_rate)]
        best = held.loc[held.achieved_rate.idxmax()] if len(held) else None
        rows.append(
            {
                "approach": approach,
                "slo_read_p99_ms": plan.slo_ms,
                "max_rate_per_s": float(best.achieved_rate) if best is not None else 0.0,
                "offered_per_s": float(best.target_rate) if best is not None else 0.0,
                "read_p99_ms": float(best.read) if best is not None else np.nan,
                "steps_tried": len(group),
            }
        )
    return pd.DataFrame(rows)


def fanout_writes(lags: pd.DataFrame, phase: str, approach: str) -> int:
    rows = lags[(lags.phase == phase) & (lags.approach == approach) & ~lags.pulled]
    return int(rows.followers.sum())


def thresholds(table: pd.DataFrame, lags: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    reads = table[
        (table.approach == "hybrid")
        & (table.operation == "read")
        & table.phase.isin(["celebrities"] + [f"threshold-{t}" for t in plan.thresholds])
    ]
    rows = []
    for _, row in reads.iterrows():
        rows.append(
            {
                "celebrity_threshold": int(row.celebrity_threshold),
                "phase": row.phase,
                "read_p50_ms": row.p50_ms,
                "read_p99_ms": row.p99_ms,
                "tweets_per_s": row.tweets / row.seconds,
                "fanout_writes_per_s": fanout_writes(lags, row.phase, "hybrid") / row.seconds,
                "pulled_tweets": int(
                    lags[(lags.phase == row.phase) & (lags.approach == "hybrid")].pulled.sum()
                ),
            }
        )
    return pd.DataFrame(rows).sort_values("celebrity_threshold")


def arithmetic(table: pd.DataFrame, mean_followers: float) -> pd.DataFrame:
    """Per fanout design, over the celebrities repeats: DDIA's estimate, the estimate from the
    authors who did tweet, and Redis's own count of list pushes (INFO commandstats), which
    knows nothing of either: a tweet's push is counted only where a list really took it."""
    tweets = table[table.phase.str.match(CELEBRITY_PHASE) & (table.operation == "tweet")]
    rows = []
    for approach, group in tweets.groupby("approach", sort=False):
        per_repeat = pd.DataFrame(
            {
                "tweets_per_s": group.tweets / group.seconds,
                "expected": group.tweets / group.seconds * group.mean_count_ok,
                "measured": group.redis_timeline_writes / group.seconds,
                "authors": group.mean_count_ok,
            }
        )
        rows.append(
            {
                "approach": approach,
                "repeats": len(group),
                "tweets_per_s": per_repeat.tweets_per_s.median(),
                "mean_followers": mean_followers,
                "ddia_writes_per_s": per_repeat.tweets_per_s.median() * mean_followers,
                "authors_mean_followers": per_repeat.authors.median(),
                "expected_writes_per_s": per_repeat.expected.median(),
                "measured_writes_per_s": per_repeat.measured.median(),
                "measured_min": per_repeat.measured.min(),
                "measured_max": per_repeat.measured.max(),
            }
        )
    return pd.DataFrame(rows)


def per_operation_cpu(table: pd.DataFrame, sweep_tweets: pd.DataFrame, pulls_per_read: float) -> pd.DataFrame:
    """us of CPU per operation, app and Redis apart, each from the phases that isolate it:
      tweet           tweets-k phases (tweets only, DDIA's authors), CPU until the fanout drained,
                      less the follower-writes Redis counted times the follower_write cost
      follower_write  the sweep's largest fanned-out tweet: its CPU / Redis's pushes
      read            fixed-k phases (DDIA's mix): CPU less the tweets' (tweets x tweet-with-
                      fanout cost from tweets-k), / reads
      celebrity_pull  the hybrid's read less fanout's, both from fixed-k (the same graph, the
                      same pages), / the celebrities a reader follows in this graph
    Spread: over the repeats (phases) or the sweep's tweets; a difference takes the ends that
    give its lowest and its highest value."""
    phases = table.drop_duplicates(["approach", "phase"])
    rows = []
    for approach, mine in phases.groupby("approach", sort=False):
        writes = (
            sweep_tweets[(sweep_tweets.approach == approach) & sweep_tweets.fanned_out]
            if len(sweep_tweets)
            else pd.DataFrame()
        )
        tweets = mine[mine.phase.str.match(r"^tweets-\d+$") & (mine.tweets > 0)]
        fixed = mine[mine.phase.str.match(FIXED_PHASE) & (mine.reads > 0)]
        for component in components(table):
            cpu = f"{component}_cpu_s"
            write_us = pd.Series(dtype=float)
            if len(writes) and f"{component}_cpu_ms" in writes:
                top = writes[writes.followers == writes.followers.max()]
                write_us = top[f"{component}_cpu_ms"] * 1000 / top.timeline_writes.clip(lower=1)
            write_cost = float(write_us.median()) if len(write_us) else 0.0
            with_fanout = tweets[cpu] * 1e6 / tweets.tweets
            base = with_fanout - write_cost * tweets.redis_timeline_writes / tweets.tweets
            read = (
                (fixed[cpu] * 1e6 - fixed.tweets * with_fanout.median()) / fixed.reads
                if len(tweets)
                else pd.Series(dtype=float)
            )
            measures = [
                ("read", read, "fixed-k: DDIA's mix, less its tweets"),
                ("tweet", base, "tweets-k: tweets only, less their follower-writes"),
                ("tweet_with_fanout", with_fanout, "tweets-k: tweets only, DDIA's authors, all in"),
                ("follower_write", write_us, "sweep: the largest fanned-out tweet / its pushes"),
            ]
            for operation, values, source in measures:
                values = pd.Series(values).dropna()
                if len(values):
                    rows.append(
                        {
                            "approach": approach,
                            "operation": operation,
                            "component": component,
                            "runs": len(values),
                            **{f"us_{k}": v for k, v in spread(values).items()},
                            "source": source,
                        }
                    )
    return pd.DataFrame(rows + celebrity_pulls(rows, pulls_per_read, components(table)))


def components(table: pd.DataFrame) -> tuple[str, ...]:
    """Whose CPU a phase counted: the app's (SQLite's too) and Redis's, and PostgreSQL's when
    it was the store."""
    return ("app", "redis", "postgres") if "postgres_cpu_s" in table else ("app", "redis")


def celebrity_pulls(
    rows: list[dict], pulls_per_read: float, parts: tuple[str, ...] = ("app", "redis")
) -> list[dict]:
    """What each celebrity a hybrid reader follows adds to a read: the hybrid's read less
    fanout's (the same graph and pages, a pull the only difference), per pull. The sweep's
    readers cannot say it: a reader who pulls one celebrity also gets a longer page."""
    reads = {(r["approach"], r["component"]): r for r in rows if r["operation"] == "read"}
    out = []
    for component in parts:
        hybrid, fanout = reads.get(("hybrid", component)), reads.get(("fanout", component))
        if not (hybrid and fanout and pulls_per_read > 0):
            continue
        out.append(
            {
                "approach": "hybrid",
                "operation": "celebrity_pull",
                "component": component,
                "runs": min(hybrid["runs"], fanout["runs"]),
                "us_median": max(0.0, hybrid["us_median"] - fanout["us_median"]) / pulls_per_read,
                "us_min": max(0.0, hybrid["us_min"] - fanout["us_max"]) / pulls_per_read,
                "us_max": max(0.0, hybrid["us_max"] - fanout["us_min"]) / pulls_per_read,
                "source": f"fixed-k: (hybrid read - fanout read) / {pulls_per_read:.1f} pulled per read",
            }
        )
    return out


SWEEP_MEASURES = ("post_ms", "lag_ms", "app_cpu_ms", "redis_cpu_ms", "postgres_cpu_ms")


def celebrity_sweep(tweets: pd.DataFrame, reads: pd.DataFrame) -> pd.DataFrame:
    if not len(tweets):
        return pd.DataFrame(columns=["approach", "followers"])
    out = []
    for (approach, followers), group in tweets.groupby(["approach", "followers"], sort=False):
        row = {"approach": approach, "followers": followers, "tweets": len(group)}
        for column in [c for c in SWEEP_MEASURES if c in group]:  # postgres_cpu_ms: STORE=postgres
            values = group[column].dropna()
            for stat, value in (
                spread(values) if len(values) else {"median": np.nan, "min": np.nan, "max": np.nan}
            ).items():
                row[f"{column}_{stat}"] = value
        row["timeline_writes_median"] = float(group.timeline_writes.median())
        row["fanned_out"] = bool(group.fanned_out.all())
        mine = reads[(reads.approach == approach)] if len(reads) else reads
        if len(mine):
            at = mine[mine.followers == followers]
            none = mine[mine.followers == 0]
            row["read_p50_ms_pulling_it"] = float(at.read_p50_ms.iloc[0]) if len(at) else np.nan
            row["read_p50_ms_pulling_none"] = float(none.read_p50_ms.iloc[0]) if len(none) else np.nan
            row["celebrities_pulled"] = int(at.celebrities_pulled.iloc[0]) if len(at) else 0
        out.append(row)
    return pd.DataFrame(out)


def write(folder: Path, plan: Plan, bench, facts: dict) -> None:
    """facts: the seeded graph's (bench/stores.py dataset_facts), as meta.json holds them."""
    sweep_tweets, sweep_reads = bench.sweep if bench.sweep else (pd.DataFrame(), pd.DataFrame())
    celebrity_sweep(sweep_tweets, sweep_reads).to_csv(folder / "celebrity_sweep.csv", index=False)
    if not bench.phases:  # EXPERIMENT=sweep alone: no load phase, so the sweep's table only
        return
    table = phase_table(bench.phases)
    table.to_csv(folder / "phases.csv", index=False)
    summary_columns = [
        "approach",
        "operation",
        "count",
        "throughput_per_s",
        *PERCENTILES,
        "errors",
        "target_rate",
        "achieved_rate",
    ]
    table[table.phase == "fixed"][summary_columns].to_csv(folder / "summary.csv", index=False)
    latency(table).to_csv(folder / "latency.csv", index=False)
    capacity_table = capacity(bench.searches)
    capacity_table.to_csv(folder / "capacity.csv", index=False)
    max_throughput_from(capacity_table, plan).to_csv(folder / "max_throughput.csv", index=False)
    per_operation_cpu(table, sweep_tweets, facts["celebrities_followed_per_user"]).to_csv(
        folder / "cpu.csv", index=False
    )
    lag_table = (
        pd.concat(bench.lags, ignore_index=True)
        if bench.lags
        else pd.DataFrame(
            columns=[
                "approach",
                "phase",
                "tweet_id",
                "author_id",
                "followers",
                "deliveries",
                "lag_ms",
                "pulled",
            ]
        )
    )
    lag_table.to_csv(folder / "fanout_lag.csv", index=False)
    if (table.approach == "hybrid").any() and table.phase.str.startswith("threshold-").any():
        thresholds(table, lag_table, plan).to_csv(folder / "thresholds.csv", index=False)
    depth_rows = table[table.phase.str.startswith("depth-") & (table.operation == "read")].copy()
    if len(depth_rows):
        depth_rows.insert(2, "depth", depth_rows.phase.str.removeprefix("depth-").astype(float))
        depth_rows.to_csv(folder / "depths.csv", index=False)
    arithmetic(table, facts["mean_followers"]).to_csv(folder / "arithmetic.csv", index=False)


def table(folder: Path) -> str:
    lines = []
    for name, what in (
        ("summary", "latency at a fixed open-loop rate, first repeat"),
        ("capacity", "capacity within the SLO, searched"),
        ("cpu", "CPU per operation"),
        ("celebrity_sweep", "the celebrity sweep"),
        ("twitter_2012", "cores at Twitter 2012"),
    ):
        path = folder / f"{name}.csv"
        if path.exists() and path.stat().st_size > 1 and len(rows := pd.read_csv(path)):
            lines += ["", f"{what} ({name}.csv):", rows.round(2).to_string(index=False)]
    return "\n".join(lines)
