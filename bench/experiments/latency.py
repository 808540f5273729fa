"""latency: fixed-k, celebrities-k on each design: open loop at the plan's rate, DDIA's mix and
with the most-followed accounts tweeting; the server side's CPU and Redis's pushes counted,
every tweet's fanout lag recorded."""

from bench.plan import Plan
from bench.session import Session
from rig.processes import AppServer

PER_DESIGN = True
MIXES = 2  # fixed, celebrities


def estimate(session: Session) -> float:
    """Seconds on one design, every repeat."""
    plan = session.plan
    return plan.repeats * MIXES * (plan.fixed_seconds + session.phase_overhead())


def runs(plan: Plan) -> int:
    return plan.repeats


def run(session: Session, app: AppServer, name: str, repeat: int) -> None:
    """Repeat `repeat`, its phases with their own seeds; the first keeps the old names
    (fixed, celebrities), which the notebook reads."""
    plan = session.plan
    for mix, bias in (("fixed", 0.0), ("celebrities", plan.celebrity_bias)):
        phase_name = mix if repeat == 1 else f"{mix}-{repeat}"
        load = session.mixed(plan.fixed_seconds, author_bias=bias, seed=100 * repeat + len(mix))
        session.ran("latency", name, mix, repeat)
        phase = session.phase(app, name, phase_name, load)
        session.record_lags(app, phase, plan.celebrity_threshold)
