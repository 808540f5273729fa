"""The generators: deterministic, shaped as promised (mean followees, a heavy follower tail,
skewed activity), valid as data (no self-follows or repeated follows, ids in time order,
texts the API would accept), and the home timelines computed from them exact."""

from datetime import datetime

import numpy as np
import pytest

from datagen.graph import generate_graph
from datagen.history import History, generate_history
from datagen.home import home_timelines
from datagen.scales import SCALES
from model import TimelineModel


@pytest.fixture(scope="module")
def graph():
    return generate_graph(5_000, 75, 1.1, seed=11)


@pytest.fixture(scope="module")
def history(graph):
    return generate_history(graph, 10, seed=11)


def top_share(values: np.ndarray, fraction: float = 0.01) -> float:
    """The share of the total held by the top `fraction` of entries."""
    top = np.sort(values)[::-1][: max(1, int(len(values) * fraction))]
    return top.sum() / values.sum()


# --- the graph -----------------------------------------------------------------------------


def test_same_seed_same_graph_other_seed_other_graph(graph):
    again = generate_graph(5_000, 75, 1.1, seed=11)
    assert np.array_equal(graph.follower, again.follower)
    assert np.array_equal(graph.followee, again.followee)
    other = generate_graph(5_000, 75, 1.1, seed=12)
    assert graph.edges != other.edges or not np.array_equal(graph.followee, other.followee)


def test_mean_followees_is_the_configured_mean(graph):
    assert graph.edges / graph.users == pytest.approx(75, rel=0.05)
    small = generate_graph(2_000, 20, 1.1, seed=3)
    assert small.edges / small.users == pytest.approx(20, rel=0.05)


def test_followers_have_a_heavy_tail(graph):
    followers = graph.followers()[1:]
    assert followers.max() >= 100 * np.median(followers)
    assert top_share(followers) >= 0.2, "the top 1% of accounts should hold a large share of follows"
    assert followers.max() >= graph.users / 2, "the top account should reach a large share of users"


def test_popularity_is_not_the_user_id(graph):
    followers = graph.followers()[1:]
    most_followed = np.argsort(followers)[::-1][:50] + 1
    assert np.median(most_followed) > graph.users / 5, "popular accounts cluster at low ids"


def test_every_edge_is_valid_and_appears_once(graph):
    assert graph.follower.min() >= 1 and graph.followee.min() >= 1
    assert graph.follower.max() <= graph.users and graph.followee.max() <= graph.users
    assert not np.any(graph.follower == graph.followee), "self-follow"
    keys = graph.follower * (graph.users + 1) + graph.followee
    assert np.all(np.diff(keys) > 0), "edges must be sorted by (follower, followee), each once"
    assert graph.following()[1:].min() >= 1, "everyone follows someone"


def test_users_who_follow_almost_everyone_get_exactly_their_followees():
    # 30 users wanting ~20 followees each: many want nearly all 29 others, where bulk
    # draws keep repeating and the exact per-user top-up has to finish the job.
    dense = generate_graph(30, 20, 1.5, seed=5)
    keys = dense.follower * 31 + dense.followee
    assert len(np.unique(keys)) == dense.edges and not np.any(dense.follower == dense.followee)
    assert dense.following().max() <= 29


# --- the history ---------------------------------------------------------------------------


def test_same_seed_same_history(graph, history):
    again = generate_history(graph, 10, seed=11)
    assert np.array_equal(history.author, again.author)
    assert history.texts() == again.texts()
    other = generate_history(graph, 10, seed=12)
    assert history.tweets != other.tweets or not np.array_equal(history.author, other.author)


def test_ids_grow_with_created_at(history):
    stamps = history.created_at()
    assert len(stamps) == history.tweets
    assert all(stamp.endswith("Z") for stamp in stamps)
    times = [datetime.fromisoformat(stamp) for stamp in stamps]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert history.created_at(10, 20) == stamps[10:20]


