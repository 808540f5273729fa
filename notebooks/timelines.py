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
# reference run, `results/2026-11-30T070726Z-default/`; set the environment variable
# `RESULTS` to another folder to read yours. Each section says what it finds, shows the
# table it draws from, then draws it with the bench's own chart (`bench/report/charts.py`,
# the same PNGs `make bench` leaves in the run's `charts/` folder). The last section is
# yours: change DDIA's inputs and watch a small cost model, fed with this run's measured
# costs, change its answer.
#
# Open it with `make notebook`, or run it headless with
# `.venv/bin/python -m bench.report.notebook results/<run>` (it lands in `results/<run>/notebook.ipynb`).

# %%
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

ROOT = Path.cwd() if (Path.cwd() / "bench").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))  # JupyterLab starts in notebooks/: the model and the charts are the bench's own
from bench.report import charts  # noqa: E402
from bench.report import model as capacity_model  # noqa: E402
from bench.report.notebook import missing_for_the_lesson  # noqa: E402

REFERENCE_RUN = ROOT / "results" / "2026-11-30T070726Z-default"
folder = Path(os.environ.get("RESULTS") or REFERENCE_RUN)
if not (folder / "meta.json").is_file():
    raise SystemExit(f"{folder} is not a bench run folder (no meta.json): run `make bench`, or set RESULTS")
if problem := missing_for_the_lesson(folder):
    raise SystemExit(problem)
print(folder.name)

run = charts.Run(folder)  # the run's tables and samples, read as the charts read them
meta, plan = run.meta, run.plan
DESIGNS = run.approaches  # join, fanout, hybrid: the lesson needs all three
THRESHOLD = plan["celebrity_threshold"]  # followers from which the hybrid stops fanning out
TWITTER_TARGET_MS = charts.TWITTER_LAG_TARGET_MS  # DDIA: Twitter aims to deliver a tweet within 5 s


def say(text: str) -> None:
    display(Markdown(text))


lags = run.lags
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
# Medians over the repeats (latency.csv): every figure here comes from more than one run.
latency_runs = run.table("latency")
MEDIANS = {f"{c}_median": c for c in ("achieved_rate", "p50_ms", "p95_ms", "p99_ms", "p999_ms")}
summary = latency_runs[latency_runs.mix == "fixed"].rename(columns=MEDIANS)
latency = summary[["approach", "operation", "achieved_rate", "p50_ms", "p99_ms", "p999_ms"]].round(2)
reads = summary[summary.operation == "read"].set_index("approach").reindex(DESIGNS)
fastest, slowest_tail = reads.p50_ms.idxmin(), reads.p99_ms.idxmax()
finding_1 = (
    f"At {plan['fixed_rate']:g} requests/s, {fastest} reads fastest at the median "
    f"({reads.p50_ms[fastest]:.2f} ms); the widest read tail is {slowest_tail}'s "
    f"(p99 {reads.p99_ms[slowest_tail]:.1f} ms)"
)
tails = latency_runs[(latency_runs.mix == "fixed") & (latency_runs.operation == "read")]
tails_overlap = tails.p99_ms_min.max() <= tails.p99_ms_max.min()  # some p99 lies in every range
say(
    f"**Finding:** {finding_1}. Every read p99 is between {reads.p99_ms.min():.1f} and "
    f"{reads.p99_ms.max():.1f} ms (medians of {int(tails.repeats.min())} runs), "
    + (
        "and the runs' ranges overlap, so their tails cannot be told apart: "
        if tails_overlap
        else "and the runs' ranges do not all overlap: "
    )
    + "at this size and load, with everything in memory, the join is no problem."
)
latency

# %%
charts.latency(run)
plt.show()

# %% [markdown]
# ## 2. Celebrities are what fanout pays for
#
# In the `celebrities` phase half the tweets are written by accounts drawn by follower
# rank, so the most-followed accounts tweet. The client only waits for the commit. What
# comes after is the **fanout lag**: the time from the tweet's `201 Created` until the
# last follower's cached timeline holds it. The hybrid does not fan out a celebrity's
# tweet at all: it is *pulled* into each reader's timeline when they read.

