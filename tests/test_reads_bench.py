"""`python -m bench reads` at `tiny`, run as a user runs it (real wrk, redis-server, four
uvicorn apps), and the figures it must leave behind; plus the pure parts it decides with."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.experiments.reads import Unequal, check_equal_pages
from bench.experiments.reads.seed import threshold_for

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = {"ceiling", "join", "fanout", "hybrid"}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    if shutil.which("wrk") is None:
        subprocess.run([ROOT / "scripts" / "ensure-wrk"], check=False, capture_output=True)
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed and scripts/ensure-wrk could not install it (not root?)")
    out = tmp_path_factory.mktemp("reads") / "run"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "reads",
            "--scale",
            "tiny",
            "--seconds",
            "1",
            "--warmup",
            "1",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "equal answers" in finished.stdout and "fanout ÷ ceiling" in finished.stdout
    return out


def read_csv(path: Path) -> list[dict]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_every_design_has_a_positive_rate_and_finite_ratios(run_folder):
    rows = {row["design"]: row for row in read_csv(run_folder / "reads.csv")}
    assert set(rows) == DESIGNS
    for row in rows.values():
        assert float(row["rate_min"]) > 0 and float(row["rate_per_cpu_min"]) > 0
        for prefix in ("vs_ceiling", "vs_fanout", "cpu_vs_ceiling", "cpu_vs_fanout"):
            assert math.isfinite(float(row[f"{prefix}_median"])) and float(row[f"{prefix}_median"]) > 0
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"])
    assert float(rows["ceiling"]["vs_ceiling_median"]) == 1.0


def test_every_answer_was_a_200_and_the_fanout_designs_hit_their_cache(run_folder):
    rounds = read_csv(run_folder / "rounds.csv")
    assert {row["design"] for row in rounds} == DESIGNS
    assert all(row["non_2xx"] == "0" and row["socket_errors"] == "0" for row in rounds)
    assert all(0 < float(row["server_share"]) <= 1.05 for row in rounds)  # one pinned CPU, ticks rounded
    for row in rounds:
        if row["design"] in ("fanout", "hybrid"):
            assert int(row["cache_hits"]) >= int(row["requests"]) > 0


def test_meta_says_what_was_measured_and_how_it_was_pinned(run_folder):
    meta = json.loads((run_folder / "meta.json").read_text())
    assert meta["scale"] == "tiny" and meta["celebrities"] > 0
    assert 1 <= meta["mean_celebrities_followed"] <= 5
    assert meta["settings"]["CELEBRITY_THRESHOLD"] > 0 and meta["pinning"] and meta["git_sha"]


def test_threshold_makes_users_follow_the_asked_number_of_celebrities_on_average():
    followers = np.array([1, 10, 5, 8])  # 4 users: 10/4 = 2.5 followed, then 4.5 with the 8
    assert threshold_for(followers, 4, 3) == 8
    assert threshold_for(followers, 4, 2) == 10
    assert threshold_for(followers, 4, 100) == 1  # never more celebrities than accounts


def page(*ids: int) -> list[dict]:
    return [{"id": i} for i in ids]


def test_pages_that_differ_between_designs_stop_the_run():
    full = page(*range(50, 0, -1))
    pages = {"join": {7: full}, "fanout": {7: full}, "hybrid": {7: full}, "ceiling": {7: full}}
    check_equal_pages(pages, 7)
    with pytest.raises(Unequal, match="hybrid"):
        check_equal_pages({**pages, "hybrid": {7: page(*range(51, 1, -1))}}, 7)
    with pytest.raises(Unequal, match="ceiling"):
        check_equal_pages({**pages, "ceiling": {7: full[1:]}}, 7)
