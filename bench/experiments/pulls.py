"""python -m bench pulls [--followed 0,4,16,60] [--reads 2000] [--repeats 3] [--out DIR]

What one pulled celebrity costs the hybrid's cached read in Redis CPU: the slope of a read's
Redis CPU against the number of celebrities its reader follows, fitted over readers who
differ in that alone. The hybrid app (approach3_hybrid) is seeded over HTTP: AUTHORS ordinary
accounts, as many celebrities as the most any reader follows, and one reader per count in
--followed, each following every ordinary account and that many celebrities. Every account
tweets --tweets times, interleaved at random, so each celebrity has a few tweets above the
reader's own 50th. Each reader's page is then read --reads times over HTTP
(`GET /timeline/{reader}?limit=50`, one at a time, keep-alive), the readers in turn round
after round; redis-server's CPU and the app's come from /proc (rig/cpu.py) around each
reader's reads, which must all be cache hits. Writes pulls.csv (per count: the median µs per
read, and the fitted slope and intercept), rounds.csv and meta.json.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench.experiments.reads import Unequal, cache_counters, hits_during
from bench.output import Progress, write_csv
from bench.report.meta import source_version
from rig.cpu import Meter
from rig.processes import ROOT, AppServer, RedisServer
from timelines.designs import HYBRID

AUTHORS = 40  # ordinary accounts every reader follows: its own timeline
PAGE = 50

say = Progress().say


def seed(app: AppServer, followed: list[int], tweets: int, seed_: int) -> dict[int, int]:
    """The accounts, follows and tweets; each reader's id by the celebrities it follows."""
    with httpx.Client(base_url=app.url, timeout=30) as http:

        def user(name: str) -> int:
            response = http.post("/users", json={"username": name})
            response.raise_for_status()
            return int(response.json()["id"])

        def follow(follower: int, followee: int) -> None:
            http.put(f"/users/{follower}/following/{followee}").raise_for_status()

        authors = [user(f"author{n}") for n in range(AUTHORS)]
        celebrities = [user(f"celebrity{n}") for n in range(max(followed))]
        # Fans make the celebrities: one more of them than there are readers, who alone
        # follow the ordinary accounts, so the threshold separates the two.
        for fan in [user(f"fan{n}") for n in range(len(followed) + 1)]:
            for celebrity in celebrities:
                follow(fan, celebrity)
        readers = {count: user(f"reader{count}") for count in followed}
        for count, reader in readers.items():
            for followee in authors + celebrities[:count]:
                follow(reader, followee)
        order = [author for author in authors + celebrities for _ in range(tweets)]
        random.Random(seed_).shuffle(order)
        for author in order:
            http.post("/tweets", json={"user_id": author, "text": "a tweet to pull"}).raise_for_status()
    app.wait_for_fanout(120)
    return readers


def read_pages(http: httpx.Client, reader: int, reads: int) -> None:
    for _ in range(reads):
        response = http.get(f"/timeline/{reader}", params={"limit": PAGE})
        if response.status_code != 200 or len(response.json()["tweets"]) != PAGE:
            raise Unequal(f"reader {reader}: {response.status_code}, not a full page of {PAGE}")


