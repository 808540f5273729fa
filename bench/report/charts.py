"""The charts, drawn from a run folder alone (its CSVs, samples and meta.json), so
that `python -m bench.report.charts FOLDER` redraws any run, old or new, and the notebook shows
the same figures. One colour per approach, everywhere.

Each chart is a function of a `Run` that returns a matplotlib Figure, or None where the run
has no data for it; `draw_all` saves them as PNGs under FOLDER/charts/, and the notebook calls
the same functions in its cells. Each title is the chart's finding, computed from the data: two
designs are called different only where their spreads (min..max over repeats) do not overlap.
"""

import json
import re
import sys
import textwrap
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator

from bench.plan import COLOURS
from bench.report.model import design_label
from bench.report.summary import CELEBRITY_PHASE, FIXED_PHASE

TWITTER_LAG_TARGET_MS = 5_000  # DDIA: Twitter tries to deliver tweets to followers within 5 s
PULLED_FLOOR_MS = 0.1  # where a tweet with no fanout at all is drawn on a log axis


class Run:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.plan = self.meta["plan"]
        self._fixed_reads: dict[str, pd.DataFrame] = {}

    def table(self, name: str) -> pd.DataFrame:
        path = self.folder / f"{name}.csv"
        try:
            return pd.read_csv(path)
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return pd.DataFrame()

    @cached_property
    def phases(self) -> pd.DataFrame:
        return self.table("phases")

    @cached_property
    def lags(self) -> pd.DataFrame:
        return self.table("fanout_lag")

    def fixed_reads(self, approach: str) -> pd.DataFrame:
        """The reads of every repeat of the fixed phase (the reader's followees as `count`),
        read from disk once per design however many charts ask."""
        if approach not in self._fixed_reads:
            reads = pd.concat([self.samples(approach, phase) for phase in self.repeats(FIXED_PHASE, "fixed")])
            self._fixed_reads[approach] = reads[reads.operation == "read"]
        return self._fixed_reads[approach]

    def repeats(self, pattern: str, first: str) -> list[str]:
        """The names of every repeat of a phase (`pattern`); an older run has only `first`."""
        names = sorted({p for p in self.phases.phase if re.match(pattern, p)}) if len(self.phases) else []
        return names or [first]

    def samples(self, approach: str, phase: str) -> pd.DataFrame:
        path = self.folder / "samples" / f"{approach}-{phase}.csv.gz"
        return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["operation", "latency_us"])

    @property
    def approaches(self) -> list[str]:
        present = set(self.phases.approach) if len(self.phases) else set()
        return [name for name in COLOURS if name in present]

    def caption(self) -> str:
        machine = self.meta["machine"]
        return (
            f"{self.meta['scale']} scale, {self.meta['started'][:10]}, {machine['cpu_model']}, "
            f"{machine['usable_cpus']} CPUs, git {self.meta['git_sha'][:8]}"
        )


def figure(run: Run, title: str, columns: int = 1, width: float = 6.4):
    fig, axes = plt.subplots(1, columns, figsize=(width * columns, 4.6), squeeze=False)
    # A finding is a sentence: wrapped to the figure's width, never cut at its edges.
    lines = [textwrap.fill(line, int(width * columns * 9.5)) for line in title.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=12)
    fig.text(0.99, 0.01, run.caption(), ha="right", va="bottom", fontsize=7, color="grey")
    return fig, list(axes[0])


