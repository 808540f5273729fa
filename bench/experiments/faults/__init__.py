"""Faults, with real processes and real signals: what each app does when Redis dies under
load, when the app itself dies half-way through a large fanout, and when many clients
write to overlapping users through two worker processes. One module per scenario, each
with its `Knobs`, a `measure(workdir, module, knobs, ...)` returning the scenario's figures
and the problems found, and a `report`; `python -m bench faults` (cli.py) runs them.

redis-kill  (redis_kill.py) A seeded app under an open-loop Locust run (DDIA's read:tweet
            mix) and a witness client that keeps the id of every tweet acknowledged and
            every page it read. Mid-run Redis is SIGKILLed, kept down, and restarted empty
            on its port. Figures: the requests' statuses before, during and after the
            outage (503s, connection errors), how long /health took to come back and the
            backlog to drain, and whether every acknowledged tweet is in every follower's
            home timeline afterwards, page by page over HTTP against the join on the
            SQLite file.
app-kill    (app_kill.py) One account with N followers (written straight into SQLite and
            the caches) tweets a few times; once the fanout has written a checkpoint the
            app's process group is SIGKILLed, and it is started again on the same files.
            Figures: when the fanout resumed and finished, followers pushed twice (counted
            by Redis itself, LINDEX calls of the push script), and any follower missing a
            tweet.
writers     (writers.py) --clients threads create users, follow, unfollow, tweet (and read
            a little) over a small shared set of users whose timelines are cached, against
            --workers uvicorn processes on one SQLite file. Figures: statuses (any 5xx,
            busy-database 503s), counters against rows, every acknowledged tweet stored
            once, and every home timeline against the join.

Each run writes DIR/faults-<scenario>-<date>/<approach>/ (result.json and the raw records:
Locust samples, witness, monitor, per-request CSVs, app and Redis logs) and
DIR/faults-<scenario>-<date>/result.json for all; the SQLite file lives in a temporary
directory, removed after each approach. DIR is results/ unless --out says otherwise.
tests/test_faults.py measures the same scenarios at a small size and asserts on the figures.
"""