def measure(app: AppServer, meter: Meter, http: httpx.Client, reader: int, reads: int) -> tuple[float, float]:
    """µs of redis-server's and of the app's CPU per read of `reader`'s page."""
    counters, before = cache_counters(app), meter.read()
    read_pages(http, reader, reads)
    spent = meter.read() - before
    hits_during(app, counters, reads)
    return spent.redis_s / reads * 1e6, spent.app_s / reads * 1e6


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares: (µs per celebrity followed, µs at none)."""
    slope, intercept = np.polyfit([x for x, _ in points], [y for _, y in points], 1)
    return float(slope), float(intercept)


def run(args: argparse.Namespace) -> list[dict]:
    started, source = datetime.now(UTC), source_version()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"celebrity_threshold": len(args.followed) + 1, "api_token": ""}
    with tempfile.TemporaryDirectory(prefix="bench-pulls-") as tmp, RedisServer(Path(tmp)) as redis:
        app = AppServer(
            HYBRID.module, Path(tmp) / "hybrid.db", redis.url(), args.out / "app.log", settings=settings
        )
        with app, httpx.Client(base_url=app.url, timeout=30) as http:
            say(f"seeding: {AUTHORS} authors, {max(args.followed)} celebrities, {args.tweets} tweets each")
            readers = seed(app, args.followed, args.tweets, args.seed)
            for reader in readers.values():
                read_pages(http, reader, 2)  # the first rebuilds what the seeding left uncached
            meter, rounds = Meter(app.process.pid, redis), []
            for round_ in range(args.repeats):
                shift = round_ % len(args.followed)
                for count in args.followed[shift:] + args.followed[:shift]:
                    redis_us, app_us = measure(app, meter, http, readers[count], args.reads)
                    say(
                        f"round {round_ + 1}: {count:>3} celebrities  "
                        f"Redis {redis_us:7.1f} µs  app {app_us:7.1f} µs"
                    )
                    rounds.append(
                        {
                            "round": round_,
                            "celebrities_followed": count,
                            "redis_us": redis_us,
                            "app_us": app_us,
                        }
                    )
    write_csv(args.out / "rounds.csv", rounds)
    rows = table(rounds, args.followed)
    write_csv(args.out / "pulls.csv", rows)
    meta = {
        "started": started.isoformat(timespec="seconds"),
        **source,
        "command": " ".join(["python -m bench pulls", *args.argv]),
        "reads_per_reader_and_round": args.reads,
        "repeats": args.repeats,
        "authors": AUTHORS,
        "tweets_per_account": args.tweets,
        "limit": PAGE,
        "reads_via": "HTTP, GET /timeline/{reader}?limit=50 against approach3_hybrid",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return rows


def table(rounds: list[dict], followed: list[int]) -> list[dict]:
    """The median of each count's rounds, then the fits of those medians."""
    rows = []
    for count in followed:
        mine = [r for r in rounds if r["celebrities_followed"] == count]
        rows.append(
            {
                "row": "per read",
                "celebrities_followed": count,
                "redis_us": round(statistics.median(r["redis_us"] for r in mine), 2),
                "app_us": round(statistics.median(r["app_us"] for r in mine), 2),
            }
        )
    redis_fit = fit([(r["celebrities_followed"], r["redis_us"]) for r in rows])
    app_fit = fit([(r["celebrities_followed"], r["app_us"]) for r in rows])
    for name, index in (("slope per celebrity", 0), ("intercept", 1)):
        rows.append(
            {
                "row": name,
                "celebrities_followed": "",
                "redis_us": round(redis_fit[index], 2),
                "app_us": round(app_fit[index], 2),
            }
        )
    return rows


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench pulls", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--followed",
        type=lambda text: sorted({int(n) for n in text.split(",")}),
        default=[0, 4, 16, 60],
        help="celebrities followed, a reader each (default 0,4,16,60)",
    )
    parser.add_argument("--reads", type=int, default=2000, help="reads per reader and round (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, the readers in turn (default 3)")
    parser.add_argument("--tweets", type=int, default=30, help="tweets per account (default 30)")
    parser.add_argument("--seed", type=int, default=42, help="orders the tweets")
    parser.add_argument("--out", type=Path, help="the run folder (default results/pulls-<UTC time>)")
    args = parser.parse_args(argv)
    if min(args.reads, args.repeats, args.tweets) <= 0 or len(args.followed) < 2 or args.followed[0] < 0:
        parser.error("--reads, --repeats and --tweets must be > 0, and --followed two counts or more, >= 0")
    args.argv = sys.argv[2:] if argv is None else argv
    args.out = args.out or ROOT / "results" / f"pulls-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        rows = run(args)
    except Unequal as error:
        print(f"bench pulls: {error}", file=sys.stderr)
        return 1
    for row in rows:
        print(
            f"{row['row']:<20} {row['celebrities_followed']!s:>4}  "
            f"Redis {row['redis_us']:>8} µs  app {row['app_us']:>8} µs"
        )
    say(f"written: {args.out / 'pulls.csv'}, rounds.csv, meta.json, app.log")
    return 0
