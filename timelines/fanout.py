"""The outbox worker of the two fanout designs: it delivers what POST /tweets promised.

A tweet's transaction also writes a `fanout_outbox` row, so what is owed is as durable as
the tweet. Each app process runs one worker in its lifespan, or, with FANOUT_WORKER=none,
processes of their own run them (timelines/worker.py). A worker claims rows by leasing
them inside a write transaction (SQLite has one writer at a time; PostgreSQL's claim skips
rows another claim has locked: either way two processes cannot claim the same row), walks
the author's followers in id order in batches, pushes the tweet id into each batch's cached
timelines, and records how far it got. A worker killed half-way leaves its lease to expire
(one stopped gives it back); the next one resumes at the recorded follower. The push script
never inserts an id a timeline already holds, so the few followers between the last
checkpoint and the crash are not served twice either. The row is deleted, and the fanout
lag logged, only after the last follower has it.

The follower list is read from the database before the push; an unfollow committed in between
would be undone by the push. So after each batch the worker reads the same range again and
takes the tweet back out of any timeline whose owner no longer follows the author.

A claimed batch is delivered side by side, and committed together, for SLICE_SECONDS; a job
still walking its followers then goes on alone, holding its lease, and commits its own end,
while the worker claims what came in meanwhile. So a celebrity's fanout no longer holds back
the ordinary tweets posted during it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

import orjson

from timelines.cache import REDIS_DOWN, RedisBusy, TimelineCache, source_floor
from timelines.db import UNAVAILABLE, Database
from timelines.encoding import tweet_json
from timelines.sql import ROLE, Dialects, Transaction

log = logging.getLogger("uvicorn.error")

# A job about a user rather than a tweet: a pull, a backfill, an eviction.
OWE_JOB = "INSERT INTO fanout_outbox (kind, user_id, accepted_at) VALUES (?, ?, ?)"
ANY_DUE = "SELECT 1 FROM fanout_outbox WHERE lease_until < ? LIMIT 1"
# SQLite has one writer: the UPDATE alone is the claim. PostgreSQL runs two workers' claims
# side by side: each locks the rows it picks and skips those another holds.
CLAIM = Dialects(
    sqlite="""
        UPDATE fanout_outbox SET lease_until = :until
        WHERE id IN (SELECT id FROM fanout_outbox WHERE lease_until < :now ORDER BY id LIMIT :batch)
        RETURNING id, kind, user_id, tweet_id, next_follower, accepted_at""",
    postgres="""
        UPDATE fanout_outbox SET lease_until = :until
        WHERE id IN (
            SELECT id FROM fanout_outbox WHERE lease_until < :now
            ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, user_id, tweet_id, next_follower, accepted_at""",
)
RELEASE = "UPDATE fanout_outbox SET lease_until = 0 WHERE id = ?"
CHECKPOINT = "UPDATE fanout_outbox SET next_follower = ?, lease_until = ? WHERE id = ?"
FINISH = "DELETE FROM fanout_outbox WHERE id = ?"
LOG_FANOUT = """
    INSERT INTO fanout_log (tweet_id, author_id, followers, accepted_at, done_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (tweet_id) DO UPDATE SET deliveries = fanout_log.deliveries + 1"""
SELECT_TWEETS = Dialects(
    sqlite="""
        SELECT id, user_id, text, created_at FROM tweets
        WHERE id IN (SELECT value FROM json_each(?))""",
    postgres="""
        SELECT id, user_id, text, created_at FROM tweets
        WHERE id IN (SELECT value::bigint FROM json_array_elements_text(?::json))""",
)
FOLLOWERS_AFTER = """
    SELECT follower_id FROM follows
    WHERE followee_id = ? AND follower_id > ?
    ORDER BY follower_id LIMIT ?"""
FOLLOWERS_BETWEEN = """
    SELECT follower_id FROM follows
    WHERE followee_id = ? AND follower_id BETWEEN ? AND ?"""
NEWEST_TWEET_IDS = "SELECT id FROM tweets WHERE user_id = ? ORDER BY id DESC LIMIT ?"

LEASE_SECONDS = 30.0
CALL_BUDGET_SECONDS = 0.002  # one Redis call; well under the 5 ms it may hold Redis
IDLE_POLL_SECONDS = 0.02  # how soon a worker notices rows another process wrote
CLAIM_BATCH = 64  # jobs a worker holds at once, those going on alone included
# How long a claimed batch waits for its slowest job before that job goes on alone: longer
# commits more jobs at once; shorter lets the tweets behind a big fanout out sooner.
SLICE_SECONDS = 0.1


class CallSizer:
    """How many followers one Redis call takes. What a follower costs Redis depends on its
    timeline (a push on top, a late id put in its place, a trim now and then) and on the
    machine, so any fixed count is either needlessly small or too long; this one follows
    the cost Redis reports for each call."""

    def __init__(self, size: int, low: int = 16, high: int = 4096):
        self.size, self.low, self.high = size, low, high

    def measured(self, count: int, seconds: float) -> None:
        fits = CALL_BUDGET_SECONDS * count / max(seconds, 1e-6)
        self.size = int(min(self.high, max(self.low, (self.size + fits) / 2)))


def chunks(parts: list[list[int]], sizer: CallSizer) -> Iterator[list[int]]:
    """Each part (the followers of one shard, on a cluster) cut in chunks of the size the
    sizer says when each is cut, taken from the parts in turn, so that consecutive calls go
    to different shards, and nodes."""
    starts = [0] * len(parts)
    while any(start < len(part) for start, part in zip(starts, parts, strict=True)):
        for index, part in enumerate(parts):
            if starts[index] < len(part):
                chunk = part[starts[index] : starts[index] + sizer.size]
                starts[index] += len(chunk)
                yield chunk


@dataclass
class WorkerTotals:
    """What this worker has done since it started: the fanout benchmark reads these."""

    jobs_done: int = 0
    follower_writes: int = 0  # followers walked by tweet fanouts (cached or not)
    redis_calls: int = 0
    redis_seconds: float = 0.0  # waiting on the calls that deliver


class JobKind(StrEnum):
    """What an outbox row owes: `fanout_outbox.kind`, stored as these strings."""

    TWEET = "tweet"  # push tweet_id into the cached timeline of every follower of user_id
    RECENT = "recent"  # push a celebrity's tweet_id into its own recent lists (the hybrid)
    PULL = "pull"  # user_id became a celebrity: its followers' timelines start naming it
    BACKFILL = "backfill"  # it no longer is: merge its recent tweets into its followers'
    EVICT = "evict"  # drop user_id's own cached timeline (a follow change Redis missed)


@dataclass
class Job:
    id: int
    kind: JobKind
    user_id: int
    tweet_id: int | None
    next_follower: int
    accepted_at: float

    @property
    def tweet(self) -> int:
        """The tweet a TWEET or a RECENT job delivers."""
        assert self.tweet_id is not None, f"a {self.kind} job names no tweet"
        return self.tweet_id


# Delivers to a chunk of followers; returns what the call cost Redis by its own clock, or
# None for the caller to time it.
Deliver = Callable[[list[int]], Awaitable[float | None]]


def owe(tx: Transaction, kind: JobKind, user_id: int) -> None:
    """Commits, with the change that owes it, a job about `user_id` for the worker."""
    tx.execute(OWE_JOB, (kind, user_id, time.time()))


class FanoutWorker:
    def __init__(
        self, db: Database, cache: TimelineCache, chunk: int, redis_down: bool = False, running: bool = True
    ):
        self.db = db
        self.cache = cache
        self.push_size = CallSizer(chunk)
        self.batch = 10_000  # followers per database read
        self.wake = asyncio.Event()
        self.redis_down = redis_down  # said once already, at start-up
        self.totals = WorkerTotals()
        self.running = running  # False: another process (timelines/worker.py) delivers
        self._task: asyncio.Task[None] | None = None
        self._held: dict[int, Job] = {}  # claimed and neither finished nor released
        self._alone: dict[int, asyncio.Task[None]] = {}  # by job id: those going on alone

    async def __aenter__(self) -> Self:
        if self.running:
            self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stops delivering and gives back what it held, for another worker to resume at
        once rather than when the leases run out."""
        for task in [self._task, *self._alone.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._held:
            try:
                await self._release(list(self._held.values()))
            except Exception as error:  # the leases run out instead
                log.warning("fanout worker: could not give back %d jobs (%s)", len(self._held), error)

    async def run(self) -> None:
        ROLE.set("fanout worker")
        while True:
            unfinished: list[Job] = []
            try:
                unfinished = await self._claim()
                if not unfinished:
                    await self._idle()
                    continue
                await self.deliver(unfinished)
                self._redis_back()
            except REDIS_DOWN as error:
                await self._redis_lost(error, self._not_alone(unfinished))
            except RedisBusy as error:  # the requests hold every connection: Redis is up
                log.warning("fanout worker: %s; the jobs wait in the outbox", error)
                await self._release(self._not_alone(unfinished))
                await asyncio.sleep(0.1)
            except UNAVAILABLE as error:
                log.warning("fanout worker: the database is busy or unreachable (%s); retrying", error)
                await asyncio.sleep(0.1)
            except Exception:
                # A bug here must not silently stop every delivery: say it, and carry on.
                log.exception("fanout worker: unexpected error; the jobs stay in the outbox")
                await self._release(self._not_alone(unfinished))
                await asyncio.sleep(1)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), IDLE_POLL_SECONDS)
        self.wake.clear()

    def _not_alone(self, jobs: list[Job]) -> list[Job]:
        return [job for job in jobs if job.id not in self._alone]

    async def _claim(self) -> list[Job]:
        room = CLAIM_BATCH - len(self._alone)
        if room <= 0:
            await asyncio.wait(list(self._alone.values()), return_when=asyncio.FIRST_COMPLETED)
            return []
        now = time.time()
        if not await self.db.fetchone(ANY_DUE, (now,)):
            return []
        lease = {"until": now + LEASE_SECONDS, "now": now, "batch": room}
        rows = await self.db.write(lambda tx: tx.execute(CLAIM, lease).fetchall())
        jobs = sorted((Job(id, JobKind(kind), *rest) for id, kind, *rest in rows), key=lambda job: job.id)
        self._held.update((job.id, job) for job in jobs)
        return jobs

    async def deliver(self, jobs: list[Job]) -> None:
        """Everything owed for a claimed batch, then the rows and their lag in one commit;
        the jobs not done within SLICE_SECONDS go on alone."""
        await self._store_bodies(jobs)
        done = await self._deliver_all(jobs)
        await self._commit(done)

    async def _commit(self, done: list[tuple[Job, int, float]]) -> None:
        await self.db.write(lambda tx: self._finish(tx, done))
        for job, _, _ in done:
            self._held.pop(job.id, None)
        self.totals.jobs_done += len(done)
        self.totals.follower_writes += sum(followers for _, followers, _ in done)

    async def _store_bodies(self, jobs: list[Job]) -> None:
        """The claimed tweets' bodies, cached in one read and one write for the batch."""
        tweet_ids = [job.tweet_id for job in jobs if job.kind in (JobKind.TWEET, JobKind.RECENT)]
        if tweet_ids:
            rows = await self.db.fetchall(SELECT_TWEETS, (orjson.dumps(tweet_ids).decode(),))
            await self.cache.store_tweets({row[0]: tweet_json(row) for row in rows})

    async def _deliver_all(self, jobs: list[Job]) -> list[tuple[Job, int, float]]:
        """The claimed jobs side by side: on an event loop busy with requests, each await
        waits a whole turn of the loop, so one job at a time would fall behind the tweets."""

        async def deliver(job: Job) -> tuple[Job, int, float]:
            return job, await self._deliver(job), time.time()

        tasks = {asyncio.create_task(deliver(job)): job for job in jobs}
        try:
            done, going_on = await asyncio.wait(tasks, timeout=SLICE_SECONDS)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        for task in going_on:
            job = tasks[task]
            self._alone[job.id] = asyncio.create_task(self._finish_alone(job, task))
        delivered = []
        for task in done:
            if (error := task.exception()) is not None:
                raise error
            delivered.append(task.result())
        return delivered

    async def _finish_alone(self, job: Job, delivering: asyncio.Task[tuple[Job, int, float]]) -> None:
        """A job that outlasted its batch's slice: its end committed by itself, or, if it
        fails, its row given back as the batch's would be."""
        try:
            await self._commit([await delivering])
        except REDIS_DOWN as error:
            await self._redis_lost(error, [job])
        except (*UNAVAILABLE, RedisBusy) as error:
            log.warning("fanout worker: %s; job %d waits in the outbox", error, job.id)
            with contextlib.suppress(Exception):  # else its lease runs out
                await self._release([job])
        except Exception:
            log.exception("fanout worker: job %d failed; it stays in the outbox", job.id)
            with contextlib.suppress(Exception):
                await self._release([job])
        finally:
            del self._alone[job.id]

    async def _deliver(self, job: Job) -> int:
        """Followers reached (0 for the jobs that are not a tweet's fanout)."""
        if job.kind is JobKind.TWEET:
            return await self._walk_followers(job, self._pusher(job.tweet), [job.tweet], self.push_size)
        if job.kind is JobKind.RECENT:
            await self.cache.push_recent(job.tweet, job.user_id)
        elif job.kind is JobKind.BACKFILL:
            await self._deliver_backfill(job)
        elif job.kind is JobKind.PULL:
            await self._deliver_pull(job)
        elif job.kind is JobKind.EVICT:
            await self.cache.evict_timeline(job.user_id)
        return 0

    def _pusher(self, tweet_id: int) -> Deliver:
        async def push(followers: list[int]) -> float:
            keys = [self.cache.keys.timeline(f) for f in followers]
            return (await self.cache.push(tweet_id, keys)).redis_seconds

        return push

    async def _deliver_pull(self, job: Job) -> None:
        """An account became a celebrity: its followers read its tweets from `recent:{id}`
        from now on. The list may be left from an earlier spell and miss what was fanned out
        since, so it goes, to be rebuilt whole on the next read."""
        await self.cache.evict_recent(job.user_id)

        async def pull(followers: list[int]) -> None:
            await self.cache.pull(followers, job.user_id)

        await self._walk_followers(job, pull, [], self.push_size)

    async def _deliver_backfill(self, job: Job) -> None:
        rows = await self.db.fetchall(NEWEST_TWEET_IDS, (job.user_id, self.cache.length))
        tweet_ids = [tweet_id for (tweet_id,) in rows]
        floor = source_floor(tweet_ids, self.cache.length)

        async def merge(followers: list[int]) -> None:
            await self.cache.merge(followers, tweet_ids, floor)

        if tweet_ids:
            # Each follower takes up to TIMELINE_LENGTH ids: far fewer followers per call.
            await self._walk_followers(job, merge, tweet_ids, CallSizer(1, low=1))
        await self.cache.evict_recent(job.user_id)

    @staticmethod
    def _finish(tx: Transaction, done: list[tuple[Job, int, float]]) -> None:
        for job, followers, done_at in done:
            tx.execute(FINISH, (job.id,))
            if job.kind is JobKind.TWEET:
                tx.execute(LOG_FANOUT, (job.tweet_id, job.user_id, followers, job.accepted_at, done_at))

    async def _walk_followers(
        self, job: Job, deliver: Deliver, delivered_ids: list[int], sizer: CallSizer
    ) -> int:
        """Delivers to every follower of job.user_id after job.next_follower, in id order,
        reading the next batch from the database while Redis takes the current one. A batch that
        may not be the last is checkpointed, so a crash resumes after it."""
        count, after = 0, job.next_follower
        upcoming = asyncio.create_task(self._followers_after(job.user_id, after))
        try:
            while followers := await upcoming:
                upcoming = asyncio.create_task(self._followers_after(job.user_id, followers[-1]))
                await self._in_chunks(followers, deliver, sizer)
                await self._take_back_from_unfollowers(job.user_id, followers, delivered_ids)
                count += len(followers)
                if len(followers) == self.batch:
                    await self._checkpoint(job, followers[-1])
        finally:
            upcoming.cancel()
        return count

    async def _checkpoint(self, job: Job, follower: int) -> None:
        """The job resumes after `follower` if this worker dies; its lease runs on meanwhile."""
        progress = (follower, time.time() + LEASE_SECONDS, job.id)
        await self.db.write(lambda tx: tx.execute(CHECKPOINT, progress))

    async def _in_chunks(self, followers: list[int], deliver: Deliver, sizer: CallSizer) -> None:
        """Calls outstanding, two per Redis node: each node works on one chunk while this
        process encodes and sends the next, instead of each waiting for the other.
        `deliver(chunk)` returns what the call cost Redis, by Redis's clock, or None; then its
        wall time is taken, which includes any wait behind the other calls."""

        async def timed(chunk: list[int]) -> None:
            sent = time.perf_counter()
            took = await deliver(chunk)
            took = time.perf_counter() - sent if took is None else took
            sizer.measured(len(chunk), took)
            self.totals.redis_calls += 1
            self.totals.redis_seconds += took

        in_flight = self.cache.calls_in_flight()
        outstanding: list[asyncio.Task[None]] = []
        try:
            for chunk in chunks(self.cache.keys.by_shard(followers), sizer):
                outstanding.append(asyncio.create_task(timed(chunk)))
                if len(outstanding) == in_flight:
                    await outstanding.pop(0)
            while outstanding:
                await outstanding.pop(0)
        finally:
            for task in outstanding:
                task.cancel()

    async def _followers_after(self, user_id: int, after: int) -> list[int]:
        rows = await self.db.fetchall(FOLLOWERS_AFTER, (user_id, after, self.batch))
        return [follower for (follower,) in rows]

    async def _take_back_from_unfollowers(
        self, user_id: int, delivered_to: list[int], tweet_ids: list[int]
    ) -> None:
        rows = await self.db.fetchall(FOLLOWERS_BETWEEN, (user_id, delivered_to[0], delivered_to[-1]))
        still_following = {follower for (follower,) in rows}
        for gone in set(delivered_to) - still_following:
            await self.cache.unmerge(gone, user_id, tweet_ids)

    async def _redis_lost(self, error: Exception, unfinished: list[Job]) -> None:
        if not self.redis_down:
            log.warning("fanout worker: Redis unreachable (%s); tweets wait in the outbox", error)
            self.redis_down = True
        await self._release(unfinished)
        await asyncio.sleep(0.5)

    async def _release(self, jobs: list[Job]) -> None:
        await self.db.write(lambda tx: tx.executemany(RELEASE, [(job.id,) for job in jobs]))
        for job in jobs:
            self._held.pop(job.id, None)

    def _redis_back(self) -> None:
        if self.redis_down:
            log.warning("fanout worker: Redis is back; delivering the outbox")
            self.redis_down = False
