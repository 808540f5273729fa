"""depths: depth-D: join and fanout on graphs D tweets deep, closed loop, reads only (only
when named in EXPERIMENT at default)."""

from pathlib import Path

from bench.phases import Load
from bench.session import Session
from timelines import designs

PER_DESIGN = False
READS_ONLY = 1e9  # --read-ratio: one tweet in a billion requests
START_S = 5  # an app's start on a fresh copy


def estimate(session: Session, approaches: list[str]) -> float:
    plan = session.plan
    return len(plan.depths) * 2 * (plan.depth_seconds + session.phase_overhead() + START_S)


def run(session: Session, seeded: Path | str, approaches: list[str]) -> None:
    plan = session.plan
    for depth in plan.depths:
        dataset = plan.depth_scale(depth)
        deep = session.stack.store.seed(dataset, plan.celebrity_threshold)
        for name in designs.NAMES:  # the hybrid too: it is fanout where no one crosses its threshold
            with session.start(name, deep, dataset, plan.celebrity_threshold, f"{name}-depth") as app:
                load = Load(plan.depth_seconds, clients=plan.depth_clients, read_ratio=READS_ONLY)
                session.ran("depths", name, f"depth-{depth:g}")
                session.phase(app, name, f"depth-{depth:g}", load)
