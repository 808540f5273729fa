"""capacity: step-MIX-RUN-RATE on each design: the highest open-loop rate it holds within the
SLO, searched for DDIA's mix and the celebrities mix under each SLO rule, plan.capacity_runs
times each, every run on an app of its own (bench/run.py starts one per design and repeat).

A step offers `rate` requests/s for the plan's step_seconds; bench/report/summary.within_slo
judges it under one of two rules:
  read      the read p99 within the SLO (plan.slo_ms), no request failed, >= 95 % of the
            offered rate achieved: what a reader waits for, blind to the fanout behind the 201.
  delivery  all of `read`, and the tweet p99 within the SLO too (until the 201), and the
            step's tweets delivered: their fanout lag p99 within 5 s, a tweet still owed when
            the step ends counted late, a tweet the design fans out to nobody (join's, the
            hybrid's celebrities') delivered at commit; and the backlog the step left drained
            within 10 s of its end (bench/delivery.py). What the hybrid exists for.

The steps are shared, the searches are not: each rule has its own search, each from the
plan's bracket (capacity_start, by capacity_factor), so one rule's verdicts never steer the
other's choice of rates; but a rate one rule's search already ran in this run (same app, same
mix) is judged from that step again rather than run twice, its figures recording enough to
judge both rules. Where the rules agree the two searches run the same rates, and the
delivery search costs only the steps where they disagree.

A search brackets from its start, multiplying or dividing by `factor` until one step holds
and the next misses, then bisects in log space (the geometric mean of the bracket) until
missed / held <= tolerance. Its answer is always a rate it saw held, with a miss within
tolerance above it. No run starts from another run's answer: repeats are independent.
Steps are not monotone in truth (a noisy step can miss below a held one); the search takes
each verdict as it comes and reports every step it ran.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.phases import Phase
from bench.plan import Plan
from bench.report import summary
from bench.session import Session
from rig.processes import AppServer

PER_DESIGN = True
MIXES = ("ddia", "celebrities")  # author bias: none, and the plan's
SLOS = summary.SLO_RULES  # read, delivery
# Steps per run and mix, as counted for the ETA: a search's walk to its bracket (a hold and a
# miss, ~1 more where the start is off), then its bisections; and the steps the delivery search
# runs beyond the read search's (none where the rules agree, as they mostly do: tiny ran none).
BRACKET_STEPS, DELIVERY_STEPS = 3, 1
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


def estimate(session: Session) -> float:
    """Seconds on one design, every run."""
    plan = session.plan
    bisections = math.ceil(math.log2(math.log(plan.capacity_factor) / math.log(plan.capacity_tolerance)))
    steps = BRACKET_STEPS + max(0, bisections) + DELIVERY_STEPS
    return plan.capacity_runs * len(MIXES) * steps * (plan.step_seconds + session.phase_overhead())


def runs(plan: Plan) -> int:
    return plan.capacity_runs


@dataclass
class Steps:
    """The steps of one run and mix on one app, each rate run once, whichever rule asks."""

    session: Session
    app: AppServer
    name: str
    mix: str
    bias: float
    repeat: int
    ran: dict[int, Phase] = field(default_factory=dict)  # rounded rate -> its step

    def at(self, rate: float) -> Phase:
        offered, plan = round(rate), self.session.plan
        if offered not in self.ran:
            seed = 1000 * self.repeat + offered % 997
            # Locust's own clock starts ~0.3 s into its run: one more second keeps the
            # measured step at step_seconds or more.
            load = self.session.mixed(plan.step_seconds + 1, author_bias=self.bias, seed=seed, rate=offered)
            step_name = f"step-{self.mix}-{self.repeat}-{offered}"
            self.ran[offered] = self.session.phase(self.app, self.name, step_name, load, keep_samples=False)
        return self.ran[offered]


def run(session: Session, app: AppServer, name: str, repeat: int) -> None:
    """Run `repeat` of each mix's searches on `app`, a fresh app of its own."""
    plan = session.plan
    for mix, bias in zip(MIXES, (0.0, plan.celebrity_bias), strict=True):
        steps = Steps(session, app, name, mix, bias, repeat)
        for slo in SLOS:
            session.ran("capacity", name, mix, repeat, slo=slo)
            before = set(steps.ran)
            search = first_search(
                lambda rate, slo=slo, steps=steps: summary.within_slo(steps.at(rate), plan.slo_ms, slo),
                plan.capacity_start,
                plan.capacity_factor,
                plan.capacity_tolerance,
            )
            anew = len(set(steps.ran) - before)
            session.searches.append(
                {
                    "approach": name,
                    "mix": mix,
                    "slo": slo,
                    "run": repeat,
                    "held_rate": search.held,
                    "missed_rate": search.missed,
                    "steps": len(search.steps),
                    "new_steps": anew,
                    "phases": [f"step-{mix}-{repeat}-{round(step.rate)}" for step in search.steps],
                }
            )
            session.say(
                f"{name} capacity {mix} slo={slo} run {repeat}: held {search.held:,.0f} req/s, missed "
                f"{search.missed:,.0f} ({len(search.steps)} steps, {anew} run anew)"
            )
