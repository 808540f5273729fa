"""Is the load suite fast enough not to be what a run measures? Requests/s one Locust
process sustains against an app that does nothing (trivial_app.py), closed loop:

    .venv/bin/python -m bench loadgen [--users 64] [--seconds 15] [--processes N]
                                      [--no-samples] [-- extra locust options]

The app and Locust start through the one harness (rig/processes.py, rig/locust.py),
pinned as Cpus.plan() says, so that they do not share a core where there are two. Printed,
over the steady state (from 3 s after the start to 1 s before the end; Locust's --csv
history gives the request counts): requests/s, the CPU time Locust used (its processes
together) as a share of one core, and that CPU time per request, which says what a core to
itself would sustain even when another program shares it during the measurement. The
suite aims at 8,000 requests/s or more from one Locust process, samples on.
"""

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

from rig.cpu import tree_cpu_seconds
from rig.locust import start_locust
from rig.processes import AppServer, Cpus, stop

WARM_UP_S, COOL_DOWN_S = 3, 1  # left out of the steady state


def interpolate(points: list[tuple[float, float]], at: float) -> float:
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0) if t1 > t0 else v1
    raise ValueError(f"{at} outside the samples")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--processes", type=int, default=0)
    parser.add_argument("--no-samples", action="store_true")
    parser.add_argument("extra", nargs="*", help="more locust options, after --")
    args = parser.parse_args(argv)
    if args.seconds < WARM_UP_S + COOL_DOWN_S + 2:
        parser.error("--seconds must be at least 6 (3 s warm-up, 1 s at the end left out)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="loadgen-") as work:
        print(measure(args, Path(work), Cpus.plan()), flush=True)
    return 0


def measure(args: argparse.Namespace, work: Path, cpus: Cpus) -> str:
    # The trivial app opens no store: the URLs only satisfy AppServer's environment.
    app = AppServer(
        "bench.experiments.loadgen.trivial_app",
        work / "unused.db",
        "redis://127.0.0.1:1/0",
        work / "app.log",
        cpus=cpus.app,
    )
    options = ["--only-summary", "--csv", str(work / "locust"), *args.extra]
    if not args.no_samples:
        options += ["--samples-csv", str(work / "samples.csv")]
    if args.processes:
        options += ["--processes", str(args.processes)]
    with app:
        locust = start_locust(
            app.url, args.users, args.seconds, work / "locust.log", tuple(options), cpus.load
        )
        try:
            cpu, app_cpu = [], []  # (unix time, CPU seconds so far)
            while locust.poll() is None:
                now = time.time()
                cpu.append((now, tree_cpu_seconds(locust.pid)))
                app_cpu.append((now, tree_cpu_seconds(app.process.pid)))
                time.sleep(0.25)
        finally:
            stop(locust)
    if locust.returncode != 0:
        sys.stderr.write((work / "locust.log").read_text()[-4000:])
        raise SystemExit(f"locust exited {locust.returncode}")
    return steady_state(args, work, cpu, app_cpu)


def steady_state(args: argparse.Namespace, work: Path, cpu: list, app_cpu: list) -> str:
    with open(work / "locust_stats_history.csv") as file:
        history = [
            (float(row["Timestamp"]), float(row["Total Request Count"]))
            for row in csv.DictReader(file)
            if row["Name"] == "Aggregated"
        ]
    with open(work / "locust_stats.csv") as file:
        total = next(row for row in csv.DictReader(file) if row["Name"] == "Aggregated")
    start, end = history[0][0] + WARM_UP_S, history[-1][0] - COOL_DOWN_S
    seconds = end - start
    requests = interpolate(history, end) - interpolate(history, start)
    used = interpolate(cpu, end) - interpolate(cpu, start)
    app_used = interpolate(app_cpu, end) - interpolate(app_cpu, start)
    samples = "off"
    if not args.no_samples:
        with open(work / "samples.csv") as file:
            samples = f"on ({sum(1 for _ in file) - 1} rows)"
    return (
        f"{requests / seconds:.0f} requests/s over {seconds:.0f} s of steady state; locust CPU "
        f"{used / seconds:.0%} of a core, {used / requests * 1e6:.0f} us per request "
        f"(-> {requests / used:.0f} requests/s per core); app CPU {app_used / seconds:.0%}; "
        f"{args.users} users, {args.processes or 1} process(es), samples {samples}, "
        f"{total['Failure Count']} failures"
    )
