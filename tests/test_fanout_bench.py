"""`python -m bench fanout` at a tiny size, run the way a user runs it: every follower
count measured through the app's worker, with figures that can be true."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# Two nodes: the bench starts and stops a Redis Cluster of its own (--redis-nodes).
@pytest.mark.parametrize("redis", [[], ["--redis-nodes", "2"]], ids=["redis-server", "cluster"])
def test_fanout_bench_measures_every_follower_count(tmp_path, redis):
    results = tmp_path / "fanout.json"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "fanout",
            "--followers",
            "300,50",
            "--reps",
            "2",
            "--length",
            "100",
            "--json",
            str(results),
            *redis,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    written = json.loads(results.read_text())
    assert written["redis_nodes"] == (int(redis[1]) if redis else None)
    rows = written["rows"]
    assert [row["followers"] for row in rows] == [50, 300]
    for row in rows:
        assert len(row["tweets"]) == 2
        # The bench itself fails unless every follower was written and the last one reads
        # the tweet back; here the figures must be physically possible.
        assert all(t["follower_writes"] == row["followers"] for t in row["tweets"])
        assert 0 < row["median_seconds"] < 30
        assert 0 < row["median_writes_per_s"] < 10_000_000
        assert 0 < row["median_redis_us_per_write"] < 1_000
        assert f"{row['followers']:>10,}" in finished.stdout  # the printed table has the row
    assert "writes/s at 300 followers" in finished.stdout
