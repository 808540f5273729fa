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
# # DDIA's home timeline, three ways: one bench run
#
# The charts of one `make bench` run folder, drawn by the same code that drew its PNGs
# (`bench/charts.py`), with the tables under them. Choose the run with the environment
# variable `RESULTS` (a folder under `results/`); without it, the newest run there.
#
# Open it with `jupyter lab notebooks/timelines.py` (jupytext) or run it headless:
# `RESULTS=results/<run> jupytext --to notebook --execute notebooks/timelines.py`.

# %%
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path.cwd() if (Path.cwd() / "bench").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))
from bench import charts


def newest_run(results: Path) -> Path:
    runs = sorted(folder for folder in results.glob("*") if (folder / "meta.json").exists())
    if not runs:
        raise SystemExit(f"no bench run under {results}: run `make bench` first, or set RESULTS")
    return runs[-1]


folder = Path(os.environ["RESULTS"]) if os.environ.get("RESULTS") else newest_run(ROOT / "results")
run = charts.Run(folder)
print(folder.name, "-", run.caption())
pd.DataFrame([run.meta["machine"]]).T

# %% [markdown]
# ## 1. Latency at a fixed open-loop rate
# The same offered load for all three, reads and tweets in DDIA's ratio. An open loop keeps
# sending on schedule however slow the answers, so queueing shows in the tail.

# %%
charts.latency(run)
pd.read_csv(folder / "summary.csv").round(2)

# %% [markdown]
# ## 2. What a tweet costs, by its author's followers
# Left: what the client waits for. Right: the work the fanout designs do afterwards.

# %%
charts.write_cost(run);

# %% [markdown]
# ## 3. Fanout lag against Twitter's 5 s target, celebrities apart

# %%
charts.fanout_lag(run);

# %% [markdown]
# ## 4. The crossover: followees and history depth

# %%
charts.crossover(run)
pd.read_csv(folder / "depths.csv")[["approach", "depth", "count", "p50_ms", "p99_ms"]].round(2)

# %% [markdown]
# ## 5. The hybrid's threshold

# %%
charts.thresholds(run)
pd.read_csv(folder / "thresholds.csv").round(1) if (folder / "thresholds.csv").exists() else None

# %% [markdown]
# ## 6. Maximum throughput within the read-latency SLO

# %%
charts.max_throughput(run)
pd.read_csv(folder / "max_throughput.csv").round(1)

# %% [markdown]
# ## 7. DDIA's arithmetic beside the measurement

# %%
charts.arithmetic(run)
pd.read_csv(folder / "arithmetic.csv").round(1)
