"""`python -m bench`: every experiment, listed once (`python -m bench --list`).

`make bench` / `python -m bench [--scale S] [--out DIR] [--experiment E,...]`: the three
designs side by side, measured so that their differences are real. The BENCH experiments,
each a module of bench/experiments/ with its own estimate and run, every figure repeated
(plan.repeats, plan.capacity_runs) in rounds: round 1 of every design, then round 2, ...
Each round of each design runs on an app on fresh stores (bench/session.py): a fresh copy of
the seeded database, an empty Redis (the bench's own redis-server, or with --redis-nodes N an
N-node Redis Cluster it starts) loaded with that app's caches, `uvicorn approachN:app` with
identical flags, the app and its Redis on one CPU set, the load generator on the other
(Cpus.equal). meta.json lists what ran in that order; drift.csv compares each design's first
round with its last. Everything lands in one run folder: samples/
and logs/, meta.json (bench/report/meta.py), the tables bench/report/summary.py lists, and
charts/ (bench/report/charts.py redraws them from the folder alone).

`python -m bench STUDY [its options]`: one of the STUDIES, each with its own command line
(`python -m bench STUDY --help`) and results folder.
"""

import argparse
import importlib
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench.experiments import BENCH, STUDIES
from bench.output import Progress
from bench.plan import EVERY_EXPERIMENT, PLANS, Plan
from bench.report import drift, meta, model, summary
from bench.session import Session, Stack
from bench.stores import STORES, dataset_facts, new_store
from rig.processes import ROOT, Cpus
from rig.redis_cluster import redis_for
from timelines import designs

LOAD_CACHES_S_PER_1000_USERS = 1  # a design's start: its caches loaded into an empty Redis


def experiment(name: str) -> ModuleType:
    """The module of a make-bench experiment or a study."""
    return importlib.import_module(STUDIES[name][0] if name in STUDIES else f"bench.experiments.{name}")


def listing() -> str:
    lines = ["make bench (python -m bench [--experiment NAME,...]):"]
    lines += [f"  {name:<14} {what}" for name, what in BENCH.items()]
    lines.append("studies (python -m bench NAME --help):")
    lines += [f"  {name:<14} {what}" for name, (_, what) in STUDIES.items()]
    return "\n".join(lines)


def rounds(modules: list[ModuleType], plan: Plan) -> int:
    """Repeats of the per-design experiments: each round starts every design afresh."""
    return max((module.runs(plan) for module in modules), default=0)


def estimate(session: Session, chosen: tuple[str, ...], approaches: list[str]) -> float:
    """Seconds the run should take: the ETA's starting point, each experiment's own estimate."""
    plan = session.plan
    modules = [experiment(name) for name in chosen]
    starts = rounds([module for module in modules if module.PER_DESIGN], plan) * len(approaches)
    total = starts * start_s(session)
    for module in modules:
        total += (
            len(approaches) * module.estimate(session)
            if module.PER_DESIGN
            else module.estimate(session, approaches)
        )
    return total


def start_s(session: Session) -> float:
    """A design's start: its caches loaded into an empty Redis, its warm-up."""
    plan = session.plan
    seconds = plan.dataset.users / 1000 * LOAD_CACHES_S_PER_1000_USERS
    if plan.warmup_seconds:
        seconds += plan.warmup_seconds + session.phase_overhead()
    return seconds


def timed(session: Session, estimated: float, part, *args) -> None:
    """part(*args), the ETA revised by how far it was from its estimate."""
    began = time.monotonic()
    part(*args)
    session.progress.revise(time.monotonic() - began, estimated)


def run_experiments(
    session: Session, seeded: Path | str, chosen: tuple[str, ...], approaches: list[str]
) -> None:
    """The per-design experiments in rounds, the designs interleaved (round 1 of each, then
    round 2, ...), each round of each design on an app of its own: fresh processes, a fresh
    copy of the stores, its caches loaded afresh. Repeats are then independent, and a drift of
    the machine over the run shows as a difference between rounds, not between designs."""
    plan = session.plan
    modules = [experiment(name) for name in BENCH if name in chosen]  # in the registry's order
    per_design = [module for module in modules if module.PER_DESIGN]
    for repeat in range(1, rounds(per_design, plan) + 1):
        due = [module for module in per_design if repeat <= module.runs(plan)]
        for name in approaches:
            tag = f"{name}-{repeat}"
            with session.start(name, seeded, plan.dataset, plan.celebrity_threshold, tag) as app:
                if plan.warmup_seconds:
                    session.ran("warmup", name, run=repeat)
                    session.phase(app, name, "warmup", session.mixed(plan.warmup_seconds), keep=False)
                for module in due:
                    share = module.estimate(session) / module.runs(plan)
                    timed(session, share, module.run, session, app, name, repeat)
    for module in modules:
        if not module.PER_DESIGN:
            session.ran(module.__name__.rsplit(".", 1)[-1], "+".join(approaches))
            timed(session, module.estimate(session, approaches), module.run, session, seeded, approaches)


