"""bench/experiments/capacity.py's search against a known capacity: every answer is a rate that held with
a miss within the tolerance above it, and a repeat verifies its own bracket."""

import pytest

from bench.experiments.capacity import first_search, repeat_search

TOLERANCE = 1.05


def judge(capacity: float):
    return lambda rate: rate <= capacity


@pytest.mark.parametrize("capacity", [37.0, 300.0, 1234.0, 5000.0])
def test_first_search_brackets_the_capacity_within_the_tolerance(capacity):
    search = first_search(judge(capacity), 400, 2.0, TOLERANCE)
    assert search.held <= capacity < search.missed
    assert search.missed / search.held <= TOLERANCE
    assert any(step.rate == search.held and step.held for step in search.steps)
    assert any(step.rate == search.missed and not step.held for step in search.steps)


@pytest.mark.parametrize("capacity", [60.0, 250.0, 300.0, 330.0, 2000.0])
def test_a_repeat_verifies_both_ends_and_never_runs_a_rate_twice(capacity):
    search = repeat_search(judge(capacity), 300.0, TOLERANCE**2, TOLERANCE)
    rates = [step.rate for step in search.steps]
    assert len(rates) == len(set(rates))
    assert search.held <= capacity < search.missed
    assert search.missed / search.held <= TOLERANCE * (1 + 1e-9)
    assert {True, False} <= {step.held for step in search.steps}  # it saw a hold and a miss itself


def test_a_repeat_near_the_answer_takes_two_steps():
    search = repeat_search(judge(301.0), 300.0, TOLERANCE**2, TOLERANCE)
    assert len(search.steps) == 2


def test_nothing_held_down_to_the_floor_reports_zero():
    search = first_search(judge(0.5), 400, 2.0, TOLERANCE)
    assert search.held == 0.0 and not any(step.held for step in search.steps)
