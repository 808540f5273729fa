"""cpu: tweets-k on each design: tweets only, DDIA's authors, the server side's CPU per tweet
including its fanout, read until the outbox is empty (the fanout runs after the 201)."""

from bench.phases import Load
from bench.plan import Plan
from bench.session import Session
from rig.processes import AppServer

PER_DESIGN = True
METER_S = 2  # reading the CPU meters and the backlog around each phase


def estimate(session: Session) -> float:
    """Seconds on one design, every repeat."""
    plan = session.plan
    return plan.repeats * (plan.cpu_seconds + session.phase_overhead() + METER_S)


def runs(plan: Plan) -> int:
    return plan.repeats


def run(session: Session, app: AppServer, name: str, repeat: int) -> None:
    plan = session.plan
    load = Load(plan.cpu_seconds, rate=plan.tweet_rate, read_ratio=0, seed=200 + repeat)
    session.ran("cpu", name, "tweets", repeat)
    session.phase(app, name, f"tweets-{repeat}", load, keep_samples=False)
