"""`python -m bench faults SCENARIO [--approach MODULE ...] [knobs]`: one fault scenario on
each app it applies to, a results folder per run (see bench/experiments/faults/__init__.py).

    python -m bench faults redis-kill [--approach approach2 ...] [--scale default] [--rate 300]
                                      [--down 10] [--check-users N] [--out DIR]
    python -m bench faults app-kill   [--approach approach2 ...] [--followers 50000] [--tweets 20]
    python -m bench faults writers    [--approach approach1 ...] [--clients 64] [--seconds 60]
"""

import argparse
import json
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from bench.experiments import faults
from bench.experiments.faults import app_kill, redis_kill, writers
from datagen.scales import SCALES
from rig.processes import ROOT, Cpus, say_stamped
from timelines.designs import MODULES

SCENARIOS = {"redis-kill": redis_kill, "app-kill": app_kill, "writers": writers}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench faults",
        description=f"{__doc__}\n{faults.__doc__}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument(
        "--approach",
        action="append",
        choices=MODULES,
        help="repeat for several (default: every app the scenario applies to)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="default: results/")
    knob = parser.add_argument_group("redis-kill")
    knob.add_argument("--scale", choices=SCALES, help="seeded scale (default: default)")
    knob.add_argument("--rate", type=float, help="open-loop requests/s (default: 300)")
    knob.add_argument("--read-ratio", type=float, help="reads per tweet (default: 65, DDIA's)")
    knob.add_argument("--lead-in", type=float, help="seconds of load before the kill (default: 20)")
    knob.add_argument("--down", type=float, help="seconds Redis stays down (default: 10)")
    knob.add_argument("--after", type=float, help="seconds of load once Redis is back (default: 30)")
    knob.add_argument("--check-users", type=int, help="home timelines to compare (default: all)")
    knob = parser.add_argument_group("app-kill")
    knob.add_argument("--followers", type=int, help="of the one account that tweets (default: 50000)")
    knob.add_argument("--tweets", type=int, help="it posts before the kill (default: 20)")
    knob = parser.add_argument_group("writers")
    knob.add_argument("--seconds", type=float, help="of writing (default: 60)")
    knob.add_argument("--users", type=int, help="shared users the clients write over (default: 200)")
    knob.add_argument("--workers", type=int, help="uvicorn worker processes (default: 2)")
    knob = parser.add_argument_group("redis-kill and writers")
    knob.add_argument("--clients", type=int, help="Locust users / writer threads (default: 64)")
    knob.add_argument("--timeline-length", type=int, help="TIMELINE_LENGTH (default: 800)")
    knob.add_argument(
        "--celebrity-threshold",
        type=int,
        help="CELEBRITY_THRESHOLD (default: 10000; writers: a third of --users)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scenario = SCENARIOS[args.scenario]
    knobs_type, applicable = scenario.Knobs, scenario.APPLIES_TO
    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("scenario", "approach", "out")
    }
    if stray := sorted(set(given) - set(asdict(knobs_type()))):
        raise SystemExit(f"{args.scenario} takes no {', '.join('--' + n.replace('_', '-') for n in stray)}")
    knobs = knobs_type(**given)
    modules = args.approach or list(applicable)
    if not set(modules) <= set(applicable):
        raise SystemExit(f"{args.scenario} applies to {', '.join(applicable)}")
    folder = args.out.resolve() / f"faults-{args.scenario}-{datetime.now():%Y%m%d-%H%M%S}"
    cpus = Cpus.plan()
    say_stamped(f"{args.scenario}: {', '.join(modules)}; {cpus.describe()}; results in {folder}")
    results, failed = [], False
    for module in modules:
        # The SQLite file (hundreds of MB at the default scale) goes; the records stay.
        with tempfile.TemporaryDirectory(prefix=f"faults-{module}-") as data_dir:
            result = scenario.measure(folder / module, module, knobs, cpus, say_stamped, Path(data_dir))
        (folder / module / "result.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(scenario.report(result), flush=True)
        results.append(result)
        failed |= bool(result["problems"])
    (folder / "result.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    say_stamped(f"results: {folder}")
    return 1 if failed else 0
