"""`make bench WORKERS=2`'s phase, for real: a Locust master and 2 worker processes
(bench/phases.run_phase, as the bench starts it) against a running fanout app, whose own
counters say how many requests it answered. The one samples file must hold each of them
once: a worker's last chunk lost at the stop, or a chunk written twice, breaks the equality.
"""

import gzip

import pandas as pd
import pytest

from bench.phases import Load, Phase, run_phase
from test_loadtest import seed

RATE = 300
READ_RATIO = 10  # tweets often enough that a lost or doubled one shows in a few seconds
# Measured from each worker's first request (run_phase gives Locust WORKER_START_S more):
# long enough for a rate within 10 % on a busy machine.
SECONDS = 3
# Every way the fanout app answers a timeline read is counted in exactly one of these.
READ_COUNTERS = ("hits", "misses", "database_reads")


def reads_answered(stats: dict) -> int:
    return sum(stats["cache"][name] for name in READ_COUNTERS)


def test_two_worker_processes_write_every_request_once_to_one_samples_file(start_app, tmp_path):
    app = start_app("approach2")
    seed(app)
    phase = Phase(
        "fanout",
        "distributed",
        Load(SECONDS, rate=RATE, read_ratio=READ_RATIO),
        tmp_path / "distributed.csv.gz",
        workers=2,
    )

    run_phase(app, phase, app.database, (), tmp_path / "locust.log")

    with gzip.open(phase.samples, "rt") as file:
        samples = pd.read_csv(file)
    reads, tweets = (int((samples.operation == operation).sum()) for operation in ("read", "tweet"))
    before, after = phase.stats_before, phase.stats_after
    log = (tmp_path / "locust.log").read_text()[-3000:]
    # The app's own count against the samples: every request it answered is in the file once.
    assert reads == reads_answered(after) - reads_answered(before), log
    assert tweets == after["tweets"] - before["tweets"], log
    assert tweets > 0
    assert (samples.status == samples.operation.map({"read": 200, "tweet": 201})).all()
    # Both workers sent and reported, and the suite counted the same requests.
    assert phase.loadtest["processes"] == 2 and phase.row()["load_processes"] == 2
    operations = phase.loadtest["operations"]
    assert (operations["read"], operations["tweet"], operations["errors"]) == (reads, tweets, 0)
    # The two halves of the schedule add up to the target, by the suite's clock and by the
    # samples' own timestamps.
    assert phase.loadtest["openloop"]["achieved_rate"] == pytest.approx(RATE, rel=0.1), log
    times = samples.time.sort_values()
    assert (len(times) - 1) / (times.iloc[-1] - times.iloc[0]) == pytest.approx(RATE, rel=0.1)