def plain_log_ticks(ax, axis: str = "x") -> None:
    """Log axes labelled 2, 20, 200 rather than 2x10^0."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = target.get_view_interval()
    # 1, 2, 5 per decade on a short axis; on one of 3 decades or more, the decades alone.
    subs = (1, 2, 5) if high / max(low, 1e-9) < 1000 else (1,)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:,.10g}"))
    target.set_minor_formatter(plt.NullFormatter())


def compare(
    a: str,
    b: str,
    a_range: tuple[float, float, float],
    b_range: tuple[float, float, float],
    what: str,
    unit: str = "",
    more_is_better: bool = True,
) -> str:
    """ "a <what> 1.8x b's" where the spreads part, else "a and b overlap" (median, min, max)."""
    (a_med, a_lo, a_hi), (b_med, b_lo, b_hi) = a_range, b_range
    if a_lo > b_hi or b_lo > a_hi:
        return (
            f"{a} {what} {a_med / b_med:.1f}x {b}'s ({a_med:,.0f} vs {b_med:,.0f}{unit})"
            if b_med
            else f"{a} {what} {a_med:,.0f}{unit}, {b} 0"
        )
    return f"{a} and {b} overlap ({a_lo:,.0f}-{a_hi:,.0f} vs {b_lo:,.0f}-{b_hi:,.0f}{unit})"


def finish(fig):
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def label_above_whiskers(ax, xs, values, tops, fmt: str) -> None:
    """Each bar's value written above its whisker, where no whisker or bar crosses it."""
    for x, value, top in zip(xs, values, tops, strict=True):
        if np.isfinite(value):
            ax.annotate(
                format(value, fmt),
                (x, top),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
            )


# --- 1. latency percentiles at a fixed open-loop rate -----------------------------------------


def latency_finding(reads: pd.DataFrame, rate: float) -> str:
    """What the read tails at the fixed rate say: one design's apart from another's, or none."""
    title = f"1. Latency at {rate:g} requests/s (open loop)"
    if len(reads) < 2:
        return title
    runs = int(reads.repeats.min())
    if reads.p99_ms_min.max() <= reads.p99_ms_max.min():  # one p99 lies in every design's spread
        return (
            f"1. At {rate:g} req/s no design's read tail stands apart: every p99 lies in "
            f"{reads.p99_ms_median.min():.1f}-{reads.p99_ms_median.max():.1f} ms (median of {runs} runs), "
            "the spreads overlapping"
        )
    # No point in every spread: the spread lowest at its top lies wholly below the highest at its bottom.
    short, long = reads.p99_ms_max.idxmin(), reads.p99_ms_min.idxmax()
    return (
        f"1. At {rate:g} req/s {short}'s read tail is shorter than {long}'s: p99 "
        f"{reads.p99_ms_median[short]:.1f} ms against {reads.p99_ms_median[long]:.1f} "
        f"(median of {runs} runs, the spreads apart)"
    )


def latency(run: Run):
    table = run.table("latency")
    rate = run.plan["fixed_rate"]
    fixed = table[table.mix == "fixed"] if len(table) else table
    reads = fixed[fixed.operation == "read"].set_index("approach") if len(fixed) else fixed
    fig, axes = figure(run, latency_finding(reads, rate), columns=2)
    labels = ["p50", "p95", "p99", "p99.9"]
    columns = ["p50_ms", "p95_ms", "p99_ms", "p999_ms"]
    for ax, operation, what in zip(axes, ("read", "tweet"), ("GET /timeline", "POST /tweets"), strict=True):
        rows = fixed[fixed.operation == operation].set_index("approach") if len(fixed) else fixed
        width = 0.8 / max(1, len(rows))
        for i, approach in enumerate(a for a in run.approaches if a in rows.index):
            median = rows.loc[approach, [f"{c}_median" for c in columns]].to_numpy(dtype=float)
            low = median - rows.loc[approach, [f"{c}_min" for c in columns]].to_numpy(dtype=float)
            high = rows.loc[approach, [f"{c}_max" for c in columns]].to_numpy(dtype=float) - median
            runs = int(rows.loc[approach, "repeats"])
            bars = ax.bar(
                np.arange(4) + i * width,
                median,
                width,
                yerr=[low, high],
                capsize=2,
                color=COLOURS[approach],
                label=f"{approach} ({runs} runs)",
            )
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(np.arange(4) + width * (len(rows) - 1) / 2, labels)
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
        ax.set_ylabel("latency (ms, log scale): median of runs, bars min-max")
        ax.set_title(what)
        ax.legend(fontsize=7)
    return finish(fig)


