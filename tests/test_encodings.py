"""`python -m bench encodings` at a tiny size, run the way a user runs it: every candidate
measured, and the lists really cheaper in memory than the sorted sets."""

import csv
import math
import subprocess
import sys
from pathlib import Path

from bench.experiments.encodings import CANDIDATES

ROOT = Path(__file__).resolve().parent.parent


def test_every_encoding_is_measured_and_lists_take_less_memory_than_sorted_sets(tmp_path):
    table = tmp_path / "encodings.csv"
    # Length 200: above Redis's default zset-max-listpack-entries (128), so the sorted sets
    # are skiplists as they are at 800; at 50 they would be listpacks, as small as a list.
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "encodings",
            "--users",
            "200",
            "--length",
            "200",
            "--tweets",
            "10",
            "--csv",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    with table.open() as rows:
        figures = {row["encoding"]: row for row in csv.DictReader(rows)}
    assert list(figures) == [candidate.name for candidate in CANDIDATES]
    for name, row in figures.items():
        for column in (
            "bytes_per_entry",
            "bytes_per_entry_after_pushes",
            "redis_cpu_us_per_write",
            "writes_per_s",
        ):
            value = float(row[column])
            assert math.isfinite(value) and value > 0, (name, column, value)
        assert name in finished.stdout  # the printed table has the row too
    per_entry = {name: float(row["bytes_per_entry"]) for name, row in figures.items()}
    lists = [v for name, v in per_entry.items() if name.startswith("list")]
    skiplist_zsets = [v for name, v in per_entry.items() if name.startswith("zset,")]
    assert len(lists) == 4 and len(skiplist_zsets) == 2
    assert max(lists) < min(skiplist_zsets), per_entry
