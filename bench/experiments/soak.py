"""Soak: one app under a steady open-loop load (DDIA's read:tweet mix) for a long time,
watching what only time shows: memory that keeps growing (the app's, or Redis's beyond the
bounded timelines), a fanout backlog that creeps up, latency that drifts.

    python -m bench soak --approach approach2 --minutes 30 --rate 700 [--scale default] [--out DIR]
    python -m bench soak --approach approach2 --minutes 30 --from-results DIR   # 70% of DIR's max

--from-results reads DIR/max_throughput.csv (columns approach,max_rate_per_s); --rate wins
when both are given. The scale is seeded into a temporary directory (removed at the end),
a private redis-server and the app are started (rig/processes.py, pinned as Cpus.plan()
says) and Locust runs for --minutes. Every --interval seconds: the RSS of the app's
processes and of redis-server (psutil), Redis's own used_memory, /stats fanout_backlog.

Written to DIR/soak-<approach>-<date>/: memory.csv (time, app_rss_mb, redis_rss_mb,
redis_used_mb, backlog), latency.csv (per minute and operation: count, errors,
p50/p99/p99.9), samples.csv.gz (every request), locust.log, app.log, summary.json
(memory at start and end and its growth per hour over the second half, the backlog, the
requests, errors and achieved rate, latency in the first and last tenth of the run).
"""

import argparse
import csv
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

from bench.phases import compress
from bench.seeding import seed_stores
from datagen.scales import SCALES
from rig.locust import start_locust
from rig.processes import ROOT, Cpus, Stack, say_stamped
from timelines.designs import MODULES, by_module

MB = 1024 * 1024
COLUMNS = ["time", "app_rss_mb", "redis_rss_mb", "redis_used_mb", "backlog"]
SHARE_OF_MAX = 0.7


def max_rate(results: Path, approach: str) -> float:
    path = results / "max_throughput.csv"
    if not path.is_file():
        raise SystemExit(f"--from-results: no {path}; give --rate instead")
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row["approach"] == by_module(approach).name:
                return float(row["max_rate_per_s"])
    raise SystemExit(f"{path} has no row for {approach}; give --rate instead")


def rss_mb(pid: int) -> float:
    """A process and all its children (uvicorn --workers forks them)."""
    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / MB
    except psutil.NoSuchProcess:
        return float("nan")


