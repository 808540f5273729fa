"""The seven charts, drawn from a run folder alone (its CSVs, samples and meta.json), so
that `python -m bench.charts FOLDER` redraws any run, old or new, and the notebook shows
the same figures. One colour per approach, everywhere.

Each function takes a `Run` and returns a matplotlib Figure; `draw_all` saves them as
PNGs under FOLDER/charts/.
"""

import json
import sys
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.plan import COLOURS

TWITTER_LAG_TARGET_MS = 5_000  # DDIA: Twitter tries to deliver tweets to followers within 5 s
PULLED_FLOOR_MS = 0.1  # where a tweet with no fanout at all is drawn on a log axis


class Run:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.plan = self.meta["plan"]

    def table(self, name: str) -> pd.DataFrame:
        path = self.folder / f"{name}.csv"
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    @cached_property
    def phases(self) -> pd.DataFrame:
        return self.table("phases")

    @cached_property
    def lags(self) -> pd.DataFrame:
        return self.table("fanout_lag")

    def samples(self, approach: str, phase: str) -> pd.DataFrame:
        path = self.folder / "samples" / f"{approach}-{phase}.csv.gz"
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["operation", "latency_us"])

    @property
    def approaches(self) -> list[str]:
        present = set(self.phases.approach) if len(self.phases) else set()
        return [name for name in COLOURS if name in present]

    def caption(self) -> str:
        machine = self.meta["machine"]
        return (f"{self.meta['scale']} scale, {self.meta['started'][:10]}, {machine['cpu_model']}, "
                f"{machine['usable_cpus']} CPUs, git {self.meta['git_sha'][:8]}")


def figure(run: Run, title: str, columns: int = 1, width: float = 6.4):
    fig, axes = plt.subplots(1, columns, figsize=(width * columns, 4.6), squeeze=False)
    fig.suptitle(title, fontsize=12)
    fig.text(0.99, 0.01, run.caption(), ha="right", va="bottom", fontsize=7, color="grey")
    return fig, list(axes[0])


def finish(fig):
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


# --- 1. latency percentiles at a fixed open-loop rate -----------------------------------------

def latency(run: Run):
    fixed = run.phases[run.phases.phase == "fixed"]
    rate = run.plan["fixed_rate"]
    fig, axes = figure(run, f"1. Latency at {rate:g} requests/s, {run.plan['read_ratio']:g} reads per tweet "
                            "(open loop)", columns=2)
    labels = ["p50", "p95", "p99", "p99.9"]
    columns = ["p50_ms", "p95_ms", "p99_ms", "p999_ms"]
    for ax, operation, what in zip(axes, ("read", "tweet"), ("GET /timeline", "POST /tweets")):
        rows = fixed[fixed.operation == operation].set_index("approach")
        width = 0.8 / max(1, len(rows))
        for i, approach in enumerate(a for a in run.approaches if a in rows.index):
            values = rows.loc[approach, columns].to_numpy(dtype=float)
            bars = ax.bar(np.arange(4) + i * width, values, width, color=COLOURS[approach], label=approach)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(np.arange(4) + width * (len(rows) - 1) / 2, labels)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms, log scale)")
        ax.set_title(what)
        ax.legend()
    return finish(fig)


# --- 2. write cost against the author's follower count ----------------------------------------

