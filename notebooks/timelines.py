# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DDIA's home timeline, three ways: a lesson from one bench run
#
# Chapter 1 of *Designing Data-Intensive Applications* (DDIA) asks how Twitter should build
# each user's **home timeline**, the newest tweets of everyone they follow. It gives three
# answers, and this repository runs all three on one machine under the same load:
#
# - **join** (join-on-read, `approach1.py`): a tweet is one row in SQLite; a timeline read
#   is a join, the newest tweets of every account the reader follows.
# - **fanout** (fanout-on-write, `approach2.py`): a tweet is one row, then one write into
#   *each follower's* cached timeline in Redis; a read is one cache read.
# - **hybrid** (`approach3_hybrid.py`): as fanout, except for **celebrities**, accounts with
#   at least `CELEBRITY_THRESHOLD` followers, whose tweets are never fanned out but kept in a
#   short list per celebrity in Redis; a read merges the cached timeline with the lists of
#   the celebrities the reader follows, in one call.
#
# Every figure below is computed from one run folder of `make bench`: by default the
# reference run, `results/2026-11-21T141805Z-default/`; set the environment variable
# `RESULTS` to another folder to read yours. Each section says what it finds, shows the
# table it draws from, then draws it. The last section is yours: change DDIA's inputs and
# watch a small cost model, fed with this run's measured costs, change its answer.
#
# Open it with `make notebook`, or run it headless with
# `.venv/bin/python -m bench.notebook results/<run>` (it lands in `results/<run>/notebook.ipynb`).

# %%
import json
import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

ROOT = Path.cwd() if (Path.cwd() / "bench").is_dir() else Path.cwd().parent
REFERENCE_RUN = ROOT / "results" / "2026-11-21T141805Z-default"
folder = Path(os.environ.get("RESULTS") or REFERENCE_RUN)
if not (folder / "meta.json").is_file():
    raise SystemExit(f"{folder} is not a bench run folder (no meta.json): run `make bench`, or set RESULTS")
print(folder.name)

meta = json.loads((folder / "meta.json").read_text())
plan = meta["plan"]
DESIGNS = ["join", "fanout", "hybrid"]
COLOURS = {"join": "#1f77b4", "fanout": "#d62728", "hybrid": "#2ca02c"}  # the same as bench/plan.py's
THRESHOLD = plan["celebrity_threshold"]  # followers from which the hybrid stops fanning out
TWITTER_TARGET_MS = 5_000  # DDIA: Twitter aims to deliver a tweet to its followers within 5 s


def table(name: str) -> pd.DataFrame:
    path = folder / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def samples(design: str, phase: str) -> pd.DataFrame:
    """Every request of one phase: time, operation, status, latency_us and count (a reader's
    followees, or a tweet's author's followers)."""
    return pd.read_csv(folder / "samples" / f"{design}-{phase}.csv.gz")


def say(text: str) -> None:
    display(Markdown(text))


phases = table("phases")
lags = table("fanout_lag")
machine = meta["machine"]
say(
    f"**The run:** `make bench` at the `{meta['scale']}` scale ({plan['dataset']['users']:,} users, "
    f"{plan['dataset']['mean_followees']} followees each on average), {meta['started'][:10]}, "
    f"on {machine['usable_cpus']} CPUs ({machine['cpu_model']}, Redis {machine['redis_server']}, "
    f"Python {machine['python']}). Pinning: {machine['pinning']}. `CELEBRITY_THRESHOLD` = {THRESHOLD:,}."
)

# %% [markdown]
# ## 1. At equal load, all three answer quickly
#
# Each design gets the same **open-loop** load: requests are due at a fixed rate whatever
# the answers' speed, as real users arrive, so a slow server builds a queue and the wait
# shows (a *closed* loop waits for each answer before sending again, and hides it). Reads
# and tweets come in DDIA's ratio. **p50** is the median latency; **p99** the latency that
# 99 requests in 100 beat, the *tail*, where queueing and pauses show first.

