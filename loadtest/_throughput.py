"""Is the suite fast enough not to be what a run measures? Requests/s one Locust process
sustains against an app that does nothing (_trivial_app.py), in a closed loop:

    .venv/bin/python -m loadtest._throughput [--users 64] [--seconds 15] [--processes N]
                                             [--no-samples] [-- extra locust options]

The app runs under uvicorn pinned to CPU 0 and Locust to CPU 1 (taskset), so that they do
not share a core. Printed, over the steady state (from 3 s after the start to 1 s before
the end; Locust's --csv history gives the request counts): requests/s, the CPU time Locust
used (its processes together) as a share of one core, and that CPU time per request, which
says what a core to itself would sustain even when another program shares it during the
measurement. Target (issue 3): >= 8,000 requests/s from one Locust process, samples on.
"""

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid and its child processes (--processes forks workers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / TICK
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def interpolate(points: list[tuple[float, float]], at: float) -> float:
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0) if t1 > t0 else v1
    raise ValueError(f"{at} outside the samples")


def wait_for_port(port: int, app: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError as error:
            if time.monotonic() > deadline or app.poll() is not None:
                raise SystemExit("the trivial app did not start") from error
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--processes", type=int, default=0)
    parser.add_argument("--no-samples", action="store_true")
    parser.add_argument("--app-cpu", default="0")
    parser.add_argument("--locust-cpu", default="1")
    parser.add_argument("extra", nargs="*", help="more locust options, after --")
    args = parser.parse_args()
    if args.seconds < 6:
        parser.error("--seconds must be at least 6 (3 s warm-up, 1 s at the end left out)")

    with tempfile.TemporaryDirectory(prefix="loadtest-throughput-") as work:
        measure(args, Path(work))


def measure(args, work: Path) -> None:
    port = free_port()
    app = subprocess.Popen(["taskset", "-c", args.app_cpu, str(BIN / "python"), "-m", "uvicorn",
                            "loadtest._trivial_app:app", "--port", str(port), "--log-level", "warning",
                            "--no-access-log"], cwd=ROOT)
    try:
        wait_for_port(port, app)
        command = ["taskset", "-c", args.locust_cpu, str(BIN / "locust"), "-f", str(ROOT / "loadtest"),
                   "--headless", "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
                   "--host", f"http://127.0.0.1:{port}", "--only-summary", "--csv", str(work / "locust"),
                   *args.extra]
        if not args.no_samples:
            command += ["--samples-csv", str(work / "samples.csv")]
        if args.processes:
            command += ["--processes", str(args.processes)]
        locust = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        cpu, app_cpu = [], []  # (unix time, CPU seconds so far)
        while locust.poll() is None:
            now = time.time()
            cpu.append((now, cpu_seconds(locust.pid)))
            app_cpu.append((now, cpu_seconds(app.pid)))
            time.sleep(0.25)
        output = locust.stdout.read()
    finally:
        app.terminate()
        app.wait()
    if locust.returncode != 0:
        sys.stderr.write(output[-4000:])
        raise SystemExit(f"locust exited {locust.returncode}")

    with open(work / "locust_stats_history.csv") as file:
        history = [(float(row["Timestamp"]), float(row["Total Request Count"]))
                   for row in csv.DictReader(file) if row["Name"] == "Aggregated"]
    with open(work / "locust_stats.csv") as file:
        total = next(row for row in csv.DictReader(file) if row["Name"] == "Aggregated")
    start, end = history[0][0] + 3, history[-1][0] - 1
    seconds = end - start
    requests = interpolate(history, end) - interpolate(history, start)
    used = interpolate(cpu, end) - interpolate(cpu, start)
    app_used = interpolate(app_cpu, end) - interpolate(app_cpu, start)
    samples = "off"
    if not args.no_samples:
        with open(work / "samples.csv") as file:
            samples = f"on ({sum(1 for _ in file) - 1} rows)"
    print(f"{requests / seconds:.0f} requests/s over {seconds:.0f} s of steady state; locust CPU "
          f"{used / seconds:.0%} of a core, {used / requests * 1e6:.0f} us per request "
          f"(-> {requests / used:.0f} requests/s per core); app CPU {app_used / seconds:.0%}; "
          f"{args.users} users, {args.processes or 1} process(es), samples {samples}, "
          f"{total['Failure Count']} failures")


if __name__ == "__main__":
    main()
