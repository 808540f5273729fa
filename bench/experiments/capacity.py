"""capacity: step-MIX-RUN-RATE on each design: the highest open-loop rate it holds within the
SLO, searched for DDIA's mix and the celebrities mix, plan.capacity_runs times each.

A step offers `rate` requests/s for the plan's step_seconds and holds if the read p99 is within
the SLO, no request failed, and >= 95 % of the offered rate was achieved (bench/report/summary.within_slo).

The first run of a (design, mix) brackets from a starting guess, multiplying or dividing by
`factor` until one step holds and the next misses, then bisects in log space (the geometric
mean of the bracket) until missed / held <= tolerance. A repeat starts from a bracket around
the first run's answer (÷ and × sqrt(tolerance)), but trusts nothing: it runs the step below
(must hold) and the step above (must miss), widening on the side that disagrees by `factor`,
then its square, and so on,
and bisects again (`run` widens a repeat by tolerance^2: close to the first answer, a wide
stride would cost more bisection steps than it saves). Its answer is always a rate it saw
held, with a miss within tolerance above it.
Steps are not monotone in truth (a noisy step can miss below a held one); the search takes
each verdict as it comes and reports every step it ran.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.report import summary
from bench.session import Session
from rig.processes import AppServer

PER_DESIGN = True
MIXES = ("ddia", "celebrities")  # author bias: none, and the plan's
FIRST_STEPS, REPEAT_STEPS = 6, 3  # a search's steps, as counted for the ETA
MAX_STEPS = 14  # a search that has not converged by then reports its bracket as it stands


@dataclass
class Step:
    rate: float
    held: bool


@dataclass
class Search:
    held: float = 0.0  # the highest rate seen held with a miss within tolerance above it
    missed: float = math.inf
    steps: list[Step] = field(default_factory=list)

    @property
    def converged_ratio(self) -> float:
        return self.missed / self.held if self.held else math.inf


def bisect(
    try_rate: Callable[[float], bool], low: float, high: float, tolerance: float, search: Search
) -> Search:
    """Narrows a bracket (low held, high missed) until high / low <= tolerance."""
    while high / low > tolerance * (1 + 1e-9) and len(search.steps) < MAX_STEPS:  # float slack
        middle = math.sqrt(low * high)
        held = held_at(try_rate, middle, search)
        low, high = (middle, high) if held else (low, middle)
    search.held, search.missed = low, high
    return search


def held_at(try_rate: Callable[[float], bool], rate: float, search: Search) -> bool:
    held = try_rate(rate)
    search.steps.append(Step(rate, held))
    return held


def first_search(
    try_rate: Callable[[float], bool], start: float, factor: float, tolerance: float, floor: float = 1.0
) -> Search:
    """Brackets from `start` by `factor`, then bisects."""
    search = Search()
    rate = start
    if held_at(try_rate, rate, search):
        while len(search.steps) < MAX_STEPS:
            higher = rate * factor
            if not held_at(try_rate, higher, search):
                return bisect(try_rate, rate, higher, tolerance, search)
            rate = higher
        search.held = rate
        return search
    while rate / factor >= floor and len(search.steps) < MAX_STEPS:
        lower = rate / factor
        if held_at(try_rate, lower, search):
            return bisect(try_rate, lower, rate, tolerance, search)
        rate = lower
    search.missed = rate
    return search  # held 0: nothing held down to the floor


def repeat_search(
    try_rate: Callable[[float], bool], around: float, factor: float, tolerance: float, floor: float = 1.0
) -> Search:
    """Verifies a bracket around an earlier answer (hold below, miss above), widening where a
    verdict disagrees, then bisects."""
    search = Search()
    half = math.sqrt(tolerance)
    low, high = around / half, around * half
    missed_above = False  # a low that missed is the bracket's top: no need to run it again
    stride = factor  # squared after each disagreeing verdict: far answers are reached in a few steps
    while not held_at(try_rate, low, search):
        high, low, missed_above = low, low / stride, True
        stride *= stride
        if low < floor or len(search.steps) >= MAX_STEPS:
            search.missed = high
            return search
    while not missed_above and held_at(try_rate, high, search):
        low, high = high, high * stride
        stride *= stride
        if len(search.steps) >= MAX_STEPS:
            search.held = low
            return search
    return bisect(try_rate, low, high, tolerance, search)


def estimate(session: Session) -> float:
    """Seconds on one design."""
    plan = session.plan
    steps = FIRST_STEPS + REPEAT_STEPS * (plan.capacity_runs - 1)
    return len(MIXES) * steps * (plan.step_seconds + session.phase_overhead())


def run(session: Session, app: AppServer, name: str) -> None:
    plan = session.plan
    start = plan.capacity_start
    for mix, bias in zip(MIXES, (0.0, plan.celebrity_bias), strict=True):
        found = []
        for run in range(1, plan.capacity_runs + 1):
            steps_before = len(session.phases)

            def try_rate(rate: float, mix=mix, bias=bias, run=run) -> bool:
                seed = 1000 * run + round(rate) % 997
                # Locust's own clock starts ~0.3 s into its run: one more second keeps the
                # measured step at step_seconds or more.
                load = session.mixed(plan.step_seconds + 1, author_bias=bias, seed=seed, rate=round(rate))
                phase = session.phase(app, name, f"step-{mix}-{run}-{round(rate)}", load, keep_samples=False)
                return summary.within_slo(phase, plan.slo_ms)

            if run == 1:
                # From the DDIA mix's answer the guess is close: bracket in smaller strides.
                factor = plan.capacity_factor if mix == "ddia" else math.sqrt(plan.capacity_factor)
                search = first_search(try_rate, start, factor, plan.capacity_tolerance)
            else:
                # A repeat widens in strides of tolerance^2: one bisection away from converged.
                search = repeat_search(
                    try_rate, found[0], plan.capacity_tolerance**2, plan.capacity_tolerance
                )
            found.append(search.held or start / plan.capacity_factor)
            session.searches.append(
                {
                    "approach": name,
                    "mix": mix,
                    "run": run,
                    "held_rate": search.held,
                    "missed_rate": search.missed,
                    "steps": len(search.steps),
                    "phases": [p.name for p in session.phases[steps_before:]],
                }
            )
            session.say(
                f"{name} capacity {mix} run {run}: held {search.held:,.0f} req/s, missed "
                f"{search.missed:,.0f} ({len(search.steps)} steps)"
            )
        start = found[0] or start  # the celebrities mix starts from the DDIA mix's answer
