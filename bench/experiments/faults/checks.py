"""How the fault scenarios judge what a run left behind, against the real stores and over
HTTP. One module for tests/test_faults.py (which asserts on the figures) and bench/experiments/faults/
(which reports them at full size), so that a test and a bench run mean the same thing.

The SQLite file is the source of truth (docs/CONTRACT.md): what the apps answer is compared
with DDIA's join run on that file directly, read-only, beside the running app.
"""

import csv
import sqlite3
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.request import pathname2url

import httpx
import redis

from timelines.cache import timeline_key
from timelines.fanout import FanoutWorker

NO_CURSOR = 2**63 - 1
PAGE = 200  # the contract's largest page
HOME_TIMELINE_IDS = """
    SELECT tweets.id FROM tweets JOIN follows ON tweets.user_id = follows.followee_id
    WHERE follows.follower_id = ? AND tweets.id < ?
    ORDER BY tweets.id DESC LIMIT ?"""
COUNTER_DRIFT = """
    SELECT count(*) FROM users
    WHERE followers != (SELECT count(*) FROM follows WHERE followee_id = users.id)
       OR following != (SELECT count(*) FROM follows WHERE follower_id = users.id)
       OR tweets != (SELECT count(*) FROM tweets WHERE user_id = users.id)"""
OUTBOX = "SELECT id, kind, user_id, tweet_id, next_follower, lease_until FROM fanout_outbox ORDER BY id"


def checkpoint_window() -> int:
    """Followers a fanout walks between two checkpoints: the most a crash makes it push twice.
    Read off a real worker (no database needed to build one), so the bound follows the code."""
    return FanoutWorker(db=None, cache=None, chunk=1).batch


# --- SQLite, read-only beside the app ------------------------------------------------------


def read_only(database: Path) -> sqlite3.Connection:
    uri = f"file:{pathname2url(str(Path(database).resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def scalar(database: Path, sql: str, parameters=()):
    with closing(read_only(database)) as connection:
        return connection.execute(sql, parameters).fetchone()[0]


def last_tweet_id(database: Path) -> int:
    return scalar(database, "SELECT coalesce(max(id), 0) FROM tweets")


def tweets_above(database: Path, above: int) -> dict[int, tuple[int, str]]:
    with closing(read_only(database)) as connection:
        rows = connection.execute("SELECT id, user_id, text FROM tweets WHERE id > ?", (above,))
        return {tweet_id: (user_id, text) for tweet_id, user_id, text in rows}


def user_ids(database: Path) -> list[int]:
    with closing(read_only(database)) as connection:
        return [user_id for (user_id,) in connection.execute("SELECT id FROM users ORDER BY id")]


def followers_of(database: Path, user_id: int) -> list[int]:
    with closing(read_only(database)) as connection:
        rows = connection.execute(
            "SELECT follower_id FROM follows WHERE followee_id = ? ORDER BY follower_id", (user_id,)
        )
        return [follower for (follower,) in rows]


def outbox(database: Path) -> list[dict]:
    with closing(read_only(database)) as connection:
        columns = ("id", "kind", "user_id", "tweet_id", "next_follower", "lease_until")
        return [dict(zip(columns, row, strict=True)) for row in connection.execute(OUTBOX)]


def counter_drift(database: Path) -> int:
    """Users whose followers/following/tweets counters disagree with the rows they count."""
    return scalar(database, COUNTER_DRIFT)


def home_ids(connection: sqlite3.Connection, user: int, limit: int, before: int = NO_CURSOR) -> list[int]:
    return [tweet_id for (tweet_id,) in connection.execute(HOME_TIMELINE_IDS, (user, before, limit))]


# --- acknowledged writes --------------------------------------------------------------------


@dataclass
class TweetAudit:
    acknowledged: int = 0  # 201s
    in_database: int = 0  # tweets written since the run began
    lost: int = 0  # acknowledged with an id that is not in the database
    altered: int = 0  # in the database under another author or text
    twice: int = 0  # one id acknowledged for two requests
    unaccounted: int = 0  # stored tweets no 201 accounts for (negative: 201s with no tweet)


