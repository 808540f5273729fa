"""python -m bench profile [--scale small] [--seconds 10] [--label before] [--out DIR]

Where a cached read's CPU goes, per design: the setup of `python -m bench reads` (the same
seeded stores and readers; the app on one CPU, but its redis-server beside wrk on another, so
that py-spy never samples the app while it waits for Redis to leave its CPU), and
for each of ceiling, join, fanout and hybrid under wrk's closed loop:
  1. the app's and redis-server's CPU per answer over --seconds, with no profiler attached;
  2. py-spy sampling the app (idle threads left out) for --seconds: its collapsed stacks
     (<design>.txt.gz) sorted into the parts of a read (bench/experiments/profile_parts.py), then
     a flame graph (<design>.svg) over another --seconds.
The parts' shares of the samples times the unprofiled CPU per answer give µs of a read by
part; Redis's own CPU is measured, not sampled. Writes DIR/LABEL/parts.csv (and printed,
parts.txt), the flame graphs, the stacks and meta.json; a run labelled other than `before`
also prints, and writes as DIR/parts-before-after.csv and .txt, the comparison with
DIR/before/parts.csv when there is one.
"""

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.experiments import profile_parts
from bench.experiments.profile_parts import Profile
from bench.experiments.reads import (
    PAGE,
    Unequal,
    app_server,
    cache_counters,
    hits_during,
    server_and_load_cpus,
    server_cpu,
)
from bench.experiments.reads.report import DESIGNS
from bench.experiments.reads.seed import CACHED, Seeded, prepare
from bench.report.meta import packages, source_version
from datagen.scales import SCALES
from rig import wrk
from rig.cpu import scheduled_seconds
from rig.processes import ROOT, AppServer, Cpus, RedisServer, pinned

NO_PY_SPY = "py-spy not found: .venv/bin/pip install -r requirements.txt (it pins py-spy)"
RATE = 250  # samples a second: ~2,500 a design over 10 s


def say(line: str) -> None:
    print(f"[profile] {line}", flush=True)


def py_spy() -> str:
    binary = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{shutil.os.environ['PATH']}")
    if binary is None:
        raise SystemExit(NO_PY_SPY)
    return binary


