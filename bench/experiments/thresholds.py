"""thresholds: threshold-T: the hybrid with CELEBRITY_THRESHOLD=T, each after a short warm-up
(only when named in EXPERIMENT at default)."""

from pathlib import Path

from bench.session import Session

PER_DESIGN = False
START_S = 5  # an app's start on a fresh copy
WARMUP_SHARE = 0.25  # of sweep_seconds, at least 2 s


def estimate(session: Session, approaches: list[str]) -> float:
    plan = session.plan
    if "hybrid" not in approaches:
        return 0.0
    phases = plan.sweep_seconds * (1 + WARMUP_SHARE) + 2 * session.phase_overhead()
    return len(plan.thresholds) * (phases + START_S)


def run(session: Session, seeded: Path | str, approaches: list[str]) -> None:
    plan = session.plan
    if "hybrid" not in approaches:
        return
    for threshold in plan.thresholds:
        if threshold == plan.celebrity_threshold:
            continue  # the main hybrid run measured it
        tag = f"hybrid-threshold-{threshold}"
        with session.start("hybrid", seeded, plan.dataset, threshold, tag) as app:
            warmup = session.mixed(max(2, plan.sweep_seconds * WARMUP_SHARE))
            session.phase(app, "hybrid", "warmup", warmup, keep=False)
            load = session.mixed(plan.sweep_seconds, author_bias=plan.celebrity_bias, seed=3)
            session.ran("thresholds", "hybrid", f"threshold-{threshold}")
            phase = session.phase(app, "hybrid", f"threshold-{threshold}", load)
            session.record_lags(app, phase, threshold)
