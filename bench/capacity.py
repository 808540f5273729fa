"""Capacity by search: the highest open-loop rate a design holds within the SLO, bisected.

A step offers `rate` requests/s for the plan's step_seconds and holds if the read p99 is within
the SLO, no request failed, and >= 95 % of the offered rate was achieved (bench/summary.within_slo).

The first run of a (design, mix) brackets from a starting guess, multiplying or dividing by
`factor` until one step holds and the next misses, then bisects in log space (the geometric
mean of the bracket) until missed / held <= tolerance. A repeat starts from a bracket around
the first run's answer (÷ and × sqrt(tolerance)), but trusts nothing: it runs the step below
(must hold) and the step above (must miss), widening on the side that disagrees by `factor`,
then its square, and so on,
and bisects again (run.py widens a repeat by tolerance^2: close to the first answer, a wide
stride would cost more bisection steps than it saves). Its answer is always a rate it saw
held, with a miss within tolerance above it.
Steps are not monotone in truth (a noisy step can miss below a held one); the search takes
each verdict as it comes and reports every step it ran.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

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
        held = run(try_rate, middle, search)
        low, high = (middle, high) if held else (low, middle)
    search.held, search.missed = low, high
    return search


def run(try_rate: Callable[[float], bool], rate: float, search: Search) -> bool:
    held = try_rate(rate)
    search.steps.append(Step(rate, held))
    return held


def first_search(
    try_rate: Callable[[float], bool], start: float, factor: float, tolerance: float, floor: float = 1.0
) -> Search:
    """Brackets from `start` by `factor`, then bisects."""
    search = Search()
    rate = start
    if run(try_rate, rate, search):
        while len(search.steps) < MAX_STEPS:
            higher = rate * factor
            if not run(try_rate, higher, search):
                return bisect(try_rate, rate, higher, tolerance, search)
            rate = higher
        search.held = rate
        return search
    while rate / factor >= floor and len(search.steps) < MAX_STEPS:
        lower = rate / factor
        if run(try_rate, lower, search):
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
    while not run(try_rate, low, search):
        high, low, missed_above = low, low / stride, True
        stride *= stride
        if low < floor or len(search.steps) >= MAX_STEPS:
            search.missed = high
            return search
    while not missed_above and run(try_rate, high, search):
        low, high = high, high * stride
        stride *= stride
        if len(search.steps) >= MAX_STEPS:
            search.held = low
            return search
    return bisect(try_rate, low, high, tolerance, search)
