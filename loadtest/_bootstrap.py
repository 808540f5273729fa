"""A small follow graph, created through the API on an empty app, so that the suite can be
pointed at a freshly started app of any approach.

The shape is DDIA's in miniature: popularity is Zipf-distributed over a seeded random
order of the users, so a few accounts collect most followers (the celebrities); followees
per user are log-normal (heavy-tailed, mean --graph-followees); tweets per user are
Poisson (mean --graph-tweets). Users are created one at a time so that, on an empty app,
user k gets id k and the name user{k} (as datagen/ names them); follows and tweets go
`concurrency` at a time, follows first, so that fanout apps fan the tweets out as they
would in steady state instead of merging histories on follow.
"""

import logging
import time
from dataclasses import dataclass

import gevent
import numpy as np

from loadtest._api import Api, ApiError
from loadtest._population import Population

log = logging.getLogger(__name__)


@dataclass
class GraphPlan:
    followees: list[np.ndarray]  # per user index, the indexes it follows
    tweets: np.ndarray  # per user index, how many tweets it posts

    @property
    def users(self) -> int:
        return len(self.tweets)


def plan_graph(
    users: int,
    mean_followees: float,
    mean_tweets: float,
    seed: int,
    popularity_exponent: float = 1.0,
    sigma: float = 1.0,
) -> GraphPlan:
    rng = np.random.default_rng([seed, 0x6A7])
    order = rng.permutation(users)  # order[r] is the user of popularity rank r
    log_weight = np.empty(users)
    log_weight[order] = -popularity_exponent * np.log(np.arange(1, users + 1))
    mu = np.log(max(mean_followees, 1e-9)) - sigma**2 / 2  # log-normal with that mean
    counts = np.clip(
        np.rint(rng.lognormal(mu, sigma, users)), 1 if mean_followees > 0 else 0, users - 1
    ).astype(np.int64)
    followees = []
    for user, count in enumerate(counts):
        # `count` distinct followees, none the user itself, by weight: Gumbel top-k.
        keys = log_weight + rng.gumbel(size=users)
        keys[user] = -np.inf
        followees.append(np.argpartition(-keys, count)[:count] if count else np.empty(0, np.int64))
    return GraphPlan(followees, rng.poisson(mean_tweets, users).astype(np.int64))


def build(api: Api, plan: GraphPlan, drain_timeout: float = 60) -> Population:
    started = time.monotonic()
    ids = np.empty(plan.users, dtype=np.int64)
    for index in range(plan.users):
        name = f"user{index + 1}"
        code, body = api.call("POST", "/users", {"username": name})
        if code == 409:  # not as empty as it looked: someone else is creating users
            raise ApiError(f"POST /users {name}: 409, the app was not empty")
        if code != 201:
            raise ApiError(f"POST /users {name} answered {code}: {body}")
        ids[index] = body["id"]

    pairs = [
        (int(ids[follower]), int(ids[followee]))
        for follower, followees in enumerate(plan.followees)
        for followee in followees
    ]

    def follow(pair):
        api.expect(204, "PUT", f"/users/{pair[0]}/following/{pair[1]}")

    api.map(follow, pairs)
    tweets = [
        (int(ids[author]), number) for author, count in enumerate(plan.tweets) for number in range(count)
    ]

    def tweet(item):
        author, number = item
        api.expect(201, "POST", "/tweets", {"user_id": author, "text": f"tweet {number} of user {author}"})

    api.map(tweet, tweets)
    built = time.monotonic() - started
    backlog = wait_for_fanout(api, drain_timeout)
    log.info(
        "created %d users, %d follows, %d tweets in %.1f s%s",
        plan.users,
        len(pairs),
        len(tweets),
        built,
        f"; fanout backlog {backlog} after {drain_timeout:.0f} s" if backlog else "",
    )
    followers = (
        np.bincount(np.concatenate(plan.followees), minlength=plan.users)
        if pairs
        else np.zeros(plan.users, np.int64)
    )
    following = np.array([len(f) for f in plan.followees], dtype=np.int64)
    return Population(
        ids,
        followers.astype(np.int64),
        following,
        f"a graph of {plan.users} users built over HTTP at {api.host}",
    )


def wait_for_fanout(api: Api, timeout: float) -> int:
    """Until /stats says nothing is owed (the run then starts from a steady state); the
    backlog left when the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        stats = api.expect(200, "GET", "/stats")
        backlog = int(stats.get("fanout_backlog", 0))
        if backlog == 0 or time.monotonic() > deadline:
            return backlog
        gevent.sleep(0.05)
