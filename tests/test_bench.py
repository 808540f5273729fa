"""`make bench SCALE=tiny`, run the way a user runs it, and what its run folder must hold:
the smoke test of the whole pipeline (seeding, three apps, the load suite, summaries,
charts), then the notebook executed on that folder with nbclient."""

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import redis

from bench.report import notebook as bench_notebook
from timelines.designs import NAMES

ROOT = Path(__file__).resolve().parent.parent
APPROACHES = set(NAMES)
NOTEBOOK_CHARTS = (
    "1-latency",
    "2-write-cost",
    "3-fanout-lag",
    "4-crossover",
    "5-thresholds",
    "6-max-throughput",
    "7-arithmetic",
)  # the notebook's seven findings
CHARTS = (*NOTEBOOK_CHARTS, "8-ddia-answer", "9-twitter-2012")
MIXES = {"ddia", "celebrities"}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    finished = subprocess.run(
        ["make", "bench", "SCALE=tiny", f"OUT={out}"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "fixed:" in finished.stdout  # progress was shown phase by phase
    assert " left] " in finished.stdout  # with an ETA
    (folder,) = out.iterdir()
    return folder


def test_summary_has_one_row_per_approach_and_operation_without_errors(run_folder):
    summary = pd.read_csv(run_folder / "summary.csv")
    assert set(zip(summary.approach, summary.operation, strict=True)) == {
        (a, op) for a in APPROACHES for op in ("read", "tweet")
    }
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
    # Without WORKERS, one local Locust process sent every phase's load.
    assert meta["command"] == "make bench SCALE=tiny" and meta["load_processes"] == 1
    assert {p["load_processes"] for p in meta["phases"]} == {1}


def test_every_experiment_has_its_table(run_folder):
    lags = pd.read_csv(run_folder / "fanout_lag.csv")
    assert set(lags.approach) == {"fanout", "hybrid"}
    assert lags[lags.approach == "hybrid"].pulled.any()  # celebrities' tweets, never fanned out
    assert (lags[~lags.pulled].lag_ms > 0).all()
    threshold = json.loads((run_folder / "meta.json").read_text())["plan"]["celebrity_threshold"]
    hybrid_fanned = lags[(lags.approach == "hybrid") & ~lags.pulled & (lags.phase == "fixed")]
    assert (hybrid_fanned.followers < threshold).all()
    assert len(pd.read_csv(run_folder / "thresholds.csv")) >= 2
    assert set(pd.read_csv(run_folder / "depths.csv").approach) == APPROACHES
    assert set(pd.read_csv(run_folder / "max_throughput.csv").approach) == APPROACHES
    arithmetic = pd.read_csv(run_folder / "arithmetic.csv").set_index("approach")
    fanout, hybrid = arithmetic.loc["fanout"], arithmetic.loc["hybrid"]
    # Redis's own count of pushes, against the followers of the authors who tweeted: every cache
    # is loaded, so every follower's list takes the tweet once. The hybrid's celebrities do not.
    assert fanout.measured_writes_per_s == pytest.approx(fanout.expected_writes_per_s, rel=0.05)
    assert hybrid.measured_writes_per_s < 0.8 * hybrid.expected_writes_per_s
    assert arithmetic.loc["join"].measured_writes_per_s == 0


def plan_of(run_folder: Path) -> dict:
    return json.loads((run_folder / "meta.json").read_text())["plan"]


def held_under(step, rule: str, plan: dict) -> bool:
    """within_slo's verdict, from phases.csv's row (the read row; tweet_p99_ms joined in)."""
    held = (
        step.p99_ms <= plan["slo_ms"] and step.errors == 0 and step.achieved_rate >= 0.95 * step.target_rate
    )
    if rule == "read" or not held:
        return held
    tweet_ok = step.tweets == 0 or step.tweet_p99_ms <= plan["slo_ms"]
    return tweet_ok and step.late_share <= 0.01 and step.drain_s <= 10


def test_capacity_is_a_search_that_brackets_its_answer(run_folder):
    plan = plan_of(run_folder)
    capacity = pd.read_csv(run_folder / "capacity.csv")
    assert list(capacity.columns[:7]) == ["approach", "mix", "slo", "runs", "median", "min", "max"]
    triples = set(zip(capacity.approach, capacity.mix, capacity.slo, strict=True))
    assert triples == {(a, m, slo) for a in APPROACHES for m in MIXES for slo in ("read", "delivery")}
    assert (capacity.runs == plan["capacity_runs"]).all()
    assert ((capacity["min"] <= capacity["median"]) & (capacity["median"] <= capacity["max"])).all()
    phases = pd.read_csv(run_folder / "phases.csv")
    # Every phase that wrote a tweet knows its delivery; join's are delivered at commit.
    assert phases[phases.tweets > 0].lag_p99_ms.notna().all() and (phases.drain_s >= 0).all()
    assert (phases[phases.approach == "join"].lag_p99_ms.fillna(0) == 0).all()
    # A search runs each rate once; should a rounded rate repeat, its last verdict is the one kept.
    reads = phases[phases.operation == "read"].drop_duplicates(["approach", "phase"], keep="last")
    tweets = phases[phases.operation == "tweet"].drop_duplicates(["approach", "phase"], keep="last")
    reads = reads.set_index(["approach", "phase"])
    reads["tweet_p99_ms"] = tweets.set_index(["approach", "phase"]).p99_ms
    for row in capacity.itertuples():
        for run, bracket in enumerate(row.brackets.split("; "), start=1):
            held, missed = (float(x) for x in bracket.split("-"))
            assert held > 0 and missed / held <= plan["capacity_tolerance"] * 1.01, bracket
            # Both ends of the bracket were run in this run, and judged as the bracket says.
            step = f"step-{row.mix}-{run}-"
            ran = [
                int(name.removeprefix(step))
                for (a, name) in reads.index
                if a == row.approach and name.startswith(step)
            ]

            def nearest(rate: float, ran=ran, step=step) -> str:  # names carry the rounded rate
                return f"{step}{min(ran, key=lambda r: abs(r - rate))}"

            assert held_under(reads.loc[(row.approach, nearest(held))], row.slo, plan)
            assert not held_under(reads.loc[(row.approach, nearest(missed))], row.slo, plan)
    # The delivery rule is the read rule and more: it never credits a design with more.
    by = capacity.set_index(["approach", "mix", "slo"])["median"]
    for approach in APPROACHES:
        for mix in MIXES:
            assert by[(approach, mix, "delivery")] <= by[(approach, mix, "read")]
    steps = phases[phases.phase.str.startswith("step-")]
    assert (steps.seconds >= plan["step_seconds"]).all()  # measured by Locust, not asked for
    # Locust never ran out of users where the app was within the SLO (the bench fails if so).
    short = (steps.too_few_users > 0) & (steps.p99_ms <= plan["slo_ms"]) & (steps.operation == "read")
    assert not short.any()


def test_repeats_are_rounds_of_fresh_apps_in_the_order_meta_lists(run_folder):
    plan = plan_of(run_folder)
    order = json.loads((run_folder / "meta.json").read_text())["order"]
    assert all({"experiment", "approach", "mix", "run", "started_at"} <= set(entry) for entry in order)
    assert [e["started_at"] for e in order] == sorted(e["started_at"] for e in order)
    latency = [
        (e["run"], e["approach"]) for e in order if e["experiment"] == "latency" and e["mix"] == "fixed"
    ]
    # Interleaved: round 1 of every design, then round 2 of every design.
    assert latency == [(run, a) for run in range(1, plan["repeats"] + 1) for a in NAMES]
    for approach in APPROACHES:  # an app of its own each round: its own log
        for run in range(1, plan["repeats"] + 1):
            assert (run_folder / "logs" / f"{approach}-{run}.log").exists()
    drift = pd.read_csv(run_folder / "drift.csv")
    capacity = drift[drift.measure == "capacity"]
    assert len(capacity) == len(APPROACHES) * len(MIXES) * 2  # both SLO rules
    cpu = drift[drift.measure == "cpu_us_per_read"].set_index("approach")
    assert set(cpu.index) == APPROACHES
    assert (cpu.first_run == 1).all() and (cpu.last_run == plan["repeats"]).all() and (cpu["first"] > 0).all()
    assert (drift.flagged == (drift.difference.abs() > drift.spread)).all()


def test_cpu_per_operation_app_and_redis_apart(run_folder):
    cpu = pd.read_csv(run_folder / "cpu.csv").set_index(["approach", "operation", "component"])
    for approach in APPROACHES:
        assert cpu.loc[(approach, "read", "app")].us_median > 0
        assert cpu.loc[(approach, "tweet_with_fanout", "app")].us_median > 0
        assert (cpu.loc[approach].runs >= 2).all()
    assert ("join", "follower_write", "app") not in cpu.index
    assert cpu.loc[("fanout", "follower_write", "redis")].us_median > 0
    # Fanout's reads touch Redis; join's never do: its Redis costs nothing per read.
    join_redis = max(0, cpu.loc[("join", "read", "redis")].us_median)
    assert cpu.loc[("fanout", "read", "redis")].us_median > 10 * join_redis
    assert ("hybrid", "celebrity_pull", "app") in cpu.index


def test_celebrity_sweep_fans_out_where_each_design_should(run_folder):
    plan = plan_of(run_folder)
    sweep = pd.read_csv(run_folder / "celebrity_sweep.csv")
    assert set(sweep.followers) == set(plan["sweep_followers"])
    by = sweep.set_index(["approach", "followers"])
    for n in plan["sweep_followers"]:
        assert not by.loc[("join", n)].fanned_out and by.loc[("join", n)].timeline_writes_median == 0
        # Redis counted a push into each cached follower timeline: followers 1..N-1 are cached,
        # the last (a reader, whose timeline its first read builds) is not.
        assert by.loc[("fanout", n)].fanned_out and by.loc[("fanout", n)].timeline_writes_median == n - 1
        celebrity = n >= plan["celebrity_threshold"]
        assert by.loc[("hybrid", n)].fanned_out == (not celebrity)
        assert (by.loc[("hybrid", n)].timeline_writes_median <= 1) == celebrity
    top, bottom = max(plan["sweep_followers"]), min(plan["sweep_followers"])
    assert by.loc[("fanout", top)].lag_ms_median > by.loc[("fanout", bottom)].lag_ms_median
    hybrid_reads = sweep[(sweep.approach == "hybrid") & (sweep.celebrities_pulled == 1)]
    assert len(hybrid_reads) and (hybrid_reads.read_p50_ms_pulling_it > 0).all()


def test_twitter_2012_model_states_its_inputs(run_folder):
    model = pd.read_csv(run_folder / "twitter_2012.csv")
    assert set(model.approach) == APPROACHES
    assert list(model.total_cores) == pytest.approx(list(model.app_cores + model.redis_cores))
    assert (
        (model.total_cores_min <= model.total_cores + 1e-9)
        & (model.total_cores <= model.total_cores_max + 1e-9)
    ).all()
    fanout = model[model.approach == "fanout"].iloc[0]
    assert fanout.follower_writes_per_s == pytest.approx(4_600 * 75)  # DDIA's arithmetic
    hybrid = model[model.approach == "hybrid"].sort_values("celebrity_threshold")
    assert hybrid.follower_writes_per_s.is_monotonic_increasing  # a higher threshold fans out more
    assert (hybrid.follower_writes_per_s < fanout.follower_writes_per_s).all()
    assumptions = pd.read_csv(run_folder / "twitter_2012_assumptions.csv")
    assert assumptions.assumption.str.contains("cannot know").any()


def test_server_side_shares_one_cpu_set(run_folder):
    cpus = json.loads((run_folder / "meta.json").read_text())["cpus"]
    if cpus["app"]:  # pinned (taskset present, 2 CPUs or more)
        assert cpus["app"] == cpus["redis"] and not set(cpus["app"]) & set(cpus["load"])


def test_charts_are_drawn(run_folder):
    for name in CHARTS:
        png = run_folder / "charts" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def outputs(notebook, kind: str) -> list[str]:
    return [
        output["data"][kind]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if kind in output.get("data", {})
    ]


def test_notebook_teaches_from_the_run(run_folder):
    notebook = bench_notebook.execute(run_folder, timeout=120)
    assert run_folder.name in str(notebook.cells[1].outputs[0].get("text", ""))  # it read RESULTS
    # Seven findings, each stated in words computed from the run, then the model's answer.
    findings = [text for text in outputs(notebook, "text/markdown") if text.startswith("**Finding:**")]
    assert len(findings) == len(NOTEBOOK_CHARTS)
    answer = [text for text in outputs(notebook, "text/markdown") if text.startswith("**The model says:**")]
    assert len(answer) == 1 and "needs the fewest cores" in answer[0]
    assert not any(re.search(r"\bnan\b", text) for text in findings + answer)  # every figure was there
    # Each finding's chart, and the model's, drawn by the bench's chart functions, not copies of them.
    assert len(outputs(notebook, "image/png")) == len(NOTEBOOK_CHARTS) + 1
    source = "".join(cell.source for cell in notebook.cells)
    assert "from bench.report import charts" in source and "plt.subplots" not in source


def test_notebook_runs_on_a_default_run_without_the_optional_sweeps(run_folder, tmp_path):
    """At `default` the depth and threshold sweeps run only when named (EXPERIMENT=...): the
    lesson still executes on such a folder, and says what it did not measure."""
    folder = tmp_path / run_folder.name
    shutil.copytree(run_folder, folder, ignore=shutil.ignore_patterns("depths.csv", "thresholds.csv"))
    notebook = bench_notebook.execute(folder, timeout=120)
    said = "".join(outputs(notebook, "text/markdown"))
    assert "did not sweep history depth" in said and "did not sweep the threshold" in said
    assert len(outputs(notebook, "image/png")) == len(NOTEBOOK_CHARTS)  # the threshold chart is the one gone


def test_the_notebook_on_a_partial_run_is_one_line_naming_what_is_missing(run_folder, tmp_path):
    """A run of one design, or without the capacity search (EXPERIMENT=latency,cpu), cannot
    carry the lesson: `python -m bench.report.notebook` says so in one line instead of a traceback."""
    folder = tmp_path / run_folder.name
    shutil.copytree(run_folder, folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta["experiments"] = ["latency", "cpu"]
    meta["phases"] = [phase for phase in meta["phases"] if phase["approach"] == "join"]
    (folder / "meta.json").write_text(json.dumps(meta))
    refused = subprocess.run(
        [sys.executable, "-m", "bench.report.notebook", str(folder)], cwd=ROOT, capture_output=True, text=True
    )
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "did not measure capacity, the fanout design, the hybrid design" in refused.stderr
    assert not (folder / "notebook.ipynb").exists()


def tiny_bench_run(
    tmp_path, approaches: list[str], experiment: str, options: list[str], timeout: int
) -> tuple[Path, str]:
    """A tiny bench of some designs and experiments, with `options`: its run folder, and what
    it printed."""
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", *options]
        + ["--approaches", *approaches, "--experiment", experiment, "--out", str(tmp_path)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    (folder,) = tmp_path.iterdir()
    return folder, finished.stdout


def test_bench_runs_join_on_postgres(tmp_path):
    """`--store postgres` (make bench STORE=postgres): the join-on-read app on the bench's own
    PostgreSQL server, seeded by COPY, measured as on SQLite, with the database's CPU its own."""
    folder, _ = tiny_bench_run(tmp_path, ["join"], "latency,cpu", ["--store", "postgres"], timeout=300)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["store"] == "postgres" and meta["command"].endswith("STORE=postgres")
    assert meta["postgres"]["server_version"] and meta["postgres"]["settings"]["fsync"] == "on"
    latency = pd.read_csv(folder / "latency.csv").set_index(["approach", "mix", "operation"])
    for mix in ("fixed", "celebrities"):
        read = latency.loc[("join", mix, "read")]
        assert read.repeats == plan_of(folder)["repeats"]
        assert read.achieved_rate_min >= 0.9 * read.target_rate and read.p50_ms_median > 0
    phases = pd.read_csv(folder / "phases.csv")
    assert set(phases.approach) == {"join"} and (phases.errors == 0).all(), phases
    assert (phases.reads[phases.phase.str.startswith("fixed")] > 0).all()
    # The joins run in the server, not the app: its CPU per read is counted apart, and is real.
    cpu = pd.read_csv(folder / "cpu.csv").set_index(["approach", "operation", "component"])
    assert cpu.loc[("join", "read", "postgres")].us_median > 0
    assert cpu.loc[("join", "read", "app")].us_median > 0
    # ...and the capacity model prices the server's cores beside the app's and Redis's.
    (join,) = pd.read_csv(folder / "twitter_2012.csv").itertuples()
    assert join.postgres_cores == pytest.approx(
        300_000 * cpu.loc[("join", "read", "postgres")].us_median / 1e6, rel=0.05
    )
    assert join.total_cores == pytest.approx(join.app_cores + join.redis_cores + join.postgres_cores)


@pytest.mark.parametrize("engine", [["--store", "postgres"], ["--redis-nodes", "3"]], ids=" ".join)
def test_bench_sweeps_celebrities_beyond_one_machine(tmp_path, engine):
    """`make bench STORE=postgres` and `REDIS_NODES=3` run the celebrity sweep too: its graph,
    built in SQLite, copied into the bench's PostgreSQL server (its CPU counted in each
    tweet's cost), or its follower timelines filled shard by shard on the cluster."""
    folder, _ = tiny_bench_run(tmp_path, ["fanout", "hybrid"], "sweep", engine, timeout=300)
    plan = plan_of(folder)
    by = pd.read_csv(folder / "celebrity_sweep.csv").set_index(["approach", "followers"])
    for n in plan["sweep_followers"]:
        # Redis counted a push into every cached follower timeline (the sweep checks the last).
        assert by.loc[("fanout", n)].fanned_out and by.loc[("fanout", n)].timeline_writes_median == n - 1
        assert by.loc[("hybrid", n)].fanned_out == (n < plan["celebrity_threshold"])
        if "postgres" in engine:
            assert by.loc[("fanout", n)].postgres_cpu_ms_median > 0  # the commit, the follower pages
    assert by.loc[("fanout", max(plan["sweep_followers"]))].lag_ms_median > 0


def test_bench_runs_fanout_on_a_redis_cluster(tmp_path):
    """`--redis-nodes 3` (make bench REDIS_NODES=3): the fanout app's caches on a 3-node Redis
    Cluster the bench starts, preloads through the cluster's key scheme and stops again; every
    read a cache hit, and Redis's CPU the sum over its nodes."""
    folder, printed = tiny_bench_run(tmp_path, ["fanout"], "latency,cpu", ["--redis-nodes", "3"], timeout=180)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["redis_nodes"] == 3 and meta["command"].endswith("REDIS_NODES=3")
    phases = pd.read_csv(folder / "phases.csv")
    assert set(phases.approach) == {"fanout"} and (phases.errors == 0).all(), phases
    assert {"fixed", "celebrities", "tweets-1"} <= set(phases.phase)
    reads = phases[(phases.operation == "read") & (phases.reads > 0)]
    assert len(reads) and (reads.cache_hits >= reads.reads).all(), reads
    assert (phases.cache_misses == 0).all(), "a preloaded timeline was not where the app reads it"
    cpu = pd.read_csv(folder / "cpu.csv").set_index(["approach", "operation", "component"])
    assert cpu.loc[("fanout", "read", "redis")].us_median > 0
    # The nodes went with the run: nothing answers on their ports any more.
    (ports,) = re.findall(r"Redis Cluster on ports \[([\d, ]+)\]", printed)
    for port in map(int, ports.split(",")):
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=port, socket_connect_timeout=1).ping()