def write_cost(run: Run):
    fig, axes = figure(run, "2. What a tweet costs, by its author's followers (celebrities tweeting)",
                       columns=2)
    post, fan = axes
    for approach in run.approaches:
        tweets = run.samples(approach, "celebrities")
        tweets = tweets[tweets.operation == "tweet"]
        post.scatter(tweets["count"].clip(lower=1), tweets.latency_us / 1000, s=8, alpha=0.5,
                     color=COLOURS[approach], label=approach)
    post.set(xscale="log", yscale="log", xlabel="author's followers", ylabel="POST /tweets latency (ms)",
             title="the client waits for: the commit")
    post.legend()
    lags = run.lags[run.lags.phase == "celebrities"] if len(run.lags) else run.lags
    for approach in run.approaches:
        rows = lags[lags.approach == approach] if len(lags) else lags
        if approach == "join":
            continue
        fanned = rows[~rows.pulled.astype(bool)]
        fan.scatter(fanned.followers.clip(lower=1), fanned.lag_ms.clip(lower=PULLED_FLOOR_MS), s=8, alpha=0.5,
                    color=COLOURS[approach], label=f"{approach}: fanned out")
        pulled = rows[rows.pulled.astype(bool)]
        if len(pulled):
            fan.scatter(pulled.followers, np.full(len(pulled), PULLED_FLOOR_MS), marker="x",
                        color=COLOURS[approach], label=f"{approach}: pulled on read, no fanout")
    fan.axhline(TWITTER_LAG_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
    fan.set(xscale="log", yscale="log", xlabel="author's followers",
            ylabel="until in every follower's timeline (ms)",
            title="then the fanout owes: one write per follower\n(join-on-read owes nothing)")
    fan.legend(fontsize=7)
    return finish(fig)


# --- 3. fanout lag distribution ---------------------------------------------------------------

def ecdf(ax, values: np.ndarray, **style) -> None:
    if len(values):
        ordered = np.sort(values)
        ax.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", **style)


def fanout_lag(run: Run):
    fig, axes = figure(run, "3. Fanout lag: from the 201 to the tweet in every follower's timeline")
    ax = axes[0]
    threshold = run.plan["celebrity_threshold"]
    lags = run.lags[run.lags.phase.isin(["fixed", "celebrities"])] if len(run.lags) else run.lags
    for approach in ("fanout", "hybrid"):
        rows = lags[(lags.approach == approach) & ~lags.pulled.astype(bool)] if len(lags) else lags
        if not len(rows):
            continue
        celebrity = rows.followers >= threshold
        ecdf(ax, rows.lag_ms[~celebrity].to_numpy(), color=COLOURS[approach],
             label=f"{approach}: accounts under {threshold:,} followers ({(~celebrity).sum()} tweets)")
        ecdf(ax, rows.lag_ms[celebrity].to_numpy(), color=COLOURS[approach], linestyle="--",
             label=f"{approach}: celebrities ({celebrity.sum()} tweets)")
    pulled = int(lags.pulled.astype(bool).sum()) if len(lags) else 0
    ax.axvline(TWITTER_LAG_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
    ax.set(xscale="log", xlabel="fanout lag (ms, log scale)", ylabel="share of tweets",
           title=f"hybrid: {pulled} celebrity tweets were never fanned out (visible at once, pulled on read)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower right")
    return finish(fig)


# --- 4. the crossover: followees and history depth --------------------------------------------

def crossover(run: Run):
    fig, axes = figure(run, "4. Read latency against what the reader follows and how deep history is",
                       columns=2)
    by_followees, by_depth = axes
    for approach in run.approaches:
        reads = run.samples(approach, "fixed")
        reads = reads[reads.operation == "read"]
        if not len(reads):
            continue
        edges = np.unique(np.geomspace(1, max(2, reads["count"].max() + 1), 12).round())
        bins = pd.cut(reads["count"], edges, right=False)
        grouped = reads.groupby(bins, observed=True).latency_us
        middle = [interval.mid for interval in grouped.median().index]
        by_followees.plot(middle, grouped.median() / 1000, marker="o", color=COLOURS[approach],
                          label=f"{approach} p50")
        by_followees.plot(middle, grouped.quantile(0.99) / 1000, linestyle="--", color=COLOURS[approach],
                          label=f"{approach} p99")
    by_followees.set(xscale="log", yscale="log", xlabel="accounts the reader follows",
                     ylabel="GET /timeline latency (ms)", title="at the fixed rate (experiment 1's reads)")
    by_followees.legend(fontsize=7)
    depths = run.table("depths")
    for approach in run.approaches:
        rows = depths[depths.approach == approach].sort_values("depth") if len(depths) else depths
        if len(rows):
            by_depth.plot(rows.depth, rows.p50_ms, marker="o", color=COLOURS[approach], label=f"{approach} p50")
            by_depth.plot(rows.depth, rows.p99_ms, linestyle="--", color=COLOURS[approach],
                          label=f"{approach} p99")
    by_depth.set(xscale="log", yscale="log", xlabel="tweets per author (history depth)",
                 ylabel="GET /timeline latency (ms)",
                 title=f"{run.plan['depth_users']:,} users, {run.plan['depth_clients']} clients, reads only")
    by_depth.legend(fontsize=7)
    return finish(fig)


# --- 5. the hybrid's threshold ----------------------------------------------------------------

def thresholds(run: Run):
    fig, axes = figure(run, "5. Hybrid: where to stop fanning out (CELEBRITY_THRESHOLD)")
    ax = axes[0]
    sweep = run.table("thresholds")
    if len(sweep):
        ax.plot(sweep.celebrity_threshold, sweep.read_p99_ms, marker="o", color=COLOURS["hybrid"],
                label="hybrid read p99")
        writes = ax.twinx()
        writes.plot(sweep.celebrity_threshold, sweep.fanout_writes_per_s, marker="s", linestyle="--",
                    color="black", label="hybrid timeline writes/s")
        writes.set_ylabel("timeline writes/s (fanout)")
        writes.set_ylim(bottom=0)
        writes.legend(loc="upper right", fontsize=7)
    same_load = run.phases[(run.phases.phase == "celebrities") & (run.phases.operation == "read")]
    for approach in ("join", "fanout"):
        row = same_load[same_load.approach == approach]
        if len(row):
            ax.axhline(float(row.p99_ms.iloc[0]), color=COLOURS[approach], linestyle=":",
                       label=f"{approach} read p99")
    ax.set(xscale="log", xlabel="CELEBRITY_THRESHOLD (followers, log scale)", ylabel="read p99 (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=7)
    return finish(fig)


# --- 6. maximum throughput under the SLO ------------------------------------------------------

def max_throughput(run: Run):
    slo = run.plan["slo_ms"]
    fig, axes = figure(run, f"6. Step load: read p99 as the offered rate rises (SLO {slo:g} ms)")
    ax = axes[0]
    steps = run.phases[run.phases.phase.str.startswith("step-") & (run.phases.operation == "read")]
    best = run.table("max_throughput").set_index("approach") if len(steps) else pd.DataFrame()
    for approach in run.approaches:
        rows = steps[steps.approach == approach].sort_values("target_rate")
        if not len(rows):
            continue
        held = best.loc[approach, "max_rate_per_s"] if approach in best.index else 0
        ax.plot(rows.achieved_rate, rows.p99_ms, marker="o", color=COLOURS[approach],
                label=f"{approach}: {held:,.0f} req/s within the SLO, {rows.achieved_rate.max():,.0f} at most")
    ax.axhline(slo, color="grey", linestyle=":", label="SLO")
    ax.set(xscale="log", yscale="log", xlabel="achieved requests/s (log scale)", ylabel="read p99 (ms)")
    ax.legend(fontsize=8)
    return finish(fig)


# --- 7. DDIA's arithmetic ---------------------------------------------------------------------

def arithmetic(run: Run):
    fig, axes = figure(run, "7. Timeline writes per second: DDIA's arithmetic beside the measurement")
    ax = axes[0]
    table = run.table("arithmetic")
    table = table[table.approach != "join"] if len(table) else table
    series = [("ddia_writes_per_s", "tweets/s x mean followers (DDIA)", "lightgrey"),
              ("expected_writes_per_s", "tweets/s x followers of the actual authors", "darkgrey"),
              ("measured_writes_per_s", "measured (fanout log)", None)]
    x = np.arange(len(table))
    for i, (column, label, colour) in enumerate(series):
        colours = [colour or COLOURS[a] for a in table.approach]
        bars = ax.bar(x + (i - 1) * 0.27, table[column], 0.27, color=colours, label=label, edgecolor="black")
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(x, table.approach)
    ax.set_ylabel("timeline writes/s")
    if len(table):  # headroom above the bars for the legend
        ax.set_ylim(top=1.4 * table[[column for column, *_ in series]].to_numpy().max())
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("at Twitter's 2012 scale: 4.6k tweets/s x 75 followers = 345k writes/s", fontsize=9)
    return finish(fig)


CHARTS = {"1-latency": latency, "2-write-cost": write_cost, "3-fanout-lag": fanout_lag,
          "4-crossover": crossover, "5-thresholds": thresholds, "6-max-throughput": max_throughput,
          "7-arithmetic": arithmetic}


def draw_all(folder: str | Path) -> list[Path]:
    run = Run(folder)
    out = run.folder / "charts"
    out.mkdir(exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        fig = draw(run)
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)
        written.append(out / f"{name}.png")
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.charts RESULTS_FOLDER")
    for path in draw_all(sys.argv[1]):
        print(path)