def audit_tweets(
    database: Path, above: int, acknowledged: list[tuple[int, int, str]], acknowledged_without_ids: int = 0
) -> TweetAudit:
    """`acknowledged`: (id, user_id, text) of every 201 whose body the client kept;
    `acknowledged_without_ids`: 201s counted but not kept (Locust's samples hold no ids).
    A call other than 201 must have changed nothing, so the database holds exactly these."""
    stored = tweets_above(database, above)
    by_id = Counter(tweet_id for tweet_id, _, _ in acknowledged)
    audit = TweetAudit(acknowledged=len(acknowledged) + acknowledged_without_ids, in_database=len(stored))
    audit.twice = sum(count - 1 for count in by_id.values())
    for tweet_id, user_id, text in acknowledged:
        if tweet_id not in stored:
            audit.lost += 1
        elif stored[tweet_id] != (user_id, text):
            audit.altered += 1
    audit.unaccounted = len(stored.keys() - by_id.keys()) - acknowledged_without_ids
    return audit


def tweet_problems(audit: TweetAudit) -> list[str]:
    problems = [
        f"{getattr(audit, name)} {what}"
        for name, what in (
            ("lost", "acknowledged tweets are not in the database"),
            ("altered", "stored tweets differ from what was acknowledged"),
            ("twice", "tweet ids were acknowledged twice"),
        )
        if getattr(audit, name)
    ]
    if audit.unaccounted > 0:
        problems.append(f"{audit.unaccounted} tweets are in the database though no 201 accounts for them")
    if audit.unaccounted < 0:
        problems.append(f"{-audit.unaccounted} acknowledged tweets are not in the database")
    return problems


# --- per-request samples --------------------------------------------------------------------


def status_counts(rows, periods: list[tuple[str, float]]) -> dict[str, dict[str, dict[int, int]]]:
    """{period: {operation: {status: count}}}; rows are (time, operation, status); a row
    belongs to the last period that began at or before its time (periods in time order)."""
    counts: dict = {name: defaultdict(Counter) for name, _ in periods}
    for when, operation, status in rows:
        period = periods[0][0]
        for name, start in periods:
            if when >= start:
                period = name
        counts[period][operation][status] += 1
    return {period: {op: dict(sorted(c.items())) for op, c in ops.items()} for period, ops in counts.items()}


def samples(path: Path) -> list[tuple[float, str, int]]:
    """loadtest's --samples-csv: (time, operation, status) per request; status 0 is a
    connection error or a timeout."""
    with open(path, newline="") as file:
        return [(float(row["time"]), row["operation"], int(row["status"])) for row in csv.DictReader(file)]


def status_problems(counts: dict, allowed: dict[str, dict[str, set[int]]]) -> list[str]:
    """allowed: {period: {operation: statuses}}."""
    problems = []
    for period, operations in counts.items():
        for operation, statuses in operations.items():
            bad = {status: n for status, n in statuses.items() if status not in allowed[period][operation]}
            if bad:
                problems.append(
                    f"{period}: {operation} answered {bad} (allowed: "
                    f"{sorted(allowed[period][operation])}; 0 = no answer)"
                )
    return problems


def total(counts: dict, status: int, period: str | None = None) -> int:
    return sum(
        statuses.get(status, 0)
        for name, operations in counts.items()
        if period in (None, name)
        for statuses in operations.values()
    )


# --- home timelines over HTTP against the join ----------------------------------------------


@dataclass
class TimelineCheck:
    users: int = 0
    pages: int = 0
    failed: int = 0  # a page answered other than 200
    missing: int = 0  # tweet ids the join has and the app did not return
    extra: int = 0  # returned, but not in the join
    duplicates: int = 0
    misordered: int = 0  # users whose ids were all right but not in the join's order
    examples: list = field(default_factory=list)  # a few (user, what) to start from

    @property
    def wrong(self) -> int:
        return self.failed + self.missing + self.extra + self.duplicates + self.misordered

    def add(self, other: "TimelineCheck") -> None:
        for name in ("users", "pages", "failed", "missing", "extra", "duplicates", "misordered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples = (self.examples + other.examples)[:10]

    def as_dict(self) -> dict:
        return asdict(self)


def check_timelines(
    base_url: str, database: Path, users, above: int = 0, first_pages: int = 1, threads: int = 4
) -> TimelineCheck:
    """Pages GET /timeline/U?limit=200 down for every user until it has returned every tweet
    with an id above `above` and at least `first_pages` pages, and compares the ids, in
    order, with the join's. TIMELINE_LENGTH under 200 makes the first page run beyond the
    cache; above=0 walks every timeline to its end."""
    local = threading.local()

    def one(user: int) -> TimelineCheck:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, timeout=60)
            local.db = read_only(database)
        return _check_one(local.client, local.db, user, above, first_pages)

    result = TimelineCheck()
    with ThreadPoolExecutor(threads) as pool:
        for check in pool.map(one, list(users)):
            result.add(check)
    return result