# --- 2. write cost against the author's follower count ----------------------------------------


def write_cost_finding(run: Run) -> str:
    lags = run.lags
    lags = lags[lags.phase.str.match(CELEBRITY_PHASE) & ~lags.pulled.astype(bool)] if len(lags) else []
    threshold = run.plan["celebrity_threshold"]
    fanout = lags[(lags.approach == "fanout") & (lags.followers >= threshold)] if len(lags) else []
    if not len(fanout):
        return "2. What a tweet costs, by its author's followers (celebrities tweeting)"
    return (
        f"2. The 201 comes after the commit alone; fanout then took {fanout.lag_ms.median():,.0f} ms "
        f"(median of {len(fanout)} tweets) to deliver a tweet of an account over {threshold:,} "
        "followers, which the hybrid pulls instead"
    )


def write_cost(run: Run):
    fig, axes = figure(run, write_cost_finding(run), columns=2)
    post, fan = axes
    phases = run.repeats(CELEBRITY_PHASE, "celebrities")
    for approach in run.approaches:
        tweets = pd.concat([run.samples(approach, phase) for phase in phases])
        tweets = tweets[tweets.operation == "tweet"]
        post.scatter(
            tweets["count"].clip(lower=1),
            tweets.latency_us / 1000,
            s=8,
            alpha=0.5,
            color=COLOURS[approach],
            label=approach,
        )
    post.set(
        xscale="log",
        yscale="log",
        xlabel="author's followers",
        ylabel="POST /tweets latency (ms)",
        title="the client waits for: the commit",
    )
    post.legend()
    lags = run.lags[run.lags.phase.str.match(CELEBRITY_PHASE)] if len(run.lags) else run.lags
    for approach in run.approaches:
        rows = lags[lags.approach == approach] if len(lags) else lags
        if approach == "join":
            continue
        fanned = rows[~rows.pulled.astype(bool)]
        fan.scatter(
            fanned.followers.clip(lower=1),
            fanned.lag_ms.clip(lower=PULLED_FLOOR_MS),
            s=8,
            alpha=0.5,
            color=COLOURS[approach],
            label=f"{approach}: fanned out",
        )
        pulled = rows[rows.pulled.astype(bool)]
        if len(pulled):
            fan.scatter(
                pulled.followers,
                np.full(len(pulled), PULLED_FLOOR_MS),
                marker="x",
                color=COLOURS[approach],
                label=f"{approach}: pulled on read, no fanout",
            )
    fan.axhline(TWITTER_LAG_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
    fan.set(
        xscale="log",
        yscale="log",
        xlabel="author's followers",
        ylabel="until in every follower's timeline (ms)",
        title="then the fanout owes: one write per follower\n(join-on-read owes nothing)",
    )
    fan.legend(fontsize=7)
    return finish(fig)


# --- 3. fanout lag distribution ---------------------------------------------------------------


def ecdf(ax, values: np.ndarray, **style) -> None:
    if len(values):
        ordered = np.sort(values)
        ax.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", **style)


def fanout_lag(run: Run):
    title = "3. Fanout lag: from the 201 to the tweet in every follower's timeline"
    # Every repeat of both latency mixes: fixed, fixed-2, ..., celebrities, celebrities-2, ...
    lags = run.lags[run.lags.phase.str.match(r"^(fixed|celebrities)(-\d+)?$")] if len(run.lags) else run.lags
    fanned = lags[~lags.pulled.astype(bool)] if len(lags) else lags
    if len(fanned) and {"fanout", "hybrid"} <= set(fanned.approach):
        # p99 of each celebrities phase, then its median and range over the repeats
        celebrities = fanned[fanned.phase.str.startswith("celebrities")]
        p99 = celebrities.groupby(["approach", "phase"]).lag_ms.quantile(0.99).groupby("approach")
        low, mid, high = p99.min(), p99.median(), p99.max()
        title = "3. With celebrities tweeting, fanout lag p99: " + ", ".join(
            f"{a} {mid[a]:,.0f} ms ({low[a]:,.0f}-{high[a]:,.0f})" for a in ("fanout", "hybrid") if a in mid
        )
    fig, axes = figure(run, title)
    ax = axes[0]
    threshold = run.plan["celebrity_threshold"]
    for approach in ("fanout", "hybrid"):
        rows = lags[(lags.approach == approach) & ~lags.pulled.astype(bool)] if len(lags) else lags
        if not len(rows):
            continue
        celebrity = rows.followers >= threshold
        ecdf(
            ax,
            rows.lag_ms[~celebrity].to_numpy(),
            color=COLOURS[approach],
            label=f"{approach}: accounts under {threshold:,} followers ({(~celebrity).sum()} tweets)",
        )
        ecdf(
            ax,
            rows.lag_ms[celebrity].to_numpy(),
            color=COLOURS[approach],
            linestyle="--",
            label=f"{approach}: celebrities ({celebrity.sum()} tweets)",
        )
    pulled = int(lags.pulled.astype(bool).sum()) if len(lags) else 0
    ax.axvline(TWITTER_LAG_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
    ax.set(
        xscale="log",
        xlabel="fanout lag (ms, log scale)",
        ylabel="share of tweets",
        title=f"hybrid: {pulled} celebrity tweets were never fanned out (visible at once, pulled on read)",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower right")
    return finish(fig)


# --- 4. the crossover: followees and history depth --------------------------------------------


def latency_by_followees(reads: pd.DataFrame, bins: int):
    """Reads grouped into `bins` log-spaced bins of the reader's followees: the bins'
    middles (for a log axis) and each bin's latencies (µs)."""
    edges = np.unique(np.geomspace(1, max(2, reads["count"].max() + 1), bins).round())
    grouped = reads.groupby(pd.cut(reads["count"], edges, right=False), observed=True).latency_us
    return [interval.mid for interval in grouped.median().index], grouped


def read_p50_by_followees(run: Run, approach: str) -> tuple[float, float] | None:
    """Read p50 (ms) of the tenth of readers following fewest, and of the tenth following most."""
    reads = run.fixed_reads(approach)
    if not len(reads):
        return None
    few = reads[reads["count"] <= reads["count"].quantile(0.1)].latency_us.median()
    many = reads[reads["count"] >= reads["count"].quantile(0.9)].latency_us.median()
    return few / 1000, many / 1000


def crossover_finding(run: Run) -> str:
    join, fanout = read_p50_by_followees(run, "join"), read_p50_by_followees(run, "fanout")
    if not (join and fanout):
        return "4. Read latency against the reader's followees (open loop) and history depth (closed loop)"
    return (
        f"4. A join read's p50 goes from {join[0]:.1f} ms (the tenth following fewest) to {join[1]:.1f} "
        f"(most); a cached read stays at {min(fanout):.1f}-{max(fanout):.1f} ms"
    )


def draw_reads_by_followees(ax, run: Run, bins: int, tails: bool) -> None:
    """Each design's read p50 (and p99 where `tails`) in the fixed phase, by the reader's followees."""
    for approach in run.approaches:
        reads = run.fixed_reads(approach)
        if not len(reads):
            continue
        middle, grouped = latency_by_followees(reads, bins)
        p50_label = f"{approach} p50" if tails else approach
        ax.plot(middle, grouped.median() / 1000, marker="o", color=COLOURS[approach], label=p50_label)
        if tails:
            p99 = grouped.quantile(0.99) / 1000
            ax.plot(middle, p99, linestyle="--", color=COLOURS[approach], label=f"{approach} p99")
    ax.set(xscale="log", yscale="log", xlabel="accounts the reader follows")


def draw_reads_by_depth(ax, run: Run, depths: pd.DataFrame) -> None:
    for approach in run.approaches:
        rows = depths[depths.approach == approach].sort_values("depth")
        ax.plot(rows.depth, rows.p50_ms, marker="o", color=COLOURS[approach], label=f"{approach} p50")
        ax.plot(rows.depth, rows.p99_ms, linestyle="--", color=COLOURS[approach], label=f"{approach} p99")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tweets per author (history depth)",
        ylabel=f"closed-loop latency, {run.plan['depth_clients']} clients (ms): not service time",
        title=f"{run.plan['depth_users']:,} users, reads only",
    )


def crossover(run: Run):
    depths = run.table("depths")
    # Without the depth sweep (EXPERIMENT=depths) the chart is its followees panel alone.
    if len(depths):
        fig, axes = figure(run, crossover_finding(run), columns=2)
        draw_reads_by_depth(axes[1], run, depths)
    else:
        fig, axes = figure(run, crossover_finding(run), width=8)
    draw_reads_by_followees(axes[0], run, bins=12, tails=True)
    axes[0].set(ylabel="GET /timeline latency (ms)", title="open loop at the fixed rate (every repeat)")
    for ax in axes:
        plain_log_ticks(ax, "x")
        plain_log_ticks(ax, "y")
        ax.legend(fontsize=7)
    return finish(fig)


# --- 5. the hybrid's threshold ----------------------------------------------------------------


def thresholds(run: Run):
    """None where the run did not sweep the threshold (EXPERIMENT=thresholds): no empty axes."""
    sweep = run.table("thresholds")
    if not len(sweep):
        return None
    sweep = sweep.sort_values("celebrity_threshold")
    best = sweep.loc[sweep.read_p99_ms.idxmin()]
    fig, axes = figure(
        run,
        f"5. The hybrid's read p99 was lowest, {best.read_p99_ms:.1f} ms, at a threshold of "
        f"{best.celebrity_threshold:,.0f} followers, with {best.fanout_writes_per_s:,.0f} timeline "
        "writes/s (single runs)",
        width=8,
    )
    ax = axes[0]
    ax.plot(
        sweep.celebrity_threshold,
        sweep.read_p99_ms,
        marker="o",
        color=COLOURS["hybrid"],
        label="hybrid read p99",
    )
    writes = ax.twinx()
    writes.plot(
        sweep.celebrity_threshold,
        sweep.fanout_writes_per_s,
        marker="s",
        linestyle="--",
        color="black",
        label="hybrid timeline writes/s",
    )
    writes.set_ylabel("timeline writes/s (fanout)")
    # Headroom on both axes: the two legends sit above every line and marker.
    writes.set_ylim(0, 1.4 * sweep.fanout_writes_per_s.max())
    writes.legend(loc="upper right", fontsize=7)
    phases = run.phases if len(run.phases) else pd.DataFrame(columns=["phase", "operation", "approach"])
    same_load = phases[(phases.phase == "celebrities") & (phases.operation == "read")]
    for approach in ("join", "fanout"):
        row = same_load[same_load.approach == approach]
        if len(row):
            ax.axhline(
                float(row.p99_ms.iloc[0]),
                color=COLOURS[approach],
                linestyle=":",
                label=f"{approach} read p99",
            )
    ax.set(xscale="log", xlabel="CELEBRITY_THRESHOLD (followers, log scale)", ylabel="read p99 (ms)")
    ax.set_ylim(0, 1.4 * max(np.max(line.get_ydata()) for line in ax.get_lines()))
    ax.set_xticks(sweep.celebrity_threshold, [f"{t:,.0f}" for t in sweep.celebrity_threshold])  # the swept
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend(loc="upper left", fontsize=7)
    return finish(fig)


# --- 6. maximum throughput under the SLO ------------------------------------------------------


def max_throughput(run: Run):
    slo = run.plan["slo_ms"]
    table = run.table("capacity")
    if "slo" in table:  # the delivery rule's (bench/experiments/capacity.py); older runs had only read's
        held = {k: f"held_{k}" for k in ("median", "min", "max")}
        table = table[table.slo == "delivery"].rename(columns=held)
    title = f"6. Capacity within the delivery SLO (read, tweet p99 {slo:g} ms; fanout lag p99 5 s)"
    findings = []
    for mix, label in (("ddia", "DDIA's mix"), ("celebrities", "celebrities tweeting")):
        rows = table[table.mix == mix].set_index("approach") if len(table) else table
        if len(rows) >= 2:
            ranked = rows.held_median.sort_values(ascending=False).index.tolist()
            rng = lambda a, rows=rows: tuple(rows.loc[a, ["held_median", "held_min", "held_max"]])  # noqa: E731
            pairs = [
                compare(a, b, rng(a), rng(b), "holds", " req/s")
                for a, b in zip(ranked, ranked[1:], strict=False)
            ]
            # The top two tied: the finding is then what they both beat.
            findings.append(f"{label}: " + (", ".join(pairs) if "overlap" in pairs[0] else pairs[0]))
    if findings:
        title = "6. " + ";\n".join(findings)
    fig, axes = figure(run, title, width=9)
    ax = axes[0]
    mixes = ["ddia", "celebrities"]
    width = 0.8 / max(1, len(run.approaches))
    for i, approach in enumerate(run.approaches):
        rows = table[table.approach == approach].set_index("mix").reindex(mixes) if len(table) else None
        if rows is None or rows.held_median.isna().all():
            continue
        median, low, high = (rows[c].to_numpy(dtype=float) for c in ("held_median", "held_min", "held_max"))
        x = np.arange(2) + i * width
        errors = [median - low, high - median]
        ax.bar(x, median, width, yerr=errors, capsize=3, color=COLOURS[approach], label=approach)
        label_above_whiskers(ax, x, median, high, ",.0f")
    ax.set_xticks(
        np.arange(2) + width * (len(run.approaches) - 1) / 2,
        ["DDIA's mix (65 reads per tweet)", "celebrities tweeting"],
    )
    runs = int(table.runs.min()) if len(table) else 0
    ax.set_ylabel(f"highest rate held (req/s)\nmedian of {runs} searches, whiskers min-max")
    if len(table):  # headroom above the tallest whisker, so that the legend hides no label
        ax.set_ylim(top=1.25 * table.held_max.max())
    ax.legend(fontsize=8, loc="upper center", ncols=3)
    return finish(fig)


# --- 7. DDIA's arithmetic ---------------------------------------------------------------------


def arithmetic(run: Run):
    table = run.table("arithmetic")
    table = table[table.approach != "join"] if len(table) else table
    title = "7. Timeline writes per second: DDIA's arithmetic beside Redis's own count"
    if {"fanout", "hybrid"} <= set(table.approach if len(table) else ()):
        measured = table.set_index("approach").measured_writes_per_s
        title = (
            f"7. With celebrities tweeting the hybrid made {measured['hybrid']:,.0f} timeline writes/s, "
            f"{measured['hybrid'] / measured['fanout']:.0%} of fanout's {measured['fanout']:,.0f} "
            "(Redis's count)"
        )
    fig, axes = figure(run, title, width=8)
    ax = axes[0]
    series = [
        ("ddia_writes_per_s", "tweets/s x mean followers (DDIA)", "lightgrey"),
        ("expected_writes_per_s", "tweets/s x followers of the actual authors", "darkgrey"),
        ("measured_writes_per_s", "measured: Redis LPUSH+LINSERT calls (INFO commandstats)", None),
    ]
    x = np.arange(len(table))
    for i, (column, label, colour) in enumerate(series if len(table) else ()):
        colours = [colour or COLOURS[a] for a in table.approach]
        bars = ax.bar(x + (i - 1) * 0.27, table[column], 0.27, color=colours, label=label, edgecolor="black")
        if column != "measured_writes_per_s" or "measured_max" not in table:
            ax.bar_label(bars, fmt="{:,.0f}", fontsize=7)
    ax.set_ylabel("timeline writes/s")
    if len(table) and "measured_max" in table:
        ax.errorbar(
            x + 0.27,
            table.measured_writes_per_s,
            fmt="none",
            ecolor="black",
            capsize=3,
            yerr=[
                table.measured_writes_per_s - table.measured_min,
                table.measured_max - table.measured_writes_per_s,
            ],
        )
        label_above_whiskers(ax, x + 0.27, table.measured_writes_per_s, table.measured_max, ",.0f")
    if len(table):  # headroom above the bars and whiskers for the legend
        ax.set_xticks(x, table.approach)
        tops = [c for c in (*(column for column, *_ in series), "measured_max") if c in table]
        ax.set_ylim(top=1.4 * table[tops].to_numpy().max())
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(
        "the celebrities phases (half the authors by follower rank);\n"
        "at Twitter's 2012 scale: 4.6k tweets/s x 75 followers = 345k writes/s",
        fontsize=8,
    )
    return finish(fig)


# --- 8. DDIA's question: where each design wins -----------------------------------------------


def ddia_answer(run: Run):
    sweep = run.table("celebrity_sweep")
    title = "8. What a read costs as followees grow, what a tweet costs as followers grow"
    if len(sweep) and {"fanout", "hybrid"} <= set(sweep.approach):
        top = sweep.followers.max()
        at = sweep[sweep.followers == top].set_index("approach")
        cpu = at.app_cpu_ms_median + at.redis_cpu_ms_median
        title = (
            f"8. A tweet to {top:,} followers costs fanout {cpu['fanout']:,.0f} ms of CPU, "
            f"the hybrid {cpu['hybrid']:,.1f}"
        )
        join = read_p50_by_followees(run, "join")
        if join:
            title += (
                f"; a join read takes {join[0]:.1f} ms for the 10 % following fewest, "
                f"{join[1]:.1f} for the 10 % following most"
            )
    fig, axes = figure(run, title, columns=2)
    reads_ax, tweets_ax = axes
    draw_reads_by_followees(reads_ax, run, bins=10, tails=False)
    for approach in run.approaches:
        rows = sweep[sweep.approach == approach].sort_values("followers") if len(sweep) else sweep
        if len(rows):
            total = rows.app_cpu_ms_median + rows.redis_cpu_ms_median
            low = rows.app_cpu_ms_min + rows.redis_cpu_ms_min
            high = rows.app_cpu_ms_max + rows.redis_cpu_ms_max
            tweets_ax.errorbar(
                rows.followers,
                total,
                yerr=[total - low, high - total],
                marker="o",
                capsize=3,
                color=COLOURS[approach],
                label=f"{approach}: server CPU per tweet",
            )
    reads_ax.set(ylabel="GET /timeline p50 (ms)", title="a read, open loop at the fixed rate")
    tweets_ax.set(
        xscale="log",
        yscale="log",
        xlabel="the author's followers",
        ylabel="CPU ms per tweet, app + Redis, until delivered",
        title="a tweet, the celebrity sweep (bars: min-max of its tweets)",
    )
    for ax in axes:
        plain_log_ticks(ax, "x")
        plain_log_ticks(ax, "y")
        ax.legend(fontsize=7)
    return finish(fig)


# --- 9. the capacity model --------------------------------------------------------------------


# The model's components, bottom up: the hatch tells them apart, the colour the design.
CORE_LAYERS = (("app", "", "app"), ("redis", "//", "Redis"), ("postgres", "..", "PostgreSQL"))


def stacked_cores(ax, labels, model: pd.DataFrame, colours: list[str]) -> None:
    """Each design's cores as one bar, a layer per component the run measured."""
    bottom = np.zeros(len(model))
    for component, hatch, name in CORE_LAYERS:
        if f"{component}_cores" in model:
            layer = model[f"{component}_cores"].to_numpy()
            ax.bar(labels, layer, bottom=bottom, color=colours, hatch=hatch, edgecolor="black", label=name)
            bottom = bottom + layer


def with_designs(model: pd.DataFrame) -> pd.DataFrame:
    """The model's rows (bench.report.model.table), each named by its design ("hybrid T=10,000")."""
    thresholds = zip(model.approach, model.celebrity_threshold, strict=True)
    return model.assign(design=[design_label(approach, threshold) for approach, threshold in thresholds])


def cores_finding(model: pd.DataFrame, site: str) -> str:
    """Which design needs the fewest cores at `site`, and whether the next one's range is apart."""
    ranked = with_designs(model).sort_values("total_cores")
    best = ranked.iloc[0]
    title = (
        f"9. At {site} on this run's costs, {best.design} needs the fewest cores: "
        f"{best.total_cores:,.0f} ({best.total_cores_min:,.0f}-{best.total_cores_max:,.0f})"
    )
    if len(ranked) > 1:
        second = ranked.iloc[1]
        apart = best.total_cores_max < second.total_cores_min
        title += (
            f"; next {second.design}: {second.total_cores:,.0f} "
            f"({second.total_cores_min:,.0f}-{second.total_cores_max:,.0f}"
            + ("" if apart else ", overlapping")
            + ")"
        )
    return title


def draw_cores(ax, model: pd.DataFrame) -> None:
    model = with_designs(model)
    labels = model.design.str.replace(" T=", "\nT=")
    stacked_cores(ax, labels, model, [COLOURS[a] for a in model.approach])
    if "total_cores_min" in model:
        ax.errorbar(
            labels,
            model.total_cores,
            fmt="none",
            ecolor="black",
            capsize=4,
            yerr=[model.total_cores - model.total_cores_min, model.total_cores_max - model.total_cores],
        )
    ax.set_ylabel("cores (whiskers: every cost at its min, max)")
    ax.legend(fontsize=8)


def cores(run: Run, model: pd.DataFrame):
    """The cores a site needs (bench.report.model.table of any Site), priced with this run's costs."""
    site = f"{model.reads_per_s.iloc[0]:,.0f} reads/s and {model.tweets_per_s.iloc[0]:,.0f} tweets/s"
    fig, axes = figure(run, cores_finding(model, site), width=8)
    draw_cores(axes[0], model)
    return finish(fig)


def twitter_2012(run: Run):
    model = run.table("twitter_2012")
    assumptions = run.table("twitter_2012_assumptions")
    title = "9. Cores for Twitter 2012 (300k reads/s, 4.6k tweets/s), from this run's costs"
    fig, axes = figure(run, cores_finding(model, "Twitter 2012") if len(model) else title, columns=2)
    ax, notes = axes
    if len(model):
        draw_cores(ax, model)
    notes.axis("off")
    lines = [
        textwrap.fill(f"- {r.assumption}: {r.value} ({r.why})", 95, subsequent_indent="   ")
        for r in assumptions.itertuples()
    ]
    notes.text(-0.05, 1, "\n".join(lines), va="top", fontsize=6)
    return finish(fig)


CHARTS = {
    "1-latency": latency,
    "2-write-cost": write_cost,
    "3-fanout-lag": fanout_lag,
    "4-crossover": crossover,
    "5-thresholds": thresholds,
    "6-max-throughput": max_throughput,
    "7-arithmetic": arithmetic,
    "8-ddia-answer": ddia_answer,
    "9-twitter-2012": twitter_2012,
}


# Why a chart that draws None has no data in the run: said in one line instead of an empty chart.
WHY_NOT_DRAWN = {
    "5-thresholds": "the run did not sweep CELEBRITY_THRESHOLD (make bench EXPERIMENT=thresholds)",
}


def draw_all(folder: str | Path) -> list[Path]:
    run = Run(folder)
    out = run.folder / "charts"
    out.mkdir(exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        path = out / f"{name}.png"
        fig = draw(run)
        if fig is None:
            path.unlink(missing_ok=True)  # an older drawing of the same run would contradict the line
            print(f"{path} not drawn: {WHY_NOT_DRAWN[name]}")
            continue
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.report.charts RESULTS_FOLDER")
    from bench.report import model  # twitter_2012.csv is derived from cpu.csv: re-derived with the charts

    model.write(Path(sys.argv[1]))
    for path in draw_all(sys.argv[1]):
        print(path)
