"""Loaded into Locust next to the suite (`-f loadtest/locustfile.py,demo/latency_feed.py`):
every request's latency, as the suite reports it to Locust (from the due time in open
loop), appended to --live-feed and flushed once a second for the demo to tail.

The suite's own --samples-csv is written a few thousand rows at a time, minutes apart at
the demo's rate; this file is the same figures, in time for a live view.

    time,operation,latency_ms,ok
    1763722161.123,read,1.843,1
"""

import time

import gevent
from locust import events

READ_NAME = "/timeline/[id]"  # the suite's name for a read (loadtest/locustfile.py)


@events.init_command_line_parser.add_listener
def add_option(parser) -> None:
    parser.add_argument(
        "--live-feed",
        default="",
        metavar="PATH",
        help="the demo's live view: every request's latency to PATH, flushed each second",
    )


@events.init.add_listener
def open_feed(environment, **_) -> None:
    path = environment.parsed_options.live_feed
    if not path:
        return
    # Open for the process's life: closed when Locust quits.
    feed = open(path, "a", encoding="ascii", buffering=1 << 16)  # noqa: SIM115

    def write(name: str, response_time: float, exception=None, **_) -> None:
        operation = "read" if name == READ_NAME else "tweet"
        feed.write(f"{time.time():.3f},{operation},{response_time:.3f},{int(exception is None)}\n")

    def flush_each_second() -> None:
        while not feed.closed:
            feed.flush()
            gevent.sleep(1)

    environment.events.request.add_listener(write)
    environment.events.quitting.add_listener(lambda **_: feed.close())
    gevent.spawn(flush_each_second)