def write_drift(folder: Path, session: Session) -> None:
    """drift.csv, and its lines printed: the run's own check that its rounds agree."""
    table = drift.table(session.phases, session.searches, session.plan.slo_ms)
    table.to_csv(folder / "drift.csv", index=False)
    for line in ["drift, each design's first round against its last (drift.csv):", *drift.lines(table)]:
        session.say(line)


def experiments(text: str, plan: Plan) -> tuple[str, ...]:
    """EXPERIMENT: "all" (the plan's own list) or names separated by commas."""
    if text in ("", "all"):
        return plan.experiments
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(EVERY_EXPERIMENT))
    if unknown:
        raise SystemExit(
            f"unknown experiment(s) {', '.join(unknown)}: choose from {', '.join(EVERY_EXPERIMENT)}"
        )
    return names


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        epilog=listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", choices=PLANS, default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="the run folder goes under it")
    parser.add_argument("--approaches", nargs="+", choices=designs.NAMES, default=list(designs.NAMES))
    parser.add_argument(
        "--experiment",
        default=os.environ.get("EXPERIMENT", "all"),
        help=f"all (the scale's list), or some of {','.join(EVERY_EXPERIMENT)}, "
        "comma-separated (default: $EXPERIMENT, else all)",
    )
    parser.add_argument(
        "--store",
        choices=STORES,
        default="sqlite",
        help="the apps' database: SQLite files, or a private PostgreSQL server",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS") or 0),
        metavar="N",
        help="load from a Locust master and N worker processes (its --processes N), all on the "
        "load generator's CPUs; 0: one local Locust process (default: $WORKERS, else 0)",
    )
    parser.add_argument(
        "--redis-nodes",
        type=int,
        default=0,
        metavar="N",
        help="the fanout apps' caches on an N-node Redis Cluster the bench starts and stops "
        "(REDIS_CLUSTER=1); 0: one redis-server (default)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=ROOT / ".bench-cache",
        help="seeded databases, reused while their parameters are unchanged",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--list"]:
        print(listing())
        return 0
    if argv[:1] and argv[0] in STUDIES:
        return experiment(argv[0]).main(argv[1:])
    args = parse(argv)
    if args.workers < 0:
        raise SystemExit(f"--workers {args.workers}: give 0 (one local process) or more")
    if args.redis_nodes < 0:
        raise SystemExit(f"--redis-nodes {args.redis_nodes}: give 0 (one redis-server) or more")
    # A TERM unwinds like Ctrl-C, so the apps and redis-server are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = PLANS[args.scale]
    started, source = datetime.now(UTC), meta.source_version()
    folder = args.out / f"{started:%Y-%m-%dT%H%M%SZ}-{plan.scale}"
    for sub in ("samples", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # Each run's own scratch space: two benches on one machine must not share database copies.
    work = Path(tempfile.mkdtemp(prefix="work-", dir=args.cache_dir))
    cpus = Cpus.equal()
    try:
        return measure(args, plan, folder, work, cpus, started, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, plan: Plan, folder: Path, work: Path, cpus: Cpus, started: datetime, source: dict) -> int:
    chosen = experiments(args.experiment, plan)
    # PostgreSQL on the server side's CPUs, beside the app and its Redis: the store it serves.
    store = new_store(args.store, work, args.cache_dir, cpus.app)
    with redis_for(args.redis_nodes, work, cpus) as redis, store:
        stack = Stack(store, redis, cpus, folder / "logs", plan.timeline_length)
        session = Session(plan, folder, work, stack, workers=args.workers, progress=Progress(planned_s=0.0))
        store.say = session.say
        session.progress.planned_s = estimate(session, chosen, args.approaches)
        on = "" if store.name == "sqlite" else f"; {store.name} {store.describe()['server_version']}"
        if args.redis_nodes:
            on += f"; caches on {redis.describe()}"
        session.say(f"bench {plan.scale} ({', '.join(chosen)}) -> {folder}; {cpus.describe()}{on}")
        seeded = store.seed(plan.dataset, plan.celebrity_threshold)
        try:
            run_experiments(session, seeded, chosen, args.approaches)
        finally:
            facts = dataset_facts(store, seeded, plan.celebrity_threshold)
            meta.write(
                folder,
                plan,
                cpus,
                started,
                session.phases,
                redis,
                source,
                chosen,
                facts,
                workers=args.workers,
                store=store.name,
                postgres=store.describe(),
                redis_nodes=args.redis_nodes,
                order=session.order,
            )
        summary.write(folder, plan, session, facts)
        write_drift(folder, session)
    model.write(folder)
    session.say("charts")
    from bench.report import charts  # matplotlib only once there is something to draw

    charts.draw_all(folder)
    session.say(f"done: {folder}")
    print(summary.table(folder))
    return 0
