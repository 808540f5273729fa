"""What every experiment prints and writes the same way: progress lines stamped with the
run's elapsed time (and, where the run has an estimate, the time left), and CSV tables."""

import csv
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:2d}:{seconds % 60:02d}"


@dataclass
class Progress:
    """`say` of one run. planned_s, when set, is the estimate of the whole run: each line
    then shows the time left, and `revise` moves it as parts finish early or late."""

    began: float = field(default_factory=time.monotonic)
    planned_s: float | None = None

    def say(self, line: str) -> None:
        elapsed = time.monotonic() - self.began
        if self.planned_s is None:
            print(f"[{clock(elapsed)}] {line}", flush=True)
            return
        left = max(0.0, self.planned_s - elapsed)
        print(f"[{clock(elapsed)}, ~{clock(left)} left] {line}", flush=True)

    def revise(self, spent: float, estimated: float) -> None:
        """A part took `spent` s where `estimated` was planned: the ETA moves by the difference."""
        if self.planned_s is not None:
            self.planned_s += spent - estimated


def write_csv(path: Path, rows: Iterable[Mapping | Sequence], columns: Sequence[str] | None = None) -> None:
    """rows as a CSV table: mappings, or with `columns` named, sequences in their order. The
    columns are those of the first mapping unless named (a table with no rows keeps its header)."""
    rows = [row if isinstance(row, Mapping) else dict(zip(columns, row, strict=True)) for row in rows]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