class Sampler:
    """Memory and backlog rows, one per sample() call."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.redis = stack.redis.client()
        self.rows: list[list[float]] = []

    def sample(self) -> list[float]:
        stack = self.stack
        try:
            backlog = httpx.get(f"{stack.app.url}/stats", timeout=10).json()["fanout_backlog"]
        except httpx.TransportError:
            backlog = -1  # no answer within 10 s: the row says so instead of ending the soak
        used = self.redis.info("memory")["used_memory"] / MB
        app, redis = rss_mb(stack.app.process.pid), rss_mb(stack.redis.process.pid)
        row = [round(time.time(), 3), round(app, 2), round(redis, 2), round(used, 2), backlog]
        self.rows.append(row)
        return row


def soak(args: argparse.Namespace, rate: float, folder: Path) -> dict:
    cpus = Cpus.plan()
    say_stamped(
        f"soak {args.approach}: {args.minutes:g} min at {rate:.0f} req/s on scale "
        f"{args.scale}; {cpus.describe()}; results in {folder}"
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as data_dir:
        stack = Stack(
            folder,
            args.approach,
            cpus,
            data_dir=Path(data_dir),
            settings={
                "timeline_length": args.timeline_length,
                "celebrity_threshold": args.celebrity_threshold,
            },
        )
        try:
            stack.start_redis()
            say_stamped(f"seeding {args.scale} into {data_dir}")
            graph, history = SCALES[args.scale].generate()
            seed_stores(
                stack.database,
                stack.redis.url(),
                args.approach,
                graph,
                history,
                args.timeline_length,
                args.celebrity_threshold,
                progress=True,
            )
            app = stack.start_app()
            sampler = Sampler(stack)
            idle = sampler.sample()
            load_and_sample(stack, sampler, rate, args, cpus)
            drained = app.drained_within(timeout=600)
            stats = app.stats()
        finally:
            stack.stop()
    pd.DataFrame(sampler.rows[1:], columns=COLUMNS).to_csv(folder / "memory.csv", index=False)
    return summarise(folder, args, rate, idle, sampler.rows[1:], drained, stats)


def load_and_sample(stack: Stack, sampler: Sampler, rate: float, args, cpus: Cpus) -> None:
    """Locust for --minutes, a memory sample every --interval seconds meanwhile."""
    seconds = args.minutes * 60
    options = (
        "--arrival-rate",
        str(rate),
        "--read-ratio",
        str(args.read_ratio),
        "--database",
        str(stack.database),
        "--samples-csv",
        str(stack.workdir / "samples.csv"),
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--stop-timeout",
        "30",
    )
    if args.processes > 1:
        options += ("--processes", str(args.processes))
    locust = start_locust(
        stack.app.url,
        args.clients,
        seconds,
        stack.workdir / "locust.log",
        options,
        cpus.load,
        cwd=stack.workdir,
    )
    began = time.time()
    try:
        while locust.poll() is None:
            time.sleep(args.interval)
            if locust.poll() is None:
                say_progress(sampler.sample(), began, seconds)
    except KeyboardInterrupt:
        say_stamped("interrupted: stopping Locust and summarising what ran")
        locust.terminate()
        locust.wait(60)
    if locust.returncode not in (0, None) and not (stack.workdir / "samples.csv").exists():
        raise SystemExit(f"Locust failed: {(stack.workdir / 'locust.log').read_text()[-3000:]}")


def say_progress(row: list[float], began: float, seconds: float) -> None:
    now, app_rss, redis_rss, redis_used, backlog = row
    done = (now - began) / seconds
    say_stamped(
        f"[{(now - began) / 60:5.1f}/{seconds / 60:g} min {min(done, 1):4.0%}] "
        f"app {app_rss:7.1f} MB, redis rss {redis_rss:7.1f} MB used {redis_used:7.1f} MB, "
        f"backlog {backlog}"
    )


def summarise(
    folder: Path,
    args,
    rate: float,
    idle: list[float],
    rows: list[list[float]],
    drained: float | None,
    stats: dict,
) -> dict:
    memory = pd.DataFrame(rows, columns=COLUMNS)
    requests = pd.read_csv(folder / "samples.csv")
    ok = requests["status"].between(200, 299)
    span = requests["time"].max() - requests["time"].min()
    summary = {
        "approach": args.approach,
        "scale": args.scale,
        "minutes": args.minutes,
        "target_rate": rate,
        "clients": args.clients,
        "read_ratio": args.read_ratio,
        "timeline_length": args.timeline_length,
        "requests": len(requests),
        "achieved_rate": round(len(requests) / span, 1) if span > 0 else 0.0,
        "errors": int((~ok).sum()),
        "error_statuses": {int(k): int(v) for k, v in requests.loc[~ok, "status"].value_counts().items()},
        "memory_mb": {
            "idle": {c: round(v, 1) for c, v in zip(COLUMNS[1:4], idle[1:4], strict=True)},
            "start": row_of(memory, 0),
            "end": row_of(memory, -1),
            "max": {c: round(float(memory[c].max()), 1) for c in COLUMNS[1:4]},
            "growth_per_hour_second_half": growth(memory),
        },
        "backlog": {
            "max": int(memory["backlog"].max()),
            "end_of_load": int(memory["backlog"].iloc[-1]),
            "drained_after_load_s": None if drained is None else round(drained, 2),
        },
        "latency_ms": {"first_tenth": latency(requests, 0.0, 0.1), "last_tenth": latency(requests, 0.9, 1.0)},
        "app_stats": stats,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    latency_by_minute(requests).to_csv(folder / "latency.csv", index=False)
    return summary


def latency_by_minute(requests: pd.DataFrame) -> pd.DataFrame:
    """The drift over the run, a row per minute and operation: small enough to keep in git
    where the raw samples (tens of MB for 30 minutes) are not."""
    minute = ((requests["time"] - requests["time"].min()) // 60).astype(int).rename("minute")
    ok = requests["status"].between(200, 299)
    grouped = requests.assign(error=~ok).groupby([minute, "operation"])
    table = grouped.agg(count=("latency_us", "size"), errors=("error", "sum"))
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        table[name] = (grouped["latency_us"].quantile(q) / 1000).round(3)
    return table.reset_index()


def row_of(memory: pd.DataFrame, index: int) -> dict:
    return {c: round(float(memory[c].iloc[index]), 1) for c in COLUMNS[1:4]}


def growth(memory: pd.DataFrame) -> dict:
    """MB per hour, least squares over the second half: the warm-up (caches filling, the
    allocator settling) is over by then, so a slope left is what a leak would look like."""
    half = memory.iloc[len(memory) // 2 :]
    if len(half) < 3:
        return {}
    hours = (half["time"] - half["time"].iloc[0]) / 3600
    return {c: round(float(np.polyfit(hours, half[c], 1)[0]), 2) for c in COLUMNS[1:4]}


def latency(requests: pd.DataFrame, start: float, stop: float) -> dict:
    t0, span = requests["time"].min(), requests["time"].max() - requests["time"].min()
    part = requests[requests["time"].between(t0 + start * span, t0 + stop * span)]
    return {
        op: {f"p{q}": round(float(np.percentile(group["latency_us"], q)) / 1000, 2) for q in (50, 99)}
        for op, group in part.groupby("operation")
    }


def report(summary: dict) -> str:
    memory, backlog = summary["memory_mb"], summary["backlog"]
    errors = f"{summary['errors']} {summary['error_statuses'] or ''}"
    load = (
        f"  requests {summary['requests']:,}, achieved {summary['achieved_rate']} req/s of "
        f"{summary['target_rate']:.0f} asked, errors {errors}"
    )
    lines = [f"soak {summary['approach']} ({summary['scale']}, {summary['minutes']:g} min):", load]
    for name in ("idle", "start", "end", "max"):
        lines.append(f"  memory {name:5}: " + ", ".join(f"{k} {v:.1f}" for k, v in memory[name].items()))
    slopes = ", ".join(f"{k} {v:+.1f}" for k, v in memory["growth_per_hour_second_half"].items()) or "n/a"
    lines.append(f"  growth per hour (second half): {slopes}")
    lines.append(
        f"  backlog: max {backlog['max']}, at the end of the load {backlog['end_of_load']}, "
        f"drained {backlog['drained_after_load_s']} s after"
    )
    for part in ("first_tenth", "last_tenth"):
        lines.append(f"  latency ms, {part.replace('_', ' ')}: {summary['latency_ms'][part]}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--approach", required=True, choices=MODULES)
    parser.add_argument("--minutes", type=float, default=30.0, help="default: %(default)s")
    parser.add_argument("--rate", type=float, help="open-loop requests/s (or --from-results)")
    parser.add_argument(
        "--from-results",
        type=Path,
        metavar="DIR",
        help=f"{SHARE_OF_MAX * 100:.0f}%% of the approach's max_rate_per_s in DIR/max_throughput.csv",
    )
    parser.add_argument("--scale", choices=SCALES, default="default", help="default: %(default)s")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="default: results/")
    parser.add_argument("--clients", type=int, default=128, help="Locust users (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (default: %(default)s)")
    parser.add_argument("--read-ratio", type=float, default=65.0, help="reads per tweet (default: DDIA's 65)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default: 5)")
    parser.add_argument("--timeline-length", type=int, default=800, help="TIMELINE_LENGTH (default: 800)")
    parser.add_argument(
        "--celebrity-threshold", type=int, default=10_000, help="CELEBRITY_THRESHOLD (default: 10000)"
    )
    args = parser.parse_args(argv)
    if args.rate is None and args.from_results is None:
        parser.error("give --rate, or --from-results DIR holding max_throughput.csv")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rate = args.rate if args.rate is not None else SHARE_OF_MAX * max_rate(args.from_results, args.approach)
    folder = args.out.resolve() / f"soak-{args.approach}-{datetime.now():%Y%m%d-%H%M%S}"
    summary = soak(args, rate, folder)
    compress(folder / "samples.csv", folder / "samples.csv.gz")  # 30 min is ~50 MB of plain CSV
    print(report(summary), flush=True)
    say_stamped(f"results: {folder}")
    return 0