# %%
summary = table("summary")
latency = summary[["approach", "operation", "achieved_rate", "p50_ms", "p99_ms", "p999_ms"]].round(2)
reads = summary[summary.operation == "read"].set_index("approach").reindex(DESIGNS)
fastest, slowest_tail = reads.p50_ms.idxmin(), reads.p99_ms.idxmax()
finding_1 = (
    f"At {plan['fixed_rate']:g} requests/s, {fastest} reads fastest at the median "
    f"({reads.p50_ms[fastest]:.2f} ms); the widest read tail is {slowest_tail}'s "
    f"(p99 {reads.p99_ms[slowest_tail]:.1f} ms)"
)
say(
    f"**Finding:** {finding_1}. Every read p99 is between {reads.p99_ms.min():.1f} and "
    f"{reads.p99_ms.max():.1f} ms: at this size and load, with everything in memory, "
    "the join is no problem."
)
latency

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, operation in zip(axes, ["read", "tweet"], strict=False):
    rows = summary[summary.operation == operation].set_index("approach").reindex(DESIGNS)
    for i, design in enumerate(DESIGNS):
        bars = ax.bar(
            np.arange(3) + (i - 1) * 0.27,
            rows.loc[design, ["p50_ms", "p99_ms", "p999_ms"]],
            0.27,
            color=COLOURS[design],
            label=design,
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(3), ["p50", "p99", "p99.9"])
    ax.set(yscale="log", ylabel="latency (ms, log scale)", title=f"{operation}s")