def record(pid: int, seconds: float, form: str, output: Path, cpus: tuple[int, ...]) -> None:
    """py-spy on the app for `seconds`, on the load's CPU so that it takes none of the app's."""
    command = [py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--duration", f"{seconds:.0f}"]
    command += ["--format", form, "--output", str(output)]
    subprocess.run(pinned(command, cpus), check=True, capture_output=True, timeout=seconds + 60)


def load(app: AppServer, script: Path, seconds: float, cpus: Cpus) -> wrk.WrkResult:
    result = wrk.run(app.url, script, seconds, 32, cpus.load)
    if result.non_2xx or result.socket_errors:
        raise Unequal(f"{app.module}: {result.non_2xx:,} non-2xx, {result.socket_errors:,} socket errors")
    return result


def thread_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's event loop thread (its first) and of its other threads."""
    loop = scheduled_seconds_of(Path(f"/proc/{pid}/task/{pid}"))
    return loop, scheduled_seconds(pid) - loop


def scheduled_seconds_of(task: Path) -> float:
    return int((task / "schedstat").read_text().split()[0]) / 1e9


def cpu_per_answer(app: AppServer, redis: RedisServer, script: Path, seconds: float, cpus: Cpus):
    """µs per answer of the app's event loop thread, its other threads and redis-server,
    nothing attached to the app."""
    counters = cache_counters(app)
    before = (*thread_seconds(app.process.pid), server_cpu(app, redis)[1])
    result = load(app, script, seconds, cpus)
    after = (*thread_seconds(app.process.pid), server_cpu(app, redis)[1])
    hits_during(app, counters, result.requests)  # a fanout read that is not a cache hit stops the run
    return tuple((a - b) * 1e6 / result.requests for a, b in zip(after, before, strict=True))


def compress(path: Path) -> None:
    """The stacks as <design>.txt.gz: a tenth of the size, for a run folder in git."""
    with path.open("rb") as raw, gzip.open(path.with_suffix(".txt.gz"), "wb") as packed:
        shutil.copyfileobj(raw, packed)
    path.unlink()


def sampled(app: AppServer, script: Path, seconds: float, cpus: Cpus, out: Path, design: str) -> None:
    """The collapsed stacks, then the flame graph, while wrk keeps the app busy."""
    loaded = threading.Thread(target=load, args=(app, script, 2 * seconds + 4, cpus))
    loaded.start()
    try:
        time.sleep(1)
        record(app.process.pid, seconds, "raw", out / f"{design}.txt", cpus.load)
        compress(out / f"{design}.txt")
        record(app.process.pid, seconds, "flamegraph", out / f"{design}.svg", cpus.load)
    finally:
        loaded.join()


def profile(design: str, args, seeded: Seeded, redis: RedisServer, work: Path, cpus: Cpus) -> Profile:
    app = app_server(design, seeded, redis, args.run / "logs", cpus)
    try:
        app.start()
        script = wrk.write_script(work / f"{design}.lua", seeded.readers, PAGE, seed=0)
        load(app, script, args.warmup, cpus)
        loop_us, threads_us, redis_us = cpu_per_answer(app, redis, script, args.seconds, cpus)
        sampled(app, script, args.seconds, cpus, args.run, design)
    finally:
        app.stop()
    samples = profile_parts.samples_by_part(args.run / f"{design}.txt.gz")
    say(
        f"{design}: a read's CPU: app {loop_us:,.0f} µs on its event loop, {threads_us:,.0f} µs on other "
        f"threads; redis-server {redis_us:,.0f} µs; {samples.total():,} samples of the loop"
    )
    return Profile(design, samples, loop_us, threads_us, redis_us)


def profiled_cpus() -> Cpus:
    """The app alone on its CPU, redis-server beside wrk. py-spy counts a thread that is
    ready to run as busy, so an app waiting for its CPU while a redis-server on the same one
    runs a script would be charged for it, at whatever call it was preempted (the send that
    woke Redis, mostly)."""
    plan = server_and_load_cpus()
    return Cpus(app=plan.app, redis=plan.load, load=plan.load)


def run(args) -> list[dict]:
    wrk.require_wrk()
    py_spy()
    cpus = profiled_cpus()
    say(f"pinning: {cpus.describe()}")
    (args.run / "logs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp, RedisServer(Path(tmp), cpus.redis) as redis:
        work = Path(tmp)
        urls = {design: redis.url(db) for design, db in CACHED.items()}
        seeded = prepare(args.scale, work, urls, None, 3, 1000, PAGE, 42, say)
        rows = []
        for design in args.designs:
            rows += profile(design, args, seeded, redis, work, cpus).rows(args.label)
    return rows


def resorted(args) -> list[dict]:
    """A run's stored stacks sorted again (the parts' rules changed), with its measured CPU."""
    recorded = profile_parts.read_csv(args.run / "parts.csv")
    rows = []
    for design in dict.fromkeys(r["design"] for r in recorded):
        samples = profile_parts.samples_by_part(args.run / f"{design}.txt.gz")
        rows += Profile(design, samples, *profile_parts.measured(recorded, design)).rows(args.label)
    return rows


def write_meta(args, started: datetime) -> None:
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **source_version(),
        "command": "python -m bench profile " + " ".join(sys.argv[1:]),
        "scale": args.scale,
        "seconds": args.seconds,
        "py_spy_rate": RATE,
        "packages": packages(),
    }
    (args.run / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def compared(out: Path, rows: list[dict], label: str) -> list[dict]:
    """The run beside the `before` run of the same folder, design by design."""
    before = out / "before" / "parts.csv"
    if label == "before" or not before.exists():
        return rows
    earlier = profile_parts.read_csv(before)
    return [r for design in DESIGNS for r in (*earlier, *rows) if r["design"] == design]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.split("\n\n")[1])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--seconds", type=float, default=10, help="measured, then sampled, seconds")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first (default 3)")
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    parser.add_argument("--label", default="before", help="this run's name in the folder (default before)")
    parser.add_argument("--out", type=Path, help=f"default results/profile-<UTC date> (today: {today()})")
    parser.add_argument(
        "--resort", action="store_true", help="sort LABEL's stored stacks again, measuring nothing"
    )
    args = parser.parse_args(argv)
    args.out = args.out or ROOT / "results" / f"profile-{today()}"
    args.run = args.out / args.label
    return args


def today() -> str:
    return f"{datetime.now(UTC):%Y%m%d}"


def main(argv: list[str] | None = None) -> int:
    args, started = parse(argv), datetime.now(UTC)
    try:
        rows = resorted(args) if args.resort else run(args)
    except Unequal as error:
        print(f"bench.experiments.profile: {error}", file=sys.stderr)
        return 1
    profile_parts.write_csv(args.run / "parts.csv", rows)
    if not args.resort:
        write_meta(args, started)
    shown = compared(args.out, rows, args.label)
    printed = profile_parts.table(shown) + "\n"
    (args.run / "parts.txt").write_text(profile_parts.table(rows) + "\n")
    if shown is not rows:
        profile_parts.write_csv(args.out / "parts-before-after.csv", shown)
        (args.out / "parts-before-after.txt").write_text(printed)
    print(printed, end="")
    say(
        f"written: {args.run}/ (parts.csv and .txt, <design>.svg flame graphs, <design>.txt.gz stacks, "
        "meta.json)"
    )
    return 0
