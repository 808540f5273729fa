"""From raw samples to the run folder's tables. Percentiles come from every request's
latency (numpy, linear interpolation), never from Locust's rounded histograms.

  phases.csv        every phase x operation: what was offered, achieved, and the latencies
  summary.csv       experiment 1: the fixed-rate phase, one row per approach and operation
  max_throughput.csv  experiment 6: the highest step each approach held within the SLO
  fanout_lag.csv    experiments 2-3: every tweet of the fixed, celebrities and sweep phases, its author's
                    followers and how long its fanout took (0 for a hybrid's pulled tweet)
  thresholds.csv    experiment 5: the hybrid's read latency and fanout writes/s per threshold
  depths.csv        experiment 4: read latency per approach and history depth
  arithmetic.csv    experiment 7: DDIA's tweets/s x followers beside the measured writes/s
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bench.phases import Phase
from bench.plan import Plan

PERCENTILES = {"p50_ms": 50, "p95_ms": 95, "p99_ms": 99, "p999_ms": 99.9}
OPERATIONS = ("read", "tweet")
DDIA_TWEETS_PER_S, DDIA_FOLLOWERS = 4_600, 75


def read_samples(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"operation": "category"})


def operation_figures(samples: pd.DataFrame, seconds: float) -> dict:
    figures = {}
    for operation in OPERATIONS:
        rows = samples[samples.operation == operation]
        latency_ms = rows.latency_us.to_numpy() / 1000
        failed = (rows.status < 200) | (rows.status >= 300)
        figures[operation] = {
            "count": len(rows), "throughput_per_s": len(rows) / seconds if seconds else 0.0,
            **{name: float(np.percentile(latency_ms, q)) if len(rows) else np.nan
               for name, q in PERCENTILES.items()},
            "errors": int(failed.sum()),
            # A tweet's count is its author's followers, a read's the reader's followees.
            "mean_count_ok": float(rows["count"][~failed].mean()) if (~failed).any() else np.nan}
    return figures


def figures(phase: Phase) -> dict:
    if not phase.figures:
        seconds = phase.loadtest.get("elapsed_s") or (phase.ended - phase.began)
        phase.figures = operation_figures(read_samples(phase.samples), seconds)
    return phase.figures


def within_slo(phase: Phase, slo_ms: float) -> bool:
    row, read = phase.row(), figures(phase)["read"]
    errors = sum(f["errors"] for f in figures(phase).values())
    return (read["count"] > 0 and read["p99_ms"] <= slo_ms and errors == 0
            and row["achieved_rate"] >= 0.95 * (row["target_rate"] or 0))


def phase_line(phase: Phase) -> str:
    row, f = phase.row(), figures(phase)
    parts = [f"{f[op]['count']} {op}s p50 {f[op]['p50_ms']:.1f} p99 {f[op]['p99_ms']:.1f} ms"
             for op in OPERATIONS if f[op]["count"]]
    rate = f"{row['achieved_rate']:.0f} req/s"
    if row["target_rate"]:
        rate += f" ({row['achieved_rate'] / row['target_rate']:.0%} of target)"
    errors = sum(f[op]["errors"] for op in OPERATIONS)
    return f"{', '.join(parts)}; {rate}; {errors} errors"


def phase_table(phases: list[Phase]) -> pd.DataFrame:
    rows = [{**phase.row(), "operation": op, **figures(phase)[op]}
            for phase in phases for op in OPERATIONS]
    return pd.DataFrame(rows)


def max_throughput(table: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    steps = table[table.phase.str.startswith("step-")].pivot_table(
        index=["approach", "phase", "target_rate", "achieved_rate", "errors"], columns="operation",
        values="p99_ms", aggfunc="first").reset_index()
    rows = []
    for approach, group in steps.groupby("approach", sort=False):
        held = group[(group.read <= plan.slo_ms) & (group.achieved_rate >= 0.95 * group.target_rate)]
        best = held.loc[held.achieved_rate.idxmax()] if len(held) else None
        rows.append({"approach": approach, "slo_read_p99_ms": plan.slo_ms,
                     "max_rate_per_s": float(best.achieved_rate) if best is not None else 0.0,
                     "offered_per_s": float(best.target_rate) if best is not None else 0.0,
                     "read_p99_ms": float(best.read) if best is not None else np.nan,
                     "steps_tried": len(group)})
    return pd.DataFrame(rows)


def fanout_writes(lags: pd.DataFrame, phase: str, approach: str) -> int:
    rows = lags[(lags.phase == phase) & (lags.approach == approach) & ~lags.pulled]
    return int(rows.followers.sum())


def thresholds(table: pd.DataFrame, lags: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    reads = table[(table.approach == "hybrid") & (table.operation == "read")
                  & table.phase.isin(["celebrities"] + [f"threshold-{t}" for t in plan.thresholds])]
    rows = []
    for _, row in reads.iterrows():
        rows.append({"celebrity_threshold": int(row.celebrity_threshold), "phase": row.phase,
                     "read_p50_ms": row.p50_ms, "read_p99_ms": row.p99_ms,
                     "tweets_per_s": row.tweets / row.seconds,
                     "fanout_writes_per_s": fanout_writes(lags, row.phase, "hybrid") / row.seconds,
                     "pulled_tweets": int(lags[(lags.phase == row.phase) & (lags.approach == "hybrid")
                                               ].pulled.sum())})
    return pd.DataFrame(rows).sort_values("celebrity_threshold")


def arithmetic(table: pd.DataFrame, lags: pd.DataFrame, mean_followers: float) -> pd.DataFrame:
    fixed = table[(table.phase == "fixed") & (table.operation == "tweet")]
    rows = []
    for _, row in fixed.iterrows():
        tweets_per_s = row.tweets / row.seconds
        rows.append({"approach": row.approach, "tweets_per_s": tweets_per_s,
                     "mean_followers": mean_followers,
                     "ddia_writes_per_s": tweets_per_s * mean_followers,
                     # The load skews authors: the followers of the accounts that did tweet.
                     "authors_mean_followers": row.mean_count_ok,
                     "expected_writes_per_s": tweets_per_s * row.mean_count_ok,
                     "measured_writes_per_s": fanout_writes(lags, "fixed", row.approach) / row.seconds
                     if len(lags) else 0.0})
    return pd.DataFrame(rows)


def write(folder: Path, plan: Plan, phases: list[Phase], lags: list[pd.DataFrame],
          mean_followers: float) -> None:
    table = phase_table(phases)
    table.to_csv(folder / "phases.csv", index=False)
    summary_columns = ["approach", "operation", "count", "throughput_per_s", *PERCENTILES, "errors",
                       "target_rate", "achieved_rate"]
    table[table.phase == "fixed"][summary_columns].to_csv(folder / "summary.csv", index=False)
    max_throughput(table, plan).to_csv(folder / "max_throughput.csv", index=False)
    lag_table = pd.concat(lags, ignore_index=True) if lags else pd.DataFrame(
        columns=["approach", "phase", "tweet_id", "author_id", "followers", "deliveries", "lag_ms", "pulled"])
    lag_table.to_csv(folder / "fanout_lag.csv", index=False)
    if (table.approach == "hybrid").any():
        thresholds(table, lag_table, plan).to_csv(folder / "thresholds.csv", index=False)
    depth_rows = table[table.phase.str.startswith("depth-") & (table.operation == "read")].copy()
    depth_rows.insert(2, "depth", depth_rows.phase.str.removeprefix("depth-").astype(float))
    depth_rows.to_csv(folder / "depths.csv", index=False)
    arithmetic(table, lag_table, mean_followers).to_csv(folder / "arithmetic.csv", index=False)


def table(folder: Path) -> str:
    summary = pd.read_csv(folder / "summary.csv")
    lines = ["", "experiment 1, fixed open-loop rate (summary.csv):",
             summary.round(2).to_string(index=False)]
    if (folder / "max_throughput.csv").exists():
        lines += ["", "experiment 6, step load (max_throughput.csv):",
                  pd.read_csv(folder / "max_throughput.csv").round(1).to_string(index=False)]
    return "\n".join(lines)
