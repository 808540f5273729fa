"""The one way the bench, the fault scenarios, the soak and the tests start the load suite:
`locust -f loadtest/ --headless` as a subprocess, exactly as a person runs it, pinned to
the load generator's CPUs, its output in a log file.

    start_locust(app.url, users=64, seconds=30, log=folder / "locust.log", cpus=cpus.load,
                 options=("--arrival-rate", "300", "--samples-csv", str(folder / "samples.csv")))
"""

import subprocess
import sys
from pathlib import Path

from rig.processes import ROOT, free_port, pinned

LOCUST = Path(sys.executable).with_name("locust")
LOADTEST = ROOT / "loadtest"
NO_LOCUST = f"locust not found beside {sys.executable}: pip install -r requirements.txt into that venv"


def locust_command(
    host: str,
    users: int,
    seconds: float | None,
    options: tuple[str, ...] = (),
    locustfiles: tuple[Path, ...] = (LOADTEST,),
) -> list[str]:
    """Every user started at once (-r = -u), for a whole number of seconds (Locust's -t), or
    until stopped when `seconds` is None. Extra locustfiles add plugins to the suite."""
    run_time = () if seconds is None else ("-t", f"{max(1, round(seconds))}s")
    if "--processes" in options and "--master-bind-port" not in options:
        # Locust's master listens on port 5557 on every interface by default, and a worker
        # connects to whichever master is there: the lingering workers of the previous run, or
        # another run's on this machine, joined this one (a phase once counted 4 workers of 2).
        port = str(free_port())
        options = (
            *options,
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            port,
            "--master-port",
            port,
        )
    return [
        str(LOCUST),
        "-f",
        ",".join(map(str, locustfiles)),
        "--headless",
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(users),
        *run_time,
        *options,
    ]


def start_locust(
    host: str,
    users: int,
    seconds: float | None,
    log: Path,
    options: tuple[str, ...] = (),
    cpus: tuple[int, ...] = (),
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    locustfiles: tuple[Path, ...] = (LOADTEST,),
    own_session: bool = False,
) -> subprocess.Popen:
    """The running Locust process; its stdout and stderr appended to `log`; our environment
    unless `env` (the suite reads API_TOKEN from it). `own_session`: a Ctrl-C at the terminal
    reaches only the caller, which stops Locust itself."""
    if not LOCUST.exists():
        raise SystemExit(NO_LOCUST)
    command = pinned(locust_command(host, users, seconds, options, locustfiles), cpus)
    with open(log, "ab") as output:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=own_session
        )
