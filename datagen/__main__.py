"""python -m datagen SCALE (--database PATH | --database-url postgresql://…)
                   [--redis-url URL [--redis-cluster] --approach fanout|hybrid]
                   [--timeline-length 800] [--celebrity-threshold 10000] [--force]

Generates the named scale (datagen/scales.py), says what it produced, and loads it: into a
new SQLite file or an empty PostgreSQL database (all three apps), and into Redis too for a
fanout app (with --redis-cluster, into the Redis Cluster that URL is a node of, keyed as an
app with REDIS_CLUSTER=1 reads). The database alone is the seeded state of join-on-read;
the fanout apps need their caches as well, loaded for the same TIMELINE_LENGTH and
CELEBRITY_THRESHOLD the app will run with.
"""

import argparse
import sys
import time

import numpy as np
import psycopg
import redis
from redis.exceptions import RedisClusterException

from datagen.caches import APPROACHES, load_redis, refuse_if_loaded
from datagen.graph import Graph
from datagen.history import History
from datagen.load import Refused, celebrities, load_sqlite, refuse_if_exists
from datagen.load_postgres import is_postgres_url, load_postgres, redacted, refuse_if_populated
from datagen.scales import SCALES


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    try:
        # Every store checked before writing anything anywhere.
        if args.database_url:
            refuse_if_populated(args.database_url, args.force)
        else:
            refuse_if_exists(args.database, args.force)
        if args.redis_url:
            refuse_if_loaded(args.redis_url, args.force, args.redis_cluster)
        graph, history = SCALES[args.scale].generate()
        print(summary(args.scale, graph, history, args.celebrity_threshold))
        print(f"generated: {time.perf_counter() - began:.1f} s", flush=True)
        load_database(args, graph, history)
        if args.redis_url:
            timed(
                f"redis {'cluster ' if args.redis_cluster else ''}{args.redis_url} ({args.approach})",
                lambda: load_redis(
                    args.redis_url,
                    graph,
                    history,
                    args.approach,
                    args.timeline_length,
                    args.celebrity_threshold,
                    args.force,
                    cluster=args.redis_cluster,
                ),
            )
    except Refused as refusal:
        print(f"datagen: {refusal}", file=sys.stderr)
        return 2
    except redis.ConnectionError as error:
        print(f"datagen: Redis unreachable at {args.redis_url}: {error}", file=sys.stderr)
        return 2
    except RedisClusterException as error:  # not a cluster node, or a cluster still forming
        print(
            f"datagen: no Redis Cluster at {args.redis_url} ({error}): "
            "start the cluster, or load one Redis without --redis-cluster",
            file=sys.stderr,
        )
        return 2
    except psycopg.OperationalError as error:
        print(f"datagen: PostgreSQL unreachable at {redacted(args.database_url)}: {error}", file=sys.stderr)
        return 2
    print(f"total (generate + load): {time.perf_counter() - began:.1f} s")
    return 0


def load_database(args: argparse.Namespace, graph: Graph, history: History) -> None:
    if args.database_url:
        timed(
            f"postgresql {redacted(args.database_url)}",
            lambda: load_postgres(args.database_url, graph, history, args.celebrity_threshold, args.force),
        )
    else:
        timed(
            f"sqlite {args.database}",
            lambda: load_sqlite(args.database, graph, history, args.celebrity_threshold, args.force),
        )


def timed(what: str, action) -> None:
    began = time.perf_counter()
    action()
    print(f"{what}: loaded in {time.perf_counter() - began:.1f} s", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m datagen", description=__doc__.split("\n\n")[1])
    parser.add_argument("scale", choices=SCALES)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database", metavar="PATH", help="the SQLite file to create")
    target.add_argument(
        "--database-url",
        metavar="URL",
        help="or a PostgreSQL database to fill: postgresql://user@host:port/db (schema_postgres.sql)",
    )
    parser.add_argument("--redis-url", metavar="URL", help="also load the fanout caches here")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="--redis-url is a node of a Redis Cluster (the apps' REDIS_CLUSTER=1)",
    )
    parser.add_argument(
        "--approach",
        choices=APPROACHES,
        help="which app's caches (with --redis-url): approach2 or approach3_hybrid",
    )
    parser.add_argument(
        "--timeline-length",
        type=int,
        default=800,
        metavar="N",
        help="the apps' TIMELINE_LENGTH (default 800)",
    )
    parser.add_argument(
        "--celebrity-threshold",
        type=int,
        default=10_000,
        metavar="N",
        help="the apps' CELEBRITY_THRESHOLD (default 10000)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing database file and the apps' keys in the Redis db",
    )
    args = parser.parse_args(argv)
    if args.database_url and not is_postgres_url(args.database_url):
        parser.error("--database-url must be postgresql://…; a SQLite file is --database PATH")
    if bool(args.redis_url) != bool(args.approach):
        parser.error("--redis-url and --approach go together")
    if args.redis_cluster and not args.redis_url:
        parser.error("--redis-cluster names what --redis-url is: give both")
    if args.timeline_length < 1 or args.celebrity_threshold < 1:
        parser.error("--timeline-length and --celebrity-threshold must be at least 1")
    return args


def summary(name: str, graph: Graph, history: History, threshold: int) -> str:
    followers = graph.followers()[1:]
    tweets = history.per_author(graph.users)[1:]
    top = np.sort(followers)[::-1][: max(1, graph.users // 100)]
    return "\n".join(
        (
            f"scale {name}: {graph.users:,} users, {graph.edges:,} follows, {history.tweets:,} tweets",
            f"  followers: max {followers.max():,}, mean {followers.mean():.1f}, "
            f"median {np.median(followers):g}; "
            f"top 1% of accounts hold {top.sum() / graph.edges:.0%} of follows",
            f"  followees: mean {graph.following()[1:].mean():.1f}, max {graph.following().max():,}",
            f"  tweets per author: mean {tweets.mean():.1f}, median {np.median(tweets):g}, "
            f"max {tweets.max():,}",
            f"  accounts with >= {threshold:,} followers (celebrities): "
            f"{len(celebrities(graph, threshold)):,}",
        )
    )


if __name__ == "__main__":
    sys.exit(main())
