"""Seeded random histories applied in lockstep to the apps and to the model."""

import random

from harness import AppServer
from model import TimelineModel

SETTINGS = {"timeline_length": 5, "celebrity_threshold": 4}
USERS = 10
STEPS = 260
LIMITS = (1, 2, 3, 5, 6, 11, 50, 200)


def random_history(seed: int):
    """Steps: ("follow", a, b) | ("unfollow", a, b) | ("tweet", author). User 1 gathers
    followers in the first third and loses them in the second; the rest is a random mix."""
    rng = random.Random(seed)
    users = range(1, USERS + 1)
    for step in range(STEPS):
        phase, roll = step * 3 // STEPS, rng.random()
        if phase < 2 and roll < 0.15:
            other = rng.choice(users[1:])
            yield ("follow" if phase == 0 else "unfollow", other, 1)
        elif roll < 0.35:
            a, b = rng.sample(users, 2)
            yield ("follow", a, b)
        elif roll < 0.47:
            a, b = rng.sample(users, 2)
            yield ("unfollow", a, b)
        else:
            yield ("tweet", rng.choice(users))


class Lockstep:
    """Applies each step to every app and the model, checking they all accept it alike."""

    def __init__(self, apps: list[AppServer]):
        self.apps = apps
        self.model = TimelineModel()
        self.crossings = 0

    def create_users(self) -> None:
        for n in range(1, USERS + 1):
            assert {app.create_user(f"user{n}") for app in self.apps} == {n}

    def apply(self, step) -> None:
        kind, *args = step
        if kind == "tweet":
            ids = {app.tweet(args[0], f"tweet by {args[0]}")["id"] for app in self.apps}
            assert len(ids) == 1, f"apps gave one tweet different ids: {ids}"
            self.model.tweet(ids.pop(), args[0])
            return
        before = self.model.followers(args[1]) >= SETTINGS["celebrity_threshold"]
        for app in self.apps:
            getattr(app, kind)(*args)
        getattr(self.model, kind)(*args)
        after = self.model.followers(args[1]) >= SETTINGS["celebrity_threshold"]
        self.crossings += before != after

    def assert_all_agree(self, rng: random.Random) -> int:
        for app in self.apps:
            app.wait_for_fanout()
        tweet_ids = [tweet_id for tweet_id, _ in self.model.tweets]
        cursors = [None, 1, 2, 2**63 - 1] + rng.sample(tweet_ids, min(6, len(tweet_ids)))
        cursors += [tweet_id + 1 for tweet_id in rng.sample(tweet_ids, min(3, len(tweet_ids)))]
        pages = 0
        for user in range(1, USERS + 1):
            for limit in LIMITS:
                for before in cursors:
                    expected = self.model.timeline(user, limit, before)
                    for app in self.apps:
                        got = app.timeline(user, limit, before)
                        assert got == expected, (
                            f"{app.module}: timeline({user}, limit={limit}, before={before})"
                        )
                    pages += 1
        return pages


def run_differential(apps: list[AppServer], seed: int) -> Lockstep:
    rng = random.Random(seed ^ 0xC0FFEE)
    lockstep = Lockstep(apps)
    lockstep.create_users()
    for n, step in enumerate(random_history(seed), 1):
        lockstep.apply(step)
        if n % 65 == 0:  # mid-history checks too: state built up by merges and trims
            lockstep.assert_all_agree(rng)
    assert lockstep.assert_all_agree(rng) > 0
    assert lockstep.crossings >= 2, "the history never crossed the celebrity threshold both ways"
    return lockstep