# %%
celebrity_lags = lags[lags.phase.str.match(r"^celebrities(-\d+)?$")].assign(
    celebrity=lambda rows: rows.followers >= THRESHOLD
)
lag_by_group = (
    celebrity_lags[~celebrity_lags.pulled]
    .groupby(["approach", "celebrity"])
    .lag_ms.agg(["count", "median", "max"])
    .round(1)
)
waits = latency_runs.rename(columns=MEDIANS).pivot_table(
    index="approach", columns=["operation", "mix"], values="p99_ms"
)
fanout_lag = lag_by_group.loc["fanout", "median"]
pulled = int(celebrity_lags[celebrity_lags.approach == "hybrid"].pulled.sum())
slowest_ms = celebrity_lags[~celebrity_lags.pulled].lag_ms.max()
read_p99 = waits["read"].reindex(DESIGNS)
finding_2 = (
    f"Fanout took {fanout_lag.get(True, np.nan):,.0f} ms (median) to deliver a celebrity's tweet, "
    f"against {fanout_lag.get(False, np.nan):,.1f} ms for an ordinary account's"
)
say(
    f"**Finding:** {finding_2}; "
    + (
        "every one within Twitter's 5 s"
        if slowest_ms <= TWITTER_TARGET_MS
        else f"the slowest took {slowest_ms / 1000:.1f} s, past Twitter's 5 s"
    )
    + ". Its worker shares the app's core with "
    f"the reads: fanout's read p99 rose from {read_p99.loc['fanout', 'fixed']:.1f} ms to "
    f"{read_p99.loc['fanout', 'celebrities']:.1f} ms when celebrities tweeted. The hybrid pulled its "
    f"{pulled} celebrity tweets at read time instead "
    f"(read p99 {read_p99.loc['hybrid', 'celebrities']:.1f} ms); "
    f"join-on-read owes nothing after the commit (read p99 {read_p99.loc['join', 'celebrities']:.1f} ms)."
)
display(lag_by_group)
waits.round(1)

# %%
charts.write_cost(run)
plt.show()

# %% [markdown]
# ## 3. Fanout lag against Twitter's 5 seconds
#
# The **ECDF** (empirical cumulative distribution function) below plots, for each lag on
# the x axis, the share of tweets delivered within it: a curve that reaches 1.0 to the
# left of the dotted line delivered every tweet within 5 s. Ordinary accounts and
# celebrities are drawn apart.