def _check_one(
    client: httpx.Client, db: sqlite3.Connection, user: int, above: int, first_pages: int
) -> TimelineCheck:
    check, got, before = TimelineCheck(users=1), [], None
    while True:
        params = {"limit": PAGE} | ({"before": before} if before else {})
        response = client.get(f"/timeline/{user}", params=params)
        check.pages += 1
        if response.status_code != 200:
            check.failed += 1
            check.examples.append((user, f"page before={before}: {response.status_code}"))
            return check
        ids = [tweet["id"] for tweet in response.json()["tweets"]]
        got += ids
        if len(ids) < PAGE or (ids[-1] <= above and check.pages >= first_pages):
            break
        before = ids[-1]
    expected = home_ids(db, user, len(got) + PAGE)
    expected = expected[: max(len(got), sum(tweet_id > above for tweet_id in expected))]
    check.duplicates = len(got) - len(set(got))
    check.missing = len(set(expected) - set(got))
    check.extra = len(set(got) - set(expected))
    check.misordered = int(not (check.missing or check.extra or check.duplicates) and got != expected)
    if check.wrong:
        what = (
            f"{check.missing} missing, {check.extra} extra, {check.duplicates} twice, "
            f"order {'wrong' if check.misordered else 'ok'}"
        )
        check.examples.append((user, what))
    return check


def timeline_problems(check: TimelineCheck) -> list[str]:
    if not check.wrong:
        return []
    problem = (
        f"home timelines differ from the join: {check.failed} pages failed, {check.missing} ids "
        f"missing, {check.extra} extra, {check.duplicates} twice, {check.misordered} users "
        f"misordered; e.g. {check.examples[:3]}"
    )
    return [problem]


def check_pages(database: Path, pages: list[tuple[int, int, int, list[int]]]) -> int:
    """Pages a client kept, (user, before, limit, ids), against the join: how many differ.
    Valid for pages below every tweet written since (tweets are only ever appended)."""
    with closing(read_only(database)) as db:
        return sum(ids != home_ids(db, user, limit, before) for user, before, limit, ids in pages)


# --- the fanout caches -------------------------------------------------------------------------


def holders(
    client: redis.Redis, users: list[int], tweet_ids: list[int], chunk: int = 2000
) -> dict[int, set[int]]:
    """For each tweet id, the users whose cached timeline holds it (LRANGE, so that the
    scenario's own look does not count as a LINDEX in Redis's command statistics)."""
    held: dict[int, set[int]] = {tweet_id: set() for tweet_id in tweet_ids}
    wanted = {str(tweet_id).encode(): tweet_id for tweet_id in tweet_ids}
    for start in range(0, len(users), chunk):
        part = users[start : start + chunk]
        pipe = client.pipeline(transaction=False)
        for user in part:
            pipe.lrange(timeline_key(user), 0, -2)
        for user, ids in zip(part, pipe.execute(), strict=True):
            for tweet_id in wanted.keys() & set(ids):
                held[wanted[tweet_id]].add(user)
    return held


def push_visits(client: redis.Redis) -> int:
    """LINDEXes Redis has run since its statistics were reset, scripts' included: the fanout's
    push script runs one per timeline it visits (and two more per trim), so with no reads
    and no full timelines, as in the app-kill scenario, this counts visits."""
    return client.info("commandstats").get("cmdstat_lindex", {}).get("calls", 0)
