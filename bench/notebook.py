"""`python -m bench.notebook RUN`: executes notebooks/timelines.py (jupytext) on a run
folder with nbclient and saves the result beside the run's data as notebook.ipynb, ready
to open in Jupyter or on GitHub."""

import os
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat

from bench.processes import ROOT

NOTEBOOK = ROOT / "notebooks" / "timelines.py"


def execute(run_folder: Path, timeout: int = 300) -> nbformat.NotebookNode:
    notebook = jupytext.read(NOTEBOOK)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute(env={**os.environ, "RESULTS": str(Path(run_folder).resolve())})
    return notebook


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.notebook RESULTS_FOLDER")
    folder = Path(sys.argv[1])
    target = folder / "notebook.ipynb"
    nbformat.write(execute(folder), target)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