def test_texts_are_valid_tweets_of_realistic_length(history):
    lengths = np.array([len(text) for text in history.texts()])
    assert lengths.min() >= 1 and lengths.max() <= 280
    assert lengths.min() >= 30 and lengths.max() <= 140
    assert 70 <= lengths.mean() <= 110
    assert history.texts(5, 9) == history.texts()[5:9]


def test_activity_is_skewed_and_has_the_configured_depth(graph, history):
    tweets = history.per_author(graph.users)[1:]
    assert tweets.mean() == pytest.approx(10, rel=0.15)
    assert tweets.max() >= 30 * max(np.median(tweets), 1)
    assert top_share(tweets) >= 0.1
    assert np.mean(tweets == 0) > 0.05, "many accounts should never tweet"


def test_celebrities_tweet(graph, history):
    tweets = history.per_author(graph.users)
    most_followed = np.argsort(graph.followers()[1:])[::-1][:50] + 1
    assert tweets[most_followed].min() >= 10


def test_authors_are_interleaved_over_time(graph, history):
    # The first and last tenth of the history each have many authors, not a few in turn.
    tenth = history.tweets // 10
    assert len(np.unique(history.author[:tenth])) > graph.users / 4
    assert len(np.unique(history.author[-tenth:])) > graph.users / 4


# --- home timelines ------------------------------------------------------------------------


def computed(graph, history, length, pulled=None) -> dict[int, list[int]]:
    timelines = {}
    for batch in home_timelines(graph, history, length, pulled):
        for i in range(len(batch)):
            timelines[batch.first_user + i] = batch.newest(i).tolist()
    return timelines


def expected(model: TimelineModel, users: int, length: int, pulled=()) -> dict[int, list[int]]:
    """The definition, with the pulled accounts' tweets left out (the hybrid's cache)."""
    kept = TimelineModel()
    kept.follows = {(a, b) for a, b in model.follows if b not in pulled}
    kept.tweets = model.tweets
    return {user: kept.timeline(user, limit=length) for user in range(1, users + 1)}


@pytest.mark.parametrize("length", [1, 7, 50, 10_000])
def test_home_timelines_are_the_newest_ids_of_the_join(length):
    graph = generate_graph(120, 10, 1.1, seed=4)
    history = generate_history(graph, 6, seed=4)
    model = TimelineModel.of_generated(graph, history)
    assert computed(graph, history, length) == expected(model, graph.users, length)
    pulled = graph.followers() >= np.sort(graph.followers())[-3]
    assert pulled.sum() >= 3
    assert computed(graph, history, length, pulled) == expected(
        model, graph.users, length, set(np.flatnonzero(pulled).tolist())
    )


def test_home_timelines_are_exact_when_authors_are_not_spread_over_time():
    # The cutoff assumes authors interleaved at random; here each author's tweets come in
    # one block, so cutoffs miss and users must be redone without one.
    graph = generate_graph(80, 8, 1.1, seed=9)
    shuffled = generate_history(graph, 10, seed=9)
    blocks = History(np.sort(shuffled.author), shuffled.text_start, shuffled.text_stop, shuffled.salad)
    model = TimelineModel.of_generated(graph, blocks)
    for length in (3, 20):
        assert computed(graph, blocks, length) == expected(model, graph.users, length)


# --- scales --------------------------------------------------------------------------------


def test_scales_are_named_and_ordered():
    assert list(SCALES) == ["tiny", "small", "default", "large"]
    sizes = [scale.users for scale in SCALES.values()]
    assert sizes == sorted(sizes) and SCALES["tiny"].users <= 1_000
    for scale in SCALES.values():
        assert scale.mean_followees == 75


def test_default_has_celebrities_over_the_default_threshold():
    scale = SCALES["default"]
    graph = generate_graph(scale.users, scale.mean_followees, scale.exponent, scale.seed)
    followers = graph.followers()
    assert scale.users > 2 * 10_000
    assert 5 <= np.sum(followers >= 10_000) <= 100