axes[0].legend()
fig.suptitle(finding_1, fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## 2. Celebrities are what fanout pays for
#
# In the `celebrities` phase half the tweets are written by accounts drawn by follower
# rank, so the most-followed accounts tweet. The client only waits for the commit. What
# comes after is the **fanout lag**: the time from the tweet's `201 Created` until the
# last follower's cached timeline holds it. The hybrid does not fan out a celebrity's
# tweet at all: it is *pulled* into each reader's timeline when they read.

# %%
celebrity_lags = lags[(lags.phase == "celebrities")].assign(
    celebrity=lambda rows: rows.followers >= THRESHOLD
)
lag_by_group = (
    celebrity_lags[~celebrity_lags.pulled]
    .groupby(["approach", "celebrity"])
    .lag_ms.agg(["count", "median", "max"])
    .round(1)
)
celebrity_phase = phases[phases.phase.isin(["fixed", "celebrities"])]
waits = celebrity_phase.pivot_table(index="approach", columns=["operation", "phase"], values="p99_ms")
fanout_lag = lag_by_group.loc["fanout", "median"]
pulled = int(celebrity_lags[celebrity_lags.approach == "hybrid"].pulled.sum())
read_p99 = waits["read"].reindex(DESIGNS)
finding_2 = (
    f"Fanout took {fanout_lag.get(True, np.nan):,.0f} ms (median) to deliver a celebrity's tweet, "
    f"against {fanout_lag.get(False, np.nan):,.1f} ms for an ordinary account's"
)
say(
    f"**Finding:** {finding_2}, well inside Twitter's 5 s, but its worker shares the app's core with "
    f"the reads: fanout's read p99 rose from {read_p99.loc['fanout', 'fixed']:.1f} ms to "
    f"{read_p99.loc['fanout', 'celebrities']:.1f} ms when celebrities tweeted. The hybrid pulled its "
    f"{pulled} celebrity tweets at read time instead "
    f"(read p99 {read_p99.loc['hybrid', 'celebrities']:.1f} ms); "
    f"join-on-read owes nothing after the commit (read p99 {read_p99.loc['join', 'celebrities']:.1f} ms)."
)
display(lag_by_group)
waits.round(1)

# %%
fig, (by_followers, tails) = plt.subplots(1, 2, figsize=(11, 4.2))
for design in ["fanout", "hybrid"]:
    rows = celebrity_lags[celebrity_lags.approach == design]
    fanned = rows[~rows.pulled]
    by_followers.scatter(
        fanned.followers, fanned.lag_ms, s=10, alpha=0.6, color=COLOURS[design], label=f"{design}: fanned out"
    )
    if rows.pulled.any():
        by_followers.scatter(
            rows[rows.pulled].followers,
            np.full(rows.pulled.sum(), 0.1),
            marker="x",
            color=COLOURS[design],
            label=f"{design}: pulled on read (drawn at 0.1 ms)",
        )
by_followers.axhline(TWITTER_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
by_followers.axvline(THRESHOLD, color="black", linewidth=0.5, label=f"threshold ({THRESHOLD:,})")
by_followers.set(
    xscale="log",
    yscale="log",
    xlabel="author's followers",
    ylabel="fanout lag (ms)",
    title="lag grows with followers",
)
by_followers.legend(fontsize=7)
x = np.arange(len(DESIGNS))
for i, phase in enumerate(["fixed", "celebrities"]):
    tails.bar(
        x + (i - 0.5) * 0.4,
        read_p99[phase],
        0.4,
        color=[COLOURS[d] for d in DESIGNS],
        alpha=0.45 if phase == "fixed" else 1,
        edgecolor="black",
        label=phase,
    )
tails.set_xticks(x, DESIGNS)
tails.set(ylabel="read p99 (ms)", title="read p99: DDIA's mix (pale) and celebrities tweeting (dark)")
fig.suptitle(finding_2, fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## 3. Fanout lag against Twitter's 5 seconds
#
# The **ECDF** (empirical cumulative distribution function) below plots, for each lag on
# the x axis, the share of tweets delivered within it: a curve that reaches 1.0 to the
# left of the dotted line delivered every tweet within 5 s. Ordinary accounts and
# celebrities are drawn apart.

# %%
fanned_out = lags[lags.phase.isin(["fixed", "celebrities"]) & ~lags.pulled].assign(
    celebrity=lambda rows: rows.followers >= THRESHOLD
)
within_target = (
    fanned_out.groupby(["approach", "celebrity"])
    .lag_ms.agg(
        tweets="count",
        p50_ms="median",
        p99_ms=lambda lag: lag.quantile(0.99),
        max_ms="max",
        within_5_s=lambda lag: (lag <= TWITTER_TARGET_MS).mean(),
    )
    .round(3)
)
worst = fanned_out.lag_ms.max()
on_time = (fanned_out.lag_ms <= TWITTER_TARGET_MS).mean()
finding_3 = f"{on_time:.1%} of fanned-out tweets met the 5 s target; the slowest took {worst / 1000:.2f} s"
pulled_here = int(lags[lags.phase.isin(["fixed", "celebrities"])].pulled.sum())
say(
    f"**Finding:** {finding_3}. The hybrid's {pulled_here} pulled tweets had no lag at all: "
    "they were visible to every follower at once."
)
within_target

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
for (design, celebrity), rows in fanned_out.groupby(["approach", "celebrity"]):
    ordered = np.sort(rows.lag_ms.to_numpy())
    ax.step(
        ordered,
        np.arange(1, len(ordered) + 1) / len(ordered),
        where="post",
        color=COLOURS[design],
        linestyle="--" if celebrity else "-",
        label=f"{design}, {'celebrities' if celebrity else 'ordinary accounts'} ({len(ordered)} tweets)",
    )
ax.axvline(TWITTER_TARGET_MS, color="grey", linestyle=":", label="Twitter's 5 s target")
ax.set(xscale="log", xlabel="fanout lag (ms, log scale)", ylabel="share of tweets delivered", title=finding_3)
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()

# %% [markdown]
# ## 4. The join's cost grows with followees, not with history
#
# Left: experiment 1's reads, grouped by how many accounts the reader follows. The join
# reads each followee's newest tweets (one index seek each); a cached timeline costs the
# same whoever reads it. Right: a separate graph seeded at several history depths (tweets
# per author), read by a few clients in a *closed* loop so that latency is service time,
# not queueing.

# %%
FOLLOWEE_BINS = [0, 8, 32, 128, 512, 2048, 100_000]
by_followees = pd.concat(
    samples(design, "fixed").query("operation == 'read'").assign(approach=design) for design in DESIGNS
)
FOLLOWEE_LABELS = [
    f"{low:,}–{high - 1:,}" for low, high in zip(FOLLOWEE_BINS, FOLLOWEE_BINS[1:], strict=False)
]
FOLLOWEE_MIDDLES = {
    label: np.sqrt(max(low, 1) * high)  # where each bin is drawn on a log axis
    for label, low, high in zip(FOLLOWEE_LABELS, FOLLOWEE_BINS, FOLLOWEE_BINS[1:], strict=False)
}
by_followees["followees"] = pd.cut(by_followees["count"], FOLLOWEE_BINS, right=False, labels=FOLLOWEE_LABELS)
followee_table = (
    by_followees.groupby(["followees", "approach"], observed=True)
    .latency_us.agg(reads="count", p50_ms=lambda us: us.median() / 1000)
    .unstack("approach")
    .round(2)
)
join_p50 = followee_table["p50_ms"]["join"].dropna()
fanout_p50 = followee_table["p50_ms"]["fanout"].dropna()
finding_4 = (
    f"Join-on-read's median read goes from {join_p50.iloc[0]:.2f} ms "
    f"({join_p50.index[0]} followees) "
    f"to {join_p50.iloc[-1]:.2f} ms ({join_p50.index[-1]}); fanout's stays within "
    f"{fanout_p50.min():.2f}–{fanout_p50.max():.2f} ms"
)
depths = table("depths")  # a default run sweeps depth only when asked: EXPERIMENT=depths
if depths.empty:
    depth_table = pd.DataFrame(columns=pd.MultiIndex.from_product([["p50_ms"], DESIGNS]))
    say(f"**Finding:** {finding_4}. (This run did not sweep history depth: `make bench EXPERIMENT=depths`.)")
else:
    depth_table = depths.pivot_table(
        index="depth", columns="approach", values=["p50_ms", "throughput_per_s"]
    ).round(2)
    closed_loop = depth_table["throughput_per_s"].mean()
    join_depth = depth_table["p50_ms"]["join"]
    say(
        f"**Finding:** {finding_4}. History depth matters little: from {join_depth.index[0]:g} to "
        f"{join_depth.index[-1]:g} tweets per author the join's median moves from "
        f"{join_depth.iloc[0]:.2f} to {join_depth.iloc[-1]:.2f} ms, because SQLite reads each "
        "followee's newest tweets through an index and stops early. In a closed loop fanout serves "
        f"{closed_loop['fanout'] / closed_loop['join']:.1f}× the join's reads per second."
    )
display(followee_table)
depth_table

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
middles = [FOLLOWEE_MIDDLES[label] for label in followee_table.index]
for design in DESIGNS:
    left.plot(middles, followee_table["p50_ms"][design], marker="o", color=COLOURS[design], label=design)
    if design in depth_table["p50_ms"]:
        right.plot(
            depth_table.index, depth_table["p50_ms"][design], marker="o", color=COLOURS[design], label=design
        )
left.set(
    xscale="log",
    yscale="log",
    xlabel="accounts the reader follows",
    ylabel="read p50 (ms)",
    title="by followees (experiment 1)",
)
left.legend()
if depth_table.empty:
    right.remove()
else:
    right.set(
        xscale="log",
        yscale="log",
        xlabel="tweets per author",
        ylabel="read p50 (ms)",
        title="by history depth (closed loop)",
    )
    right.legend()
fig.suptitle(finding_4, fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## 5. The hybrid's threshold is a trade-off
#
# The hybrid rerun with celebrities tweeting, at several values of `CELEBRITY_THRESHOLD`.
# A low threshold makes every read pull from many accounts; a high one makes a tweet fan
# out to many followers, until the hybrid is plain fanout.

# %%
sweep = table("thresholds")  # a default run sweeps thresholds only when asked
if sweep.empty:
    say("(This run did not sweep the threshold: `make bench EXPERIMENT=thresholds`.)")
else:
    sweep = sweep.sort_values("celebrity_threshold")
    sweep_table = sweep[
        ["celebrity_threshold", "read_p50_ms", "read_p99_ms", "fanout_writes_per_s", "pulled_tweets"]
    ]
    best = sweep.loc[sweep.read_p99_ms.idxmin()]
    highest = sweep.iloc[-1]
    finding_5 = (
        f"The lowest read p99, {best.read_p99_ms:.1f} ms, came at a threshold of "
        f"{best.celebrity_threshold:,.0f} followers, with {best.fanout_writes_per_s:,.0f} "
        "timeline writes/s"
    )
    say(
        f"**Finding:** {finding_5}; at {highest.celebrity_threshold:,.0f} the hybrid wrote "
        f"{highest.fanout_writes_per_s:,.0f}/s and its read p99 was {highest.read_p99_ms:.1f} ms, and at "
        f"{sweep.iloc[0].celebrity_threshold:,.0f} it was {sweep.iloc[0].read_p99_ms:.1f} ms."
    )
    display(sweep_table.round(1))

# %%
if not sweep.empty:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.plot(
        sweep.celebrity_threshold, sweep.read_p99_ms, marker="o", color=COLOURS["hybrid"], label="read p99"
    )
    writes = ax.twinx()
    writes.plot(
        sweep.celebrity_threshold,
        sweep.fanout_writes_per_s,
        marker="s",
        linestyle="--",
        color="black",
        label="timeline writes/s",
    )
    writes.set(ylabel="timeline writes/s", ylim=(0, None))
    for design in ["join", "fanout"]:
        ax.axhline(
            read_p99.loc[design, "celebrities"],
            color=COLOURS[design],
            linestyle=":",
            label=f"{design}'s read p99, same load",
        )
    ax.set(xscale="log", xlabel="CELEBRITY_THRESHOLD (followers)", ylabel="read p99 (ms)", ylim=(0, None))
    ax.set_title(finding_5, fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    writes.legend(loc="upper right", fontsize=7)
    fig.tight_layout()

# %% [markdown]
# ## 6. Capacity: how much load each design holds
#
# The offered rate rises step by step. A step is *held* when it meets the **SLO** (service
# level objective, a promise to users): here read p99 within the plan's limit, no error,
# and at least 95 % of the offered rate achieved. The peak is the most the app achieved
# at all, its **saturation**, past which requests only queue.

# %%
steps = phases[phases.phase.str.startswith("step-") & (phases.operation == "read")]
capacity = table("max_throughput").set_index("approach").reindex(DESIGNS)
capacity["peak_per_s"] = steps.groupby("approach").achieved_rate.max()
capacity = capacity[["slo_read_p99_ms", "max_rate_per_s", "peak_per_s", "steps_tried"]].round(0)
leader = capacity.peak_per_s.idxmax()
finding_6 = (
    f"Within the {plan['slo_ms']} ms SLO: "
    + ", ".join(f"{design} held {capacity.max_rate_per_s[design]:,.0f}/s" for design in DESIGNS)
    + f"; {leader} peaked highest, {capacity.peak_per_s[leader]:,.0f}/s"
)
say(
    f"**Finding:** {finding_6}, {capacity.peak_per_s[leader] / capacity.peak_per_s.drop(leader).max():.1f}× "
    "the next."
)
capacity

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
for design in DESIGNS:
    rows = steps[steps.approach == design].sort_values("target_rate")
    ax.plot(rows.achieved_rate, rows.p99_ms, marker="o", color=COLOURS[design], label=design)
ax.axhline(plan["slo_ms"], color="grey", linestyle=":", label=f"SLO: read p99 {plan['slo_ms']} ms")
ax.set(xscale="log", yscale="log", xlabel="achieved requests/s", ylabel="read p99 (ms)")
ax.set_title(finding_6, fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 7. DDIA's arithmetic, checked
#
# DDIA estimates fanout's work as tweets/s × mean followers. Authors are not average
# accounts, though: popular accounts are drawn as authors more often. The fanout log
# counts what was really written.

# %%
arithmetic = table("arithmetic").set_index("approach").loc[["fanout", "hybrid"]]
fanout_row = arithmetic.loc["fanout"]
finding_7 = (
    f"DDIA's estimate says {fanout_row.ddia_writes_per_s:,.0f} writes/s; counting the authors' own "
    f"{fanout_row.authors_mean_followers:.0f} followers gives "
    f"{fanout_row.expected_writes_per_s:,.0f}; "
    f"the log recorded {fanout_row.measured_writes_per_s:,.0f}"
)
say(
    f"**Finding:** {finding_7}. The last two agree, so every tweet reached every follower once. "
    f"At DDIA's Twitter, 4,600 tweets/s × 75 followers is 345,000 writes/s."
)
arithmetic.round(1)

# %%
columns = {
    "ddia_writes_per_s": "tweets/s × mean followers (DDIA)",
    "expected_writes_per_s": "tweets/s × the authors' followers",
    "measured_writes_per_s": "measured",
}
fig, ax = plt.subplots(figsize=(8, 4.2))
for i, (column, label) in enumerate(columns.items()):
    bars = ax.bar(
        np.arange(2) + (i - 1) * 0.27,
        arithmetic[column],
        0.27,
        edgecolor="black",
        label=label,
        color=[COLOURS[d] for d in arithmetic.index],
        alpha=(0.3, 0.6, 1.0)[i],
    )
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
ax.set_xticks(np.arange(2), arithmetic.index)
ax.set(ylabel="timeline writes/s", ylim=(0, 1.4 * arithmetic[list(columns)].to_numpy().max()))
ax.set_title(finding_7, fontsize=9)
ax.legend(fontsize=7, loc="upper left")
fig.tight_layout()

# %% [markdown]
# ## 8. What one operation costs, measured in this run
#
# The model of the last section needs a price for each operation in CPU time. Each is
# derived from this run, and each is an approximation stated here:
#
# - **µs per request**, per design: the app's cores divided by its *peak* rate in the step
#   load (when it could go no faster, its cores were busy), after taking out the time its
#   fanout worker spent writing. An upper bound if the app never saturated.
# - **µs per follower-write** (fanout): the median of fanout lag ÷ followers over the
#   fanout design's tweets from its most-followed tenth of authors. Wall-clock time of one
#   worker sharing its core with reads, Redis's time included: an upper bound on CPU.
# - **µs per followee** (the join): what a join read costs beyond a cached read, divided
#   by how many accounts the run's readers followed on average.

# %%
pinned = re.match(r"app on CPU \[([^\]]*)\]", machine["pinning"])
app_cores = len(pinned.group(1).split(",")) if pinned else machine["usable_cpus"]
fanned_lags = lags[(lags.approach == "fanout") & ~lags.pulled & (lags.followers > 0)]
top_authors = fanned_lags[fanned_lags.followers >= fanned_lags.followers.quantile(0.9)]
US_PER_FOLLOWER_WRITE = float((top_authors.lag_ms * 1000 / top_authors.followers).median())

peaks = steps.loc[steps.groupby("approach").achieved_rate.idxmax()].set_index("approach").reindex(DESIGNS)
fanout_us = peaks.fanout_writes / peaks.seconds * US_PER_FOLLOWER_WRITE
requests_per_s = (peaks.reads + peaks.tweets) / peaks.seconds
US_PER_REQUEST = ((app_cores * 1e6 - fanout_us) / requests_per_s).to_dict()
readers_followees = float(by_followees[by_followees.approach == "join"]["count"].mean())
US_PER_FOLLOWEE = max(0.0, (US_PER_REQUEST["join"] - US_PER_REQUEST["fanout"]) / readers_followees)

costs = pd.DataFrame({"peak requests/s": requests_per_s, "µs per request": pd.Series(US_PER_REQUEST)}).round(
    1
)
say(
    f"**Measured:** the app had {app_cores} core(s). A request cost "
    + ", ".join(f"{design} {US_PER_REQUEST[design]:,.0f} µs" for design in DESIGNS)
    + f"; a follower-write {US_PER_FOLLOWER_WRITE:.1f} µs; each followee adds {US_PER_FOLLOWEE:.1f} µs to a "
    f"join read (the run's readers followed {readers_followees:.0f} accounts on average)."
)
costs

# %% [markdown]
# ## 9. Your turn: DDIA's Twitter, priced with this run's costs
#
# Change the inputs in the next cell and run it (Shift-Enter). DDIA's figures for Twitter
# in 2012 are the defaults. The model, and every assumption in it:
#
# 1. **Every follow has two ends**, so the mean number of accounts a user follows equals
#    the mean number of followers.
# 2. **Follower counts follow a power law** with density ∝ k⁻² between `smallest_account`
#    and `celebrity_followers` (Twitter's measured tail is close to k⁻²; this repository's
#    graph has k⁻¹·⁹). Then the share of all follows that point at accounts with at least
#    T followers is ln(celebrity/T) ÷ ln(celebrity/smallest). `smallest_account` is chosen
#    so that the mean comes out at `mean_followers`.
# 3. **Every account tweets at the same rate**, whatever its followers (DDIA's arithmetic).
#    So the hybrid skips that same share of the timeline writes, and a read pulls from
#    mean followees × that share celebrities.
# 4. **Costs are this run's** (section 8): a read costs its design's µs per request, plus,
#    for the join, µs per followee for each account followed and, for the hybrid, the same
#    for each celebrity followed. A tweet's commit costs one fanout request. A
#    follower-write costs the measured µs. Redis's own cores, replicas and disks are not
#    counted: these are cores of the app tier.
# 5. **One worker delivers one tweet**, as here: a celebrity's tweet takes followers × µs
#    per follower-write to reach the last follower.
#
# Things to try: raise `celebrity_threshold` to 1,000,000 and watch the hybrid's reads get
# cheaper and its writes dearer; set `reads_per_s` to 1,000 (a small site) and see how
# little any of it matters; set `celebrity_followers` to 100,000,000; halve
# `mean_followers`. Which design would you pick, and what would you measure next?

# %%
tweets_per_s = 4_600  # DDIA: 4.6k tweets/s on average (12k at peak)
reads_per_s = 300_000  # DDIA: 300k home-timeline reads/s
mean_followers = 75  # DDIA: 75 followers on average
celebrity_followers = 30_000_000  # DDIA: some users have over 30 million followers
celebrity_threshold = 10_000  # the hybrid's CELEBRITY_THRESHOLD (this repository's default)


def smallest_account(mean: float, largest: float) -> float:
    """k_min of a k^-2 power law on [k_min, largest] whose mean is `mean`, by bisection."""
    low, high = 1e-6, mean
    for _ in range(100):
        middle = (low + high) / 2
        power_law_mean = np.log(largest / middle) / (1 / middle - 1 / largest)
        low, high = (middle, high) if power_law_mean < mean else (low, middle)
    return (low + high) / 2


def share_of_follows_above(threshold: float, mean: float, largest: float) -> float:
    smallest = smallest_account(mean, largest)
    return float(np.clip(np.log(largest / threshold) / np.log(largest / smallest), 0, 1))


celebrity_share = share_of_follows_above(celebrity_threshold, mean_followers, celebrity_followers)
celebrities_followed = mean_followers * celebrity_share
writes = {
    "join": 0.0,
    "fanout": tweets_per_s * mean_followers,
    "hybrid": tweets_per_s * mean_followers * (1 - celebrity_share),
}
read_us = {
    "join": US_PER_REQUEST["fanout"] + US_PER_FOLLOWEE * mean_followers,
    "fanout": US_PER_REQUEST["fanout"],
    "hybrid": US_PER_REQUEST["hybrid"] + US_PER_FOLLOWEE * celebrities_followed,
}
read_work = {
    "join": f"{mean_followers:g} index seeks",
    "fanout": "1 cache read",
    "hybrid": f"1 cache read + {celebrities_followed:.1f} index seeks",
}
celebrity_writes = {
    "join": 0,
    "fanout": celebrity_followers,
    "hybrid": 0 if celebrity_followers >= celebrity_threshold else celebrity_followers,
}
model = pd.DataFrame(
    {
        "timeline writes/s": writes,
        "one celebrity tweet: writes": celebrity_writes,
        "one celebrity tweet: s to deliver": {
            d: n * US_PER_FOLLOWER_WRITE / 1e6 for d, n in celebrity_writes.items()
        },
        "one read does": read_work,
        "µs per read": read_us,
        "cores for reads": {d: reads_per_s * read_us[d] / 1e6 for d in DESIGNS},
        "cores for writes": {
            d: (tweets_per_s * US_PER_REQUEST["fanout"] + writes[d] * US_PER_FOLLOWER_WRITE) / 1e6
            for d in DESIGNS
        },
    }
).reindex(DESIGNS)
model["cores"] = model["cores for reads"] + model["cores for writes"]
cheapest = model.cores.idxmin()
late = model[model["one celebrity tweet: s to deliver"] > TWITTER_TARGET_MS / 1000].index.tolist()
verdict = (
    f"{cheapest} needs the fewest cores ({model.cores[cheapest]:,.0f}, against "
    + ", ".join(f"{d} {model.cores[d]:,.0f}" for d in DESIGNS if d != cheapest)
    + ")"
)
say(
    f"**The model says:** {celebrity_share:.0%} of follows point at accounts with {celebrity_threshold:,} "
    f"followers or more, so a hybrid read pulls from {celebrities_followed:.1f} celebrities and the hybrid "
    f"writes {writes['hybrid']:,.0f} timeline entries/s against fanout's {writes['fanout']:,.0f}. {verdict}. "
    + (
        f"One worker would take {model.loc[late[0], 'one celebrity tweet: s to deliver']:,.0f} s to deliver "
        f"a {celebrity_followers:,}-follower tweet in {' and '.join(late)}, past Twitter's 5 s: that design "
        "would need its fanout split across workers."
        if late
        else "Every design delivers a celebrity's tweet within Twitter's 5 s."
    )
)
model.round(1)

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
ax.bar(DESIGNS, model["cores for reads"], color=[COLOURS[d] for d in DESIGNS], label="reads")
ax.bar(
    DESIGNS,
    model["cores for writes"],
    bottom=model["cores for reads"],
    color=[COLOURS[d] for d in DESIGNS],
    alpha=0.4,
    hatch="//",
    label="tweets and timeline writes",
)
for x, total in enumerate(model.cores):
    ax.annotate(f"{total:,.0f}", (x, total), ha="center", va="bottom", fontsize=8)
ax.set(ylabel="app cores (this run's costs)")
ax.set_title(f"{reads_per_s:,} reads/s, {tweets_per_s:,} tweets/s: {verdict}", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
