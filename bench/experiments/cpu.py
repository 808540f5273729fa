"""cpu: tweets-k on each design: tweets only, DDIA's authors, the server side's CPU per tweet
including its fanout, read until the outbox is empty (the fanout runs after the 201)."""

from bench.phases import Load
from bench.session import Session
from rig.processes import AppServer

PER_DESIGN = True
METER_S = 2  # reading the CPU meters and the backlog around each phase


def estimate(session: Session) -> float:
    """Seconds on one design."""
    plan = session.plan
    return plan.repeats * (plan.cpu_seconds + session.phase_overhead() + METER_S)


def run(session: Session, app: AppServer, name: str) -> None:
    plan = session.plan
    for repeat in range(1, plan.repeats + 1):
        load = Load(plan.cpu_seconds, rate=plan.tweet_rate, read_ratio=0, seed=200 + repeat)
        session.phase(app, name, f"tweets-{repeat}", load, keep_samples=False)
