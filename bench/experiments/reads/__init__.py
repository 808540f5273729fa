"""python -m bench reads [--scale small] [--seconds 10] [--repeats 3] [--out DIR]

Cached-read throughput of the three designs against the stack's in-memory ceiling, in one
run: `GET /timeline/{reader}?limit=50` in a closed loop (wrk, 32 connections) on readers
who follow a few celebrities, for
  ceiling  ceiling_app.py: the same FastAPI stack answering one real page from memory
  join     approach1 (SQLite)
  fanout   approach2 (its timelines loaded into Redis)
  hybrid   approach3_hybrid (likewise, celebrities merged at read)
The server side (the app and its redis-server) shares one pinned CPU, wrk has another.
The designs take turns, round after round, so that whatever else the machine is doing
falls on all of them; each ratio is taken within a round. Besides req/s, each design's
answers per CPU-second of its server (the app's and redis-server's CPU time, from /proc)
say what it would do with the CPU to itself: on a machine shared with other work, that
figure moves far less than req/s does. Every answer must be a 200, a sampled page must be
the same in join, fanout and hybrid, and the fanout designs' reads must all be cache hits,
or the run stops. Writes reads.csv, rounds.csv, summary.txt, meta.json and the apps' logs.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.experiments.reads import report as reads_report
from bench.experiments.reads.report import DESIGNS, Measurement
from bench.experiments.reads.seed import CACHED, TIMELINE_LENGTH, Seeded, prepare
from bench.output import Progress, write_csv
from bench.report.meta import machine, packages, source_version
from datagen.scales import SCALES
from rig import wrk
from rig.cpu import tree_cpu_seconds
from rig.processes import ROOT, AppServer, Cpus, RedisServer
from timelines import designs
from timelines.stats import CACHE_COUNTERS

CEILING_MODULE = "bench.experiments.reads.ceiling_app"
PAGE = 50
# Counters of the fanout apps that a cached read must leave alone.
NOT_A_HIT = tuple(name for name in CACHE_COUNTERS if name != "hits")


class Unequal(Exception):
    """The designs did not answer the same thing: their rates would not be comparable."""


say = Progress().say


def server_and_load_cpus() -> Cpus:
    """The app and its Redis together on the first CPU, wrk alone on another."""
    plan = Cpus.plan()
    return Cpus(app=plan.app, redis=plan.app, load=plan.load[:1]) if plan.app else plan


def module_of(design: str) -> str:
    """What uvicorn runs for a column of the table: the ceiling app, or the design's own."""
    return CEILING_MODULE if design == "ceiling" else designs.by_name(design).module


def app_server(design: str, seeded: Seeded, redis: RedisServer, logs: Path, cpus: Cpus) -> AppServer:
    settings = {
        "timeline_length": TIMELINE_LENGTH,
        "celebrity_threshold": seeded.threshold,
        "ceiling_user": seeded.readers[0],
    }
    database = seeded.databases["join" if design == "ceiling" else design]
    redis_url = redis.url(CACHED.get(design, 0))
    return AppServer(
        module_of(design), database, redis_url, logs / f"{design}.log", cpus.app, settings=settings
    )


def sampled_pages(app: AppServer, readers: list[int]) -> dict[int, list[dict]]:
    pages = {}
    for reader in readers:
        response = httpx.get(f"{app.url}/timeline/{reader}", params={"limit": PAGE}, timeout=30)
        if response.status_code != 200:
            raise Unequal(f"{app.module}: GET /timeline/{reader} answered {response.status_code}")
        pages[reader] = response.json()["tweets"]
    return pages


def check_equal_pages(pages: dict[str, dict[int, list[dict]]], ceiling_user: int) -> None:
    for reader, join_page in pages["join"].items():
        if len(join_page) != PAGE:
            raise Unequal(f"join: reader {reader}'s page holds {len(join_page)} tweets, not {PAGE}")
        for design in ("fanout", "hybrid"):
            if [t["id"] for t in pages[design][reader]] != [t["id"] for t in join_page]:
                raise Unequal(f"{design}: reader {reader}'s page differs from join-on-read's")
    if pages["ceiling"][ceiling_user] != pages["join"][ceiling_user]:
        raise Unequal(f"ceiling: the page it serves is not reader {ceiling_user}'s page from join-on-read")


