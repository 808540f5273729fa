"""bench/experiments/capacity.py's search against a known capacity: every answer is a rate that held with
a miss within the tolerance above it; and bench/report/summary.within_slo's two rules on real
phase figures: the delivery rule is the read rule and more."""

import numpy as np
import pandas as pd
import pytest

from bench.delivery import DRAIN_BOUND_S, LAG_BOUND_S, delivery_of
from bench.experiments.capacity import first_search
from bench.phases import Load, Phase
from bench.report import drift
from bench.report.summary import within_slo

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


def test_nothing_held_down_to_the_floor_reports_zero():
    search = first_search(judge(0.5), 400, 2.0, TOLERANCE)
    assert search.held == 0.0 and not any(step.held for step in search.steps)


ENDED = 1000.0  # the phase's end, on fanout_log's clock


def step_tweets(lags_s: list[float], owed_done_at: list[float] = (), pulled: int = 0) -> pd.DataFrame:
    """STEP_TWEETS's rows: tweets fanned out with these lags, others finished after the step
    ended (owed at its end, accepted 0.5 s before it), and tweets with no fanout row."""
    rows = [(ENDED - 2 - lag, ENDED - 2) for lag in lags_s]
    rows += [(ENDED - 0.5, done) for done in owed_done_at]
    rows += [(np.nan, np.nan)] * pulled
    frame = pd.DataFrame(rows, columns=["accepted_at", "done_at"])
    frame.insert(0, "id", range(1, len(frame) + 1))
    return frame


def test_an_owed_tweet_is_late_at_its_age_and_the_drain_counts_from_the_end():
    one_owed = delivery_of(step_tweets([0.1] * 99, owed_done_at=[ENDED + 3]), ENDED)
    assert one_owed.late_share == pytest.approx(0.01) and one_owed.drain_s == pytest.approx(3)
    assert one_owed.holds()  # 1 % late: the p99 is within the bound
    two_owed = delivery_of(step_tweets([0.1] * 98, owed_done_at=[ENDED + 3, ENDED + 3]), ENDED)
    assert two_owed.late_share == pytest.approx(0.02) and not two_owed.holds()
    # The owed tweets' lag is their age when the step ended (0.5 s), not their lag as it turned out.
    assert two_owed.lag_p99_ms == pytest.approx(500, rel=0.01)
    slow_drain = delivery_of(step_tweets([0.1] * 200, owed_done_at=[ENDED + DRAIN_BOUND_S + 1]), ENDED)
    assert slow_drain.late_share <= 0.01 and not slow_drain.holds()
    late = delivery_of(step_tweets([0.1] * 90 + [LAG_BOUND_S + 1] * 10), ENDED)
    assert late.lag_p99_ms > LAG_BOUND_S * 1000 and not late.holds()


def test_a_tweet_fanned_out_to_nobody_is_delivered_at_commit():
    pulled = delivery_of(step_tweets([], pulled=10), ENDED)
    assert pulled.tweets == 10 and pulled.lag_p99_ms == 0 and pulled.drain_s == 0 and pulled.holds()


def phase_with(tmp_path, read_ms: float, tweet_ms: float, delivery) -> Phase:
    """A finished 1 s step at 100 req/s: its samples, as the load suite writes them."""
    samples = tmp_path / f"step-{read_ms}-{tweet_ms}.csv.gz"
    rows = [(0.0, "read", 200, read_ms * 1000, 10)] * 99 + [(0.0, "tweet", 201, tweet_ms * 1000, 10)]
    pd.DataFrame(rows, columns=["time", "operation", "status", "latency_us", "count"]).to_csv(
        samples, index=False
    )
    phase = Phase("fanout", "step-ddia-1-100", Load(1, rate=100), samples)
    phase.loadtest = {"openloop": {"achieved_rate": 100.0}, "elapsed_s": 1.0}
    phase.delivery = delivery
    return phase


def test_the_delivery_rule_is_the_read_rule_and_the_tweets_and_their_fanout(tmp_path):
    delivered = delivery_of(step_tweets([0.1] * 10), ENDED)
    owed = delivery_of(step_tweets([0.1] * 8, owed_done_at=[ENDED + 1] * 2), ENDED)
    fine = phase_with(tmp_path, 5, 5, delivered)
    assert within_slo(fine, 50, "read") and within_slo(fine, 50, "delivery")
    slow_tweets = phase_with(tmp_path, 5, 80, delivered)
    assert within_slo(slow_tweets, 50, "read") and not within_slo(slow_tweets, 50, "delivery")
    undelivered = phase_with(tmp_path, 5, 5, owed)
    assert within_slo(undelivered, 50, "read") and not within_slo(undelivered, 50, "delivery")
    slow_reads = phase_with(tmp_path, 80, 5, delivered)
    assert not within_slo(slow_reads, 50, "read") and not within_slo(slow_reads, 50, "delivery")
    with pytest.raises(ValueError, match="SLO rule"):
        within_slo(fine, 50, "reads")


def test_drift_flags_a_capacity_whose_brackets_part():
    searches = [
        {
            "approach": "fanout",
            "mix": "ddia",
            "slo": "delivery",
            "run": run,
            "held_rate": held,
            "missed_rate": held * 1.05,
        }
        for run, held in ((1, 400.0), (2, 390.0), (3, 300.0))
    ] + [
        {
            "approach": "join",
            "mix": "ddia",
            "slo": "delivery",
            "run": run,
            "held_rate": held,
            "missed_rate": held * 1.05,
        }
        for run, held in ((1, 400.0), (2, 300.0), (3, 410.0))
    ]
    rows = drift.table([], searches, 50).set_index("approach")
    assert rows.loc["fanout"].first_run == 1 and rows.loc["fanout"].last_run == 3
    assert rows.loc["fanout"].difference == -100 and rows.loc["fanout"].flagged
    assert rows.loc["join"].spread == pytest.approx(410 * 0.05) and not rows.loc["join"].flagged
