"""The one way the bench, the fault scenarios, the soak and the tests start the load suite:
`locust -f loadtest/ --headless` as a subprocess, exactly as a person runs it, pinned to
the load generator's CPUs, its output in a log file.

    start_locust(app.url, users=64, seconds=30, log=folder / "locust.log", cpus=cpus.load,
                 options=("--arrival-rate", "300", "--samples-csv", str(folder / "samples.csv")))
"""

import subprocess
import sys
from pathlib import Path

from bench.processes import ROOT, pinned

LOCUST = Path(sys.executable).with_name("locust")
LOADTEST = ROOT / "loadtest"
NO_LOCUST = f"locust not found beside {sys.executable}: pip install -r requirements.txt into that venv"


def locust_command(host: str, users: int, seconds: float, options: tuple[str, ...] = ()) -> list[str]:
    """Every user started at once (-r = -u), for a whole number of seconds (Locust's -t)."""
    return [str(LOCUST), "-f", str(LOADTEST), "--headless", "--host", host, "-u", str(users),
            "-r", str(users), "-t", f"{max(1, round(seconds))}s", *options]


def start_locust(host: str, users: int, seconds: float, log: Path, options: tuple[str, ...] = (),
                 cpus: tuple[int, ...] = (), cwd: Path = ROOT,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """The running Locust process; its stdout and stderr appended to `log`; our environment
    unless `env` (the suite reads API_TOKEN from it)."""
    if not LOCUST.exists():
        raise SystemExit(NO_LOCUST)
    with open(log, "ab") as output:
        return subprocess.Popen(pinned(locust_command(host, users, seconds, options), cpus), cwd=cwd,
                                env=env, stdout=output, stderr=subprocess.STDOUT)