def server_cpu(app: AppServer, redis: RedisServer) -> tuple[float, float]:
    return tree_cpu_seconds(app.process.pid), tree_cpu_seconds(redis.process.pid)


def cache_counters(app: AppServer) -> dict[str, int] | None:
    return app.stats()["cache"] if app.module in designs.FANOUT_MODULES else None


def hits_during(app: AppServer, before: dict | None, requests: int) -> int | None:
    """Cache hits counted while wrk ran, after checking that nothing but hits happened."""
    if before is None:
        return None
    after = cache_counters(app)
    grown = {name: after[name] - before[name] for name in NOT_A_HIT if after[name] != before[name]}
    hits = after["hits"] - before["hits"]
    if grown or hits < requests:
        raise Unequal(
            f"{app.module}: reads were not all cache hits: {hits:,} hits for {requests:,} "
            f"answers, and {grown}"
        )
    return hits


def measure(
    design: str,
    round_: int,
    args,
    seeded: Seeded,
    redis: RedisServer,
    work: Path,
    out: Path,
    cpus: Cpus,
    pages: dict,
) -> Measurement:
    app = app_server(design, seeded, redis, out / "logs", cpus)
    try:  # stopped even when it fails to start
        app.start()
        if round_ == 0:
            pages[design] = sampled_pages(app, args.samples if design != "ceiling" else [seeded.readers[0]])
        script = wrk.write_script(work / f"{design}.lua", seeded.readers, PAGE, seed=round_)
        warm = wrk.run(app.url, script, args.warmup, args.connections, cpus.load)
        before, cpu_before = cache_counters(app), server_cpu(app, redis)
        result = wrk.run(app.url, script, args.seconds, args.connections, cpus.load)
        cpu_after = server_cpu(app, redis)
        app_cpu, redis_cpu = (after - earlier for after, earlier in zip(cpu_after, cpu_before, strict=True))
        for each in (warm, result):
            if each.non_2xx or each.socket_errors:
                raise Unequal(
                    f"{design}: {each.non_2xx:,} answers were not 2xx and {each.socket_errors:,} "
                    f"failed at the socket, of {each.requests:,}"
                )
        return Measurement(
            round_,
            design,
            result,
            hits_during(app, before, result.requests),
            app_cpu,
            redis_cpu,
            os.getloadavg()[0],
        )
    finally:
        app.stop()


def rounds(args, seeded: Seeded, redis: RedisServer, work: Path, out: Path, cpus: Cpus) -> list[Measurement]:
    measurements, pages = [], {}
    for round_ in range(args.repeats):
        order = DESIGNS[round_ % len(DESIGNS) :] + DESIGNS[: round_ % len(DESIGNS)]
        for design in order:
            m = measure(design, round_, args, seeded, redis, work, out, cpus, pages)
            hits = "" if m.cache_hits is None else f", {m.cache_hits:,} cache hits"
            say(
                f"round {round_ + 1}/{args.repeats} {design:<7} {m.wrk.rate:>8,.0f} req/s  "
                f"p50 {m.wrk.p50_ms:.2f} ms  p99 {m.wrk.p99_ms:.2f} ms  "
                f"{m.wrk.bytes_per_response:,.0f} B/answer  wrk {m.wrk.load_cpu:.0%} CPU{hits}; "
                f"the server got {m.server_share:.0%} of its CPU: {m.rate_per_cpu:,.0f} req/CPU-s "
                f"({m.redis_cpu / m.server_cpu:.0%} of it Redis); "
                f"load average {m.load_average:.1f}"
            )
            measurements.append(m)
        if round_ == 0:
            check_equal_pages(pages, seeded.readers[0])
            say(
                f"equal answers: {len(args.samples)} sampled pages identical in join, fanout and hybrid; "
                f"the ceiling serves reader {seeded.readers[0]}'s page"
            )
    return measurements


