"""`make bench SCALE=tiny`, run the way a user runs it, and what its run folder must hold:
the smoke test of the whole pipeline (seeding, three apps, the load suite, summaries,
charts), then the notebook executed on that folder with nbclient."""

import gzip
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench import notebook as bench_notebook
from timelines.designs import NAMES

ROOT = Path(__file__).resolve().parent.parent
APPROACHES = set(NAMES)
CHARTS = ("1-latency", "2-write-cost", "3-fanout-lag", "4-crossover", "5-thresholds",
          "6-max-throughput", "7-arithmetic")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    finished = subprocess.run(["make", "bench", "SCALE=tiny", f"OUT={out}"], cwd=ROOT, check=False,
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "fixed:" in finished.stdout  # progress was shown phase by phase
    (folder,) = out.iterdir()
    return folder


def test_summary_has_one_row_per_approach_and_operation_without_errors(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv")
    assert set(zip(summary.approach, summary.operation, strict=True)) == {
        (a, op) for a in APPROACHES for op in ("read", "tweet")}
    assert (summary.errors == 0).all(), summary
    assert (summary.p50_ms <= summary.p99_ms).all() and (summary.p99_ms <= summary.p999_ms).all()
    reads = summary[summary.operation == "read"]
    assert (reads.achieved_rate >= 0.9 * reads.target_rate).all(), reads


def test_samples_are_raw_per_request_rows(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv")
    for approach in APPROACHES:
        with gzip.open(run_folder / "samples" / f"{approach}-fixed.csv.gz", "rt") as file:
            samples = pd.read_csv(file)
        assert list(samples.columns) == ["time", "operation", "status", "latency_us", "count"]
        counted = summary[summary.approach == approach].set_index("operation")["count"]
        assert samples.operation.value_counts().to_dict() == counted.to_dict()


def test_meta_says_what_ran_where(run_folder):
    meta = json.loads((run_folder / "meta.json").read_text())
    assert len(meta["git_sha"]) == 40
    assert meta["scale"] == "tiny" and meta["plan"]["dataset"]["users"] == 1000
    assert meta["machine"]["cpu_model"] and meta["machine"]["usable_cpus"] >= 1
    assert meta["packages"]["fastapi"] and meta["packages"]["locust"]
    fixed = [p for p in meta["phases"] if p["phase"] == "fixed"]
    assert {p["approach"] for p in fixed} == APPROACHES
    assert all(p["target_rate"] == meta["plan"]["fixed_rate"] and p["achieved_rate"] > 0 for p in fixed)


def test_every_experiment_has_its_table(run_folder):
    lags = pd.read_csv(run_folder / "fanout_lag.csv")
    assert set(lags.approach) == {"fanout", "hybrid"}
    assert lags[lags.approach == "hybrid"].pulled.any()  # celebrities' tweets, never fanned out
    assert (lags[~lags.pulled].lag_ms > 0).all()
    threshold = json.loads((run_folder / "meta.json").read_text())["plan"]["celebrity_threshold"]
    hybrid_fanned = lags[(lags.approach == "hybrid") & ~lags.pulled & (lags.phase == "fixed")]
    assert (hybrid_fanned.followers < threshold).all()
    assert len(pd.read_csv(run_folder / "thresholds.csv")) >= 2
    assert set(pd.read_csv(run_folder / "depths.csv").approach) == {"join", "fanout"}
    assert set(pd.read_csv(run_folder / "max_throughput.csv").approach) == APPROACHES
    arithmetic = pd.read_csv(run_folder / "arithmetic.csv").set_index("approach")
    fanout = arithmetic.loc["fanout"]
    # Every fanned-out tweet of the phase writes one entry per follower: the log agrees.
    assert fanout.measured_writes_per_s == pytest.approx(fanout.expected_writes_per_s, rel=0.05)


def test_charts_are_drawn(run_folder):
    for name in CHARTS:
        png = run_folder / "charts" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def outputs(notebook, kind: str) -> list[str]:
    return [output["data"][kind] for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if kind in output.get("data", {})]


def test_notebook_teaches_from_the_run(run_folder):
    notebook = bench_notebook.execute(run_folder, timeout=120)
    assert run_folder.name in str(notebook.cells[1].outputs[0].get("text", ""))  # it read RESULTS
    # Seven findings, each stated in words computed from the run, then the model's answer.
    findings = [text for text in outputs(notebook, "text/markdown") if text.startswith("**Finding:**")]
    assert len(findings) == len(CHARTS)
    answer = [text for text in outputs(notebook, "text/markdown") if text.startswith("**The model says:**")]
    assert len(answer) == 1 and "needs the fewest cores" in answer[0]
    assert not any(re.search(r"\bnan\b", text) for text in findings + answer)  # every figure was there
    # Each finding's chart, and the model's, drawn by the notebook's own cells.
    assert len(outputs(notebook, "image/png")) == len(CHARTS) + 1
    assert "bench.charts" not in "".join(cell.source for cell in notebook.cells)
