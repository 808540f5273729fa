"""`python -m bench cache-memory --scale tiny`, run the way a user runs it: the apps build
their caches over HTTP, and the entries the bench counts in Redis must be exactly the
timeline lengths the tiny dataset implies, worked out here from the generated graph and
history alone (no Redis, no SQL)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.plan import PLANS
from datagen.load import celebrities
from datagen.scales import SCALES
from timelines.cache import Keys

ROOT = Path(__file__).resolve().parent.parent
APPS = ("approach2", "approach3_hybrid")
PLAN = PLANS["tiny"]


def tiny_memory_run(folder: Path, *options: str) -> str:
    """`python -m bench cache-memory --scale tiny` into `folder`: what it printed."""
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "cache-memory", "--scale", "tiny", *options, "--out", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "approach3_hybrid round 1:" in finished.stdout  # progress, step by step
    assert "B/entry all in" in finished.stdout  # the final table
    return finished.stdout


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results") / "memory"
    tiny_memory_run(folder)
    return folder


def cached_lengths(hybrid: bool) -> int:
    """Sum of every cached list's length, tail marker excluded: each user's newest
    TIMELINE_LENGTH tweets of the accounts it follows (for the hybrid, of those that are
    not celebrities), plus, for the hybrid, each celebrity's newest TIMELINE_LENGTH."""
    graph, history = SCALES["tiny"].generate()
    tweets = history.per_author(graph.users)
    pulled = np.zeros(graph.users + 1, dtype=bool)
    if hybrid:
        pulled[celebrities(graph, PLAN.celebrity_threshold)] = True
    fanned_in = np.where(pulled[graph.followee], 0, tweets[graph.followee])
    available = np.bincount(graph.follower, weights=fanned_in, minlength=graph.users + 1)[1:]
    own = tweets[pulled]
    return int(
        np.minimum(available, PLAN.timeline_length).sum() + np.minimum(own, PLAN.timeline_length).sum()
    )


def test_entries_counted_are_the_users_cached_timeline_lengths(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv").set_index("setup")
    assert summary.loc["approach2", "entries"] == cached_lengths(hybrid=False)
    assert summary.loc["approach3_hybrid", "entries"] == cached_lengths(hybrid=True)


def test_figures_are_positive_for_both_apps(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv").set_index("setup")
    assert list(summary.index) == list(APPS)
    for column in (
        "users",
        "entries",
        "used_memory",
        "bytes_per_entry",
        "bytes_per_user",
        "users_within_4gib",
    ):
        assert (summary[column] > 0).all(), summary[column]
    assert (summary.bytes_per_entry == (summary.used_memory / summary.entries).round(3)).all()


def test_each_family_is_measured_and_the_deletion_agrees_with_memory_usage(run_folder):
    families = pd.read_csv(run_folder / "families.csv").set_index(["setup", "family"])
    users = SCALES["tiny"].users
    for app in APPS:
        assert families.loc[(app, "timeline"), "keys"] == users
        assert families.loc[(app, "token"), "keys"] >= users  # a miss leaves one per list
        assert families.loc[(app, "tweet"), "keys"] > 0  # the all-hit round stored first pages' bodies
        for family in ("timeline", "tweet", "token"):
            assert families.loc[(app, family), "bytes"] > 0
        timelines = families.loc[(app, "timeline")]
        assert abs(timelines["sampled_bytes"] / timelines["bytes"] - 1) < 0.15, timelines
    graph, _ = SCALES["tiny"].generate()
    assert families.loc[("approach2", "recent"), "keys"] == 0
    assert families.loc[("approach3_hybrid", "recent"), "keys"] == len(
        celebrities(graph, PLAN.celebrity_threshold)
    )


def test_meta_says_what_ran(run_folder):
    meta = json.loads((run_folder / "meta.json").read_text())
    assert len(meta["git_sha"]) == 40 and meta["command"].endswith("--scale tiny")
    assert meta["settings"]["CELEBRITY_THRESHOLD"] == PLAN.celebrity_threshold
    assert [footprint["setup"] for footprint in meta["footprints"]] == list(APPS)
    assert meta["machine"]["redis_server"]


def test_on_a_cluster_the_same_entries_with_a_body_and_recent_list_per_shard(run_folder, tmp_path):
    """`--redis-nodes 3`: the same timelines, counted over the nodes; what a cluster adds is
    the price of one-call reads, each shard's own copy of the bodies and of every
    celebrity's recent list (timelines/cache.py, Keys)."""
    folder = tmp_path / "memory-cluster"
    assert "an empty 3-node Redis Cluster" in tiny_memory_run(folder, "--redis-nodes", "3")
    summary = pd.read_csv(folder / "summary.csv").set_index("setup")
    assert (summary.redis_nodes == 3).all()
    assert summary.loc["approach2", "entries"] == cached_lengths(hybrid=False)
    on_one = pd.read_csv(run_folder / "families.csv").set_index(["setup", "family"])
    on_three = pd.read_csv(folder / "families.csv").set_index(["setup", "family"])
    for app in APPS:
        assert on_three.loc[(app, "timeline"), "keys"] == SCALES["tiny"].users
        assert on_three.loc[(app, "tweet"), "keys"] > on_one.loc[(app, "tweet"), "keys"]
    shards = len(Keys.sharded().prefixes)
    recent = ("approach3_hybrid", "recent")
    assert on_three.loc[recent, "keys"] == shards * on_one.loc[recent, "keys"]
    assert json.loads((folder / "meta.json").read_text())["command"].endswith("--redis-nodes 3")
