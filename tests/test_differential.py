"""The three apps and an independent model of the definition, given the same seeded random
history, answer every timeline page identically once the fanout backlog is 0.

The settings make the hard cases common: TIMELINE_LENGTH 5 so most pages run past the
cache, CELEBRITY_THRESHOLD 4 so accounts cross it in both directions, and histories that
push one account over the threshold and back down on purpose.
"""

import pytest

from harness import APPS
from history import SETTINGS, run_differential


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_apps_and_the_model_agree(start_app, seed):
    apps = [start_app(module, **SETTINGS) for module in APPS]
    lockstep = run_differential(apps, seed)
    hybrid = apps[2].stats()
    assert hybrid["fanout_writes"] < apps[1].stats()["fanout_writes"], \
        "the hybrid should skip fanout for celebrities"
    assert len(lockstep.model.tweets) > 50


@pytest.mark.parametrize("seed", [4])
def test_agree_with_two_uvicorn_workers(start_app, seed):
    apps = [start_app("approach1", **SETTINGS)]
    apps += [start_app(module, workers=2, **SETTINGS) for module in APPS[1:]]
    run_differential(apps, seed)
    for app in apps[1:]:
        stats = app.stats()
        assert stats["tweets_fanned_out"] <= stats["tweets"]