def write_meta(
    out: Path, args, seeded: Seeded, cpus: Cpus, redis: RedisServer, started: datetime, source: dict
) -> None:
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **source,
        "command": "python -m bench reads " + " ".join(sys.argv[1:]),
        "scale": args.scale,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "repeats": args.repeats,
        "connections": args.connections,
        "limit": PAGE,
        "settings": {"TIMELINE_LENGTH": TIMELINE_LENGTH, "CELEBRITY_THRESHOLD": seeded.threshold},
        "celebrities": seeded.celebrities,
        "eligible_readers": seeded.eligible_readers,
        "readers": len(seeded.readers),
        "mean_celebrities_followed": round(seeded.mean_celebrities_followed, 2),
        "ceiling_user": seeded.readers[0],
        "pinning": cpus.describe(),
        "machine": machine(cpus, redis),
        "wrk": wrk.version(),
        "packages": packages(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def run(args) -> list[dict]:
    started, source = datetime.now(UTC), source_version()
    wrk.require_wrk()
    cpus = server_and_load_cpus()
    say(f"pinning: {cpus.describe()}")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp,
        RedisServer(Path(tmp), cpus.redis) as redis,
    ):
        work = Path(tmp)
        urls = {design: redis.url(db) for design, db in CACHED.items()}
        seeded = prepare(
            args.scale,
            work,
            urls,
            args.threshold,
            args.celebrities_followed,
            args.readers,
            PAGE,
            args.seed,
            say,
        )
        say(
            f"{seeded.celebrities} celebrities (>= {seeded.threshold:,} followers); {len(seeded.readers):,} "
            f"readers of {seeded.eligible_readers:,} following 1-5, "
            f"{seeded.mean_celebrities_followed:.2f} celebrities each on average"
        )
        args.samples = seeded.readers[: args.sample_pages]
        measurements = rounds(args, seeded, redis, work, args.out, cpus)
        write_meta(args.out, args, seeded, cpus, redis, started, source)
    rows = reads_report.summary(measurements)
    write_csv(args.out / "reads.csv", rows)
    write_csv(args.out / "rounds.csv", [m.row() for m in measurements])
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench reads", description=__doc__.split("\n\n")[1])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per design and round")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, the designs in turn (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk's open connections (default 32)")
    parser.add_argument("--readers", type=int, default=1000, help="readers drawn (default 1000)")
    parser.add_argument(
        "--celebrities-followed",
        type=float,
        default=3,
        metavar="MEAN",
        help="choose CELEBRITY_THRESHOLD so that a user follows MEAN celebrities (default 3)",
    )
    parser.add_argument("--threshold", type=int, help="CELEBRITY_THRESHOLD itself, instead")
    parser.add_argument("--sample-pages", type=int, default=5, help="pages compared across designs")
    parser.add_argument("--seed", type=int, default=42, help="draws the readers")
    parser.add_argument("--out", type=Path, help="the run folder (default results/reads-<UTC time>)")
    args = parser.parse_args(argv)
    if min(args.seconds, args.warmup, args.repeats, args.connections, args.readers, args.sample_pages) <= 0:
        parser.error(
            "--seconds, --warmup, --repeats, --connections, --readers and --sample-pages must be > 0"
        )
    args.out = args.out or ROOT / "results" / f"reads-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    return args


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, interrupted)  # a kill stops the servers as Ctrl-C does
    try:
        rows = run(args)
    except Unequal as error:
        print(f"bench reads: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench reads: interrupted; every server stopped", file=sys.stderr)
        return 130
    printed = reads_report.table(rows) + "\n" + reads_report.figures(rows) + "\n"
    (args.out / "summary.txt").write_text(printed)
    print(printed, end="")
    say(f"written: {args.out / 'reads.csv'}, rounds.csv, summary.txt, meta.json, logs/")
    return 0
