"""`python -m bench pulls`, small, run as a user runs it (redis-server and the hybrid app
over HTTP), and the table it must leave behind; plus its fit."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.experiments.pulls import fit

ROOT = Path(__file__).resolve().parent.parent


def test_the_fit_is_the_line_through_the_points():
    slope, intercept = fit([(0, 100.0), (4, 112.0), (16, 148.0), (60, 280.0)])
    assert slope == pytest.approx(3.0)
    assert intercept == pytest.approx(100.0)


def test_a_small_run_writes_a_reading_per_count_and_the_fit(tmp_path):
    out = tmp_path / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "pulls", "--followed", "0,3", "--reads", "30"]
        + ["--repeats", "2", "--tweets", "3", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr + finished.stdout
    with open(out / "pulls.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(r["row"], r["celebrities_followed"]) for r in rows] == [
        ("per read", "0"),
        ("per read", "3"),
        ("slope per celebrity", ""),
        ("intercept", ""),
    ]
    for row in rows[:2]:
        assert float(row["redis_us"]) > 0 and float(row["app_us"]) > 0
    with open(out / "rounds.csv") as file:
        assert len(list(csv.DictReader(file))) == 4  # two counts, two rounds
    meta = json.loads((out / "meta.json").read_text())
    assert meta["command"].startswith("python -m bench pulls --followed 0,3")
