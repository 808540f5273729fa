"""DDIA's Twitter workload against any app that speaks docs/CONTRACT.md:

    locust -f loadtest/ --host http://127.0.0.1:8000 --headless -u 64 -r 64 -t 60s \\
        [--read-ratio 65] [--arrival-rate 2000] [--samples-csv run.csv] [--database app.db]

Home-timeline reads (GET /timeline/{id}) and tweets (POST /tweets), --read-ratio reads per
tweet (DDIA: 300k/s against 4.6k/s, ~65), readers and authors Zipf-skewed (_mix.py). On an
empty app a small graph is created first (_bootstrap.py); on a seeded one the users are
taken from --database or read over HTTP (_population.py). Closed loop by default; open
loop with --arrival-rate (_openloop.py). Every request to --samples-csv in microseconds
(_samples.py), the app's /stats next to it at the end (_report.py). Works the same with
--processes N and with --master/--worker (_controller.py). `python -m loadtest` lists the
suite's options (Locust's own --help cannot).

The only module here with side effects (the one User class and the listeners), and so the
only one Locust imports itself (see __init__.py).
"""

import sys
from http.client import HTTPException
from pathlib import Path
from time import perf_counter

import gevent
from geventhttpclient import URL
from locust import FastHttpUser, events, task
from locust.exception import StopUser

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # `locust -f` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest import _options as options  # noqa: E402
from loadtest._controller import Controller, log  # noqa: E402
from loadtest._mix import READ, TWEET  # noqa: E402
from loadtest._openloop import OVERSLEPT  # noqa: E402

CONTROLLER = Controller()
READ_NAME, TWEET_NAME = "/timeline/[id]", "/tweets"
JSON = {"Content-Type": "application/json"}
# Tweet texts of 24 to 199 characters, a user's always the same one.
TEXTS = [("load " * (5 * k))[:-1] for k in range(1, 9)]
TWEET_BODIES = [('{"user_id":%d,"text":"' + text + '"}') for text in TEXTS]
NO_CONTEXT: dict = {}
FAILURES = (OSError, HTTPException, gevent.Timeout, ValueError, RuntimeError)  # socket, parse, pool


class HttpStatus(Exception):
    """A non-2xx answer, as Locust's failure table shows it."""


events.init_command_line_parser.add_listener(options.add_arguments)
events.init.add_listener(CONTROLLER.on_init)
events.test_start.add_listener(CONTROLLER.on_test_start)
events.test_stopping.add_listener(CONTROLLER.on_test_stopping)
events.test_stop.add_listener(CONTROLLER.on_test_stop)
events.quitting.add_listener(CONTROLLER.on_quitting)


class TimelineUser(FastHttpUser):
    """One client: reads its home timeline and tweets, as the mix says.

    Requests go through the HTTP connection of this user's FastHttpSession, but not through
    its request() wrapper (URL parsing, cookies, redirects, response wrapping): the suite
    reports each request to Locust itself, with the latency it defines (in open loop, from
    the due time for a request that waited for a free user). That also halves the CPU a
    request costs the generator, so that the generator is not what is measured (see
    bench/experiments/loadgen/)."""

    connection_timeout = 10.0
    network_timeout = 60.0

    def on_start(self) -> None:
        if not CONTROLLER.ready.wait(timeout=120):
            log.error("no setup from the master after 120 s; this user stops")
            raise StopUser()
        url = URL(self.host)
        self.http = self.client.client.clientpool.get_client(url)
        self.prefix = url.path.rstrip("/")
        self.tweets_path = self.prefix + "/tweets"
        token = CONTROLLER.options.api_token  # the master's, on a worker (see _options.py)
        self.tweet_headers = {**JSON, "Authorization": f"Bearer {token}"} if token else JSON
        self.fire = self.environment.events.request.fire

    @task
    def step(self) -> None:
        state = CONTROLLER
        schedule = state.schedule
        operation, user, count = state.mix.next()
        if operation == TWEET:
            method, name, path, headers = "POST", TWEET_NAME, self.tweets_path, self.tweet_headers
            body = TWEET_BODIES[user & 7] % user
        else:
            method, name, path, headers = "GET", READ_NAME, f"{self.prefix}/timeline/{user}", None
            body = None
        if schedule is None:
            start = perf_counter()
        else:
            # Open loop. A free user sleeps until its slot is due; the event loop wakes it up
            # to ~1 ms late (libev's epoll timeouts are whole milliseconds), which is the
            # load generator's slop, not the app's: latency counts from the send. A slot
            # claimed when already due waited for a free user (every user was busy with
            # the app): latency counts from the due time, so the waiting shows.
            due = schedule.claim()
            start = perf_counter()
            if due > start:
                gevent.sleep(due - start)
                # Locust lets a stopping user finish its task (--stop-timeout), and a free user
                # holds its slot up to users/rate seconds ahead: a slot due after the stop is
                # past the run's end and would inflate the achieved rate. One due before the
                # stop is the run's though its user woke after it: Locust's stop() can hold the
                # event loop for tens of ms before it fires test_stopping (~30 ms measured).
                if schedule.stopped is not None and due > schedule.stopped:
                    return
                start = perf_counter()
                if start - due > OVERSLEPT:
                    schedule.overslept(start - due)
            else:
                schedule.behind(start - due)
                start = due
        exception = None
        try:
            response = self.http.request(method, path, body=body, headers=headers)
            content = response.read()
            status = response.status_code
            if not 200 <= status < 300:
                exception = HttpStatus(f"{status} {content[:200].decode(errors='replace')}")
        except FAILURES as error:
            status, content, exception = 0, b"", error
        latency = perf_counter() - start
        state.counts[operation] += 1
        if exception is not None:
            state.errors += 1
        if schedule is not None:
            schedule.completed += 1
        self.fire(
            request_type=method,
            name=name,
            response_time=latency * 1000,
            response_length=len(content),
            exception=exception,
            context=NO_CONTEXT,
        )
        if state.samples is not None:
            state.samples.add((state.wall_offset + start, operation, status, int(latency * 1e6), count))


assert READ == 0 and TWEET == 1  # state.counts and the samples index by operation
