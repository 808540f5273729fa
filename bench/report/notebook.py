"""`python -m bench.report.notebook RUN`: executes notebooks/timelines.py (jupytext) on a run
folder with nbclient and saves the result beside the run's data as notebook.ipynb, ready
to open in Jupyter or on GitHub."""

import json
import os
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat

from rig.processes import ROOT

NOTEBOOK = ROOT / "notebooks" / "timelines.py"
# What the lesson compares; the sweeps (sweep, thresholds, depths) are optional.
LESSON_EXPERIMENTS = ("latency", "cpu", "capacity")
LESSON_DESIGNS = ("join", "fanout", "hybrid")


def missing_for_the_lesson(folder: Path) -> str | None:
    """Why the lesson cannot run on this run folder, in one line; None when it can."""
    meta = json.loads((Path(folder) / "meta.json").read_text())
    measured = {phase["approach"] for phase in meta.get("phases", [])}
    missing = [e for e in LESSON_EXPERIMENTS if e not in meta.get("experiments", [])]
    missing += [f"the {d} design" for d in LESSON_DESIGNS if d not in measured]
    if not missing:
        return None
    return (
        f"{Path(folder).name} did not measure {', '.join(missing)}: the lesson compares the three "
        "designs' latency, CPU and capacity; run `make bench` with EXPERIMENT unset or naming them"
    )


def execute(run_folder: Path, timeout: int = 300) -> nbformat.NotebookNode:
    notebook = jupytext.read(NOTEBOOK)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute(env={**os.environ, "RESULTS": str(Path(run_folder).resolve())})
    return notebook


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.report.notebook RESULTS_FOLDER")
    folder = Path(sys.argv[1])
    if problem := missing_for_the_lesson(folder):
        sys.exit(f"bench.report.notebook: {problem}")
    target = folder / "notebook.ipynb"
    nbformat.write(execute(folder), target)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
