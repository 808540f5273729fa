"""The suite's command-line options, added to Locust's own (see `locust -f loadtest/ --help`).

A worker runs with the master's values whatever its own command line says: the master
sends them with each worker's setup (Locust itself only forwards them with the spawn
message, which comes after the setup)."""

import math
import os

DDIA_READ_RATIO = 300_000 / 4_600  # home-timeline reads per tweet at Twitter, 2012: ~65


NAMES = (
    "read_ratio",
    "arrival_rate",
    "samples_csv",
    "database",
    "zipf",
    "author_bias",
    "seed",
    "graph_users",
    "graph_followees",
    "graph_tweets",
    "discover_limit",
    "api_token",
)


def add_arguments(parser) -> None:
    group = parser.add_argument_group("timelines", "DDIA home-timeline workload (loadtest/)")
    group.add_argument(
        "--read-ratio",
        type=float,
        default=round(DDIA_READ_RATIO),
        metavar="R",
        help="timeline reads per tweet (DDIA: 300k/4.6k ~ 65). Default %(default)s",
    )
    group.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        metavar="PER_S",
        help="open loop: this many requests/s in total, over all users and processes, "
        "whatever the response times; a request that had to wait for a free user "
        "counts its latency from when it was due. 0 (default): Locust's closed loop",
    )
    group.add_argument(
        "--samples-csv",
        default="",
        metavar="PATH",
        help="every request (time, operation, status, latency_us, count) to this CSV, "
        "and the app's /stats at the end to the same name ending .stats.json "
        "(run.csv: run.stats.json)",
    )
    group.add_argument(
        "--database",
        default="",
        metavar="PATH|URL",
        help="the app's SQLite file, opened read-only, or its postgresql:// URL: the users "
        "are taken from it. Without it they are found, or created, over HTTP",
    )
    group.add_argument(
        "--zipf",
        type=float,
        default=1.0,
        metavar="S",
        help="Zipf exponent of user activity: the user of activity rank r reads (and "
        "tweets) with probability ~ 1/r^S. Default %(default)s",
    )
    group.add_argument(
        "--author-bias",
        type=float,
        default=0.0,
        metavar="B",
        help="0..1: the share of tweets whose author is drawn by follower rank (the "
        "most followed tweets most) instead of by activity rank. Default %(default)s",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=1,
        help="seeds the activity ranks, the graph built on an empty app and the "
        "request streams. Default %(default)s",
    )
    group.add_argument(
        "--graph-users",
        type=int,
        default=300,
        metavar="N",
        help="users to create when the app is empty. Default %(default)s",
    )
    group.add_argument(
        "--graph-followees",
        type=float,
        default=20,
        metavar="N",
        help="mean followees per created user (heavy-tailed). Default %(default)s",
    )
    group.add_argument(
        "--graph-tweets",
        type=float,
        default=3,
        metavar="N",
        help="mean tweets per created user. Default %(default)s",
    )
    group.add_argument(
        "--discover-limit",
        type=int,
        default=10_000,
        metavar="N",
        help="a seeded app without --database: the most users to read over HTTP (a "
        "seeded random sample beyond this). Default %(default)s",
    )
    # No %(default)s: --help would print the token.
    group.add_argument(
        "--api-token",
        default=os.environ.get("API_TOKEN", ""),
        metavar="TOKEN",
        help="for an app started with API_TOKEN: sent as `Authorization: Bearer TOKEN` "
        "with every call that changes state (the graph built on an empty app, the "
        "tweets). Default: the API_TOKEN environment variable",
    )


def check(options) -> list[str]:
    """Problems with the options, as messages (empty when all is well)."""
    problems = []
    if not options.read_ratio >= 0 or math.isinf(options.read_ratio):
        problems.append("--read-ratio must be a finite number >= 0")
    if not options.arrival_rate >= 0:
        problems.append("--arrival-rate must be >= 0")
    if not 0 <= options.author_bias <= 1:
        problems.append("--author-bias must be between 0 and 1")
    if not options.zipf >= 0:
        problems.append("--zipf must be >= 0")
    if options.graph_users < 2:
        problems.append("--graph-users must be at least 2")
    if options.discover_limit < 1:
        problems.append("--discover-limit must be at least 1")
    return problems