# %%
fanned_out = lags[lags.phase.str.match(r"^(fixed|celebrities)(-\d+)?$") & ~lags.pulled].assign(
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
pulled_here = int(lags[lags.phase.str.match(r"^(fixed|celebrities)(-\d+)?$")].pulled.sum())
say(
    f"**Finding:** {finding_3}. The hybrid's {pulled_here} pulled tweets had no lag at all: "
    "they were visible to every follower at once."
)
within_target

# %%
charts.fanout_lag(run)
plt.show()

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
by_followees = pd.concat(run.fixed_reads(design).assign(approach=design) for design in DESIGNS)
FOLLOWEE_LABELS = [
    f"{low:,}–{high - 1:,}" for low, high in zip(FOLLOWEE_BINS, FOLLOWEE_BINS[1:], strict=False)
]
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
depths = run.table("depths")  # a default run sweeps depth only when asked: EXPERIMENT=depths
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
charts.crossover(run)
plt.show()

# %% [markdown]
# ## 5. The hybrid's threshold is a trade-off
#
# The hybrid rerun with celebrities tweeting, at several values of `CELEBRITY_THRESHOLD`.
# A low threshold makes every read pull from many accounts; a high one makes a tweet fan
# out to many followers, until the hybrid is plain fanout.

# %%
sweep = run.table("thresholds")  # a default run sweeps thresholds only when asked
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
charts.thresholds(run)  # draws nothing where the run did not sweep the threshold
plt.show()

# %% [markdown]
# ## 6. Capacity: how much load each design holds
#
# A design *holds* a rate when, offered that rate open loop for a whole step, it meets the
# **SLO** (service level objective, a promise to users): read and tweet p99 within the
# plan's limit, no error, at least 95 % of the offered rate achieved, and every tweet in its
# followers' timelines within 5 s (fanout lag p99, a tweet still owed at the step's end
# late), the backlog gone within 10 s of the step: the `delivery` rule. (capacity.csv also
# holds the `read` rule, blind to the fanout behind the 201.) The bench searches for the
# highest rate held: it doubles the rate until a step misses, then bisects between the last
# rate held and the first missed until they are within 5 %. Each search is run several
# times, on two mixes: DDIA's (65 reads per tweet), and the same with the most-followed
# accounts tweeting. Two designs differ only where the ranges of their searches (min–max)
# do not overlap: one noisy run must not decide the answer.

# %%
capacity = run.table("capacity")
capacity = capacity[capacity.slo == "delivery"]


def held(design: str, mix: str) -> tuple[float, float, float]:
    row = capacity[(capacity.approach == design) & (capacity.mix == mix)].iloc[0]
    return row["median"], row["min"], row["max"]


def versus(a: str, b: str, mix: str) -> str:
    """ "a holds 1.8× b's" where the ranges part, "a and b overlap" where they do not."""
    (a_med, a_lo, a_hi), (b_med, b_lo, b_hi) = held(a, mix), held(b, mix)
    if a_lo > b_hi or b_lo > a_hi:
        more, less = (a, b) if a_med > b_med else (b, a)
        return f"{more} holds {max(a_med, b_med) / min(a_med, b_med):.1f}× {less}'s"
    return f"{a} and {b} overlap"


ranked = capacity[capacity.mix == "ddia"].sort_values("median", ascending=False).approach.tolist()
finding_6 = (
    f"In DDIA's mix {versus(ranked[0], ranked[1], 'ddia')} and {versus(ranked[1], ranked[2], 'ddia')}; "
    f"with celebrities tweeting, {versus('fanout', 'hybrid', 'celebrities')}"
)
say(
    f"**Finding:** {finding_6} (read and tweet p99 within {plan['slo_ms']:g} ms, fanout within 5 s; "
    f"medians of {int(capacity.runs.min())} searches, min–max beside them)."
)
capacity[["approach", "mix", "slo", "runs", "median", "min", "max", "brackets"]].round(0)

# %%
charts.max_throughput(run)
plt.show()

# %% [markdown]
# ## 7. DDIA's arithmetic, checked
#
# DDIA estimates fanout's work as tweets/s × mean followers. Authors are not average
# accounts, though: in the `celebrities` phase popular accounts are drawn as authors more
# often. Redis's own count of list pushes (`INFO commandstats`), which knows nothing of
# either estimate, says what was really written.

# %%
arithmetic = run.table("arithmetic").set_index("approach").loc[["fanout", "hybrid"]]
fanout_row = arithmetic.loc["fanout"]
finding_7 = (
    f"DDIA's estimate says {fanout_row.ddia_writes_per_s:,.0f} writes/s; counting the authors' own "
    f"{fanout_row.authors_mean_followers:.0f} followers gives "
    f"{fanout_row.expected_writes_per_s:,.0f}; "
    f"Redis counted {fanout_row.measured_writes_per_s:,.0f}"
)
off_by = fanout_row.measured_writes_per_s / fanout_row.expected_writes_per_s - 1
hybrid_row = arithmetic.loc["hybrid"]
say(
    f"**Finding:** {finding_7}: the count is {abs(off_by):.1%} {'above' if off_by > 0 else 'below'} the "
    "authors' estimate, so every tweet reached its followers' timelines once. The hybrid, with the same "
    f"authors, pushed {hybrid_row.measured_writes_per_s:,.0f}/s: its celebrities' tweets went once each into "
    "their own recent list. At DDIA's Twitter, 4,600 tweets/s × 75 followers is 345,000 writes/s."
)
arithmetic.round(1)

# %%
charts.arithmetic(run)
plt.show()

# %% [markdown]
# ## 8. What one operation costs, measured in this run
#
# The bench reads the kernel's count of CPU time for the app and for its Redis over each
# measured phase, and divides it by what the phase did. So a cost is **µs of CPU per
# operation**, app and Redis apart, each from the phases that isolate it (the `source`
# column): a read from DDIA's mix less its tweets, a tweet from a tweets-only phase less
# its follower-writes, a follower-write from one celebrity's tweet to many followers, a
# pulled celebrity from a hybrid reader who follows one, against one who follows none.
# The app's share is the framework's and the driver's (HTTP, JSON, SQLite); Redis's share
# is the cache's.

# %%
cpu = run.table("cpu")
OPERATIONS = ["read", "celebrity_pull", "tweet", "follower_write"]
costs = cpu.pivot_table(index=["approach", "operation"], columns="component", values="us_median")
costs = costs.reindex(pd.MultiIndex.from_product([DESIGNS, OPERATIONS])).dropna(how="all").round(1)
costs["total"] = costs.sum(axis=1)
read_cost = costs.xs("read", level=1)["total"]
say(
    "**Measured:** a read costs "
    + ", ".join(f"{design} {read_cost[design]:,.0f} µs" for design in DESIGNS if design in read_cost)
    + " of CPU (app and Redis). "
    + (
        f"A follower-write costs fanout {costs.loc[('fanout', 'follower_write'), 'total']:.1f} µs; "
        if ("fanout", "follower_write") in costs.index
        else ""
    )
    + (
        "each celebrity a hybrid reader follows adds "
        f"{costs.loc[('hybrid', 'celebrity_pull'), 'total']:.1f} µs."
        if ("hybrid", "celebrity_pull") in costs.index
        else ""
    )
)
costs

# %% [markdown]
# ## 9. Your turn: DDIA's Twitter, priced with this run's costs
#
# `bench/report/model.py` carries the costs of section 8 to a site of any size; `make bench` runs
# it for Twitter 2012 into `twitter_2012.csv`. Change the inputs in the next cell and run
# it (Shift-Enter). The model, and every assumption in it:
#
# 1. **Every follow has two ends**, so the mean number of accounts a user follows equals
#    the mean number of followers.
# 2. **Follower counts follow a power law** with density ∝ k⁻² up to `most_followers`
#    (Twitter's measured tail is close to k⁻²; this repository's graph has k⁻¹·⁹), its
#    lower end solved so that the mean comes out at `mean_followers`.
# 3. **Every account tweets at the same rate**, whatever its followers (DDIA's arithmetic).
#    So the hybrid skips the share of follower-writes owed to accounts above the threshold,
#    and a read pulls as many celebrities as the reader follows above it.
# 4. **Costs are this run's**, app and Redis, flat in scale: a read, a tweet, a
#    follower-write, and (the hybrid) each pulled celebrity, in place of the ones this
#    run's readers pulled.
#
# What it cannot know is printed below the table. Things to try: set `reads_per_s` to
# 1,000 (a small site) and see how little any of it matters; set `most_followers` to
# 100,000,000; halve `mean_followers`; add a threshold of 3,000,000. Which design would you
# pick, and what would you measure next?

# %%
site = capacity_model.Site(
    reads_per_s=300_000,  # DDIA: 300k home-timeline reads/s
    tweets_per_s=4_600,  # DDIA: 4.6k tweets/s on average (12k at peak)
    mean_followers=75,  # DDIA: 75 followers on average
    most_followers=30_000_000,  # DDIA: some users have over 30 million followers
    hybrid_thresholds=(10_000, 100_000, 1_000_000),  # the hybrid's CELEBRITY_THRESHOLD, each priced
)
pulls_here = meta.get("dataset_facts", {}).get("celebrities_followed_per_user", 0.0)
model_rows = capacity_model.table(cpu, pulls_here, site)
priced = charts.with_designs(model_rows).set_index("design")
cheapest = priced.total_cores.idxmin()
verdict = (
    f"{cheapest} needs the fewest cores ({priced.total_cores[cheapest]:,.0f}, "
    f"{priced.total_cores_min[cheapest]:,.0f}–{priced.total_cores_max[cheapest]:,.0f}), against "
    + ", ".join(f"{d} {priced.total_cores[d]:,.0f}" for d in priced.index if d != cheapest)
)
say(
    f"**The model says:** at {site.reads_per_s:,.0f} reads/s and {site.tweets_per_s:,.0f} tweets/s, "
    f"{verdict}. "
    "Ranges take every measured cost at its lowest, then its highest."
)
display(
    priced[
        ["follower_writes_per_s", "celebrities_pulled_per_read"]
        + [column for column in priced if column.endswith("_cores")]
    ].round(1)
)
say(f"*What the model cannot know:* {capacity_model.CANNOT_KNOW}")

# %%
charts.cores(run, model_rows)
plt.show()
