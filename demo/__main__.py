"""python -m demo [--port 8089] [--rate 60] [--scale tiny] [--threshold N] [--work DIR]

Seeds a small dataset, starts a private redis-server, the three apps and one Locust per
app (the same open-loop rate on each, DDIA's 65 reads per tweet), and serves the live view
on http://127.0.0.1:PORT until Ctrl-C or SIGTERM, which stop everything it started.
"""

import argparse
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvicorn

from bench.plan import PLANS
from demo.server import Live, create_app
from demo.stack import Stack


def main(argv: list[str] | None = None) -> int:
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:5.1f} s] {line}", flush=True)

    args = parse(argv)
    if problem := port_taken(args.port):
        print(problem, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupt)  # uvicorn takes it over while it serves
    work = args.work or Path(tempfile.mkdtemp(prefix="timelines-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    say(f"logs and data in {work}" + ("" if args.work else " (removed at the end)"))
    stack = Stack(work, args.scale, args.threshold, args.rate, say)
    failed = 0
    try:
        stack.start()
        url = f"http://127.0.0.1:{args.port}"
        live = Live(stack, began, say, url)
        say(f"serving {url}: the first figures come within a few seconds")
        uvicorn.Server(
            uvicorn.Config(create_app(live), host="127.0.0.1", port=args.port, log_level="warning")
        ).run()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as error:  # a process that would not start: its log says why
        say(f"demo: {error}")
        failed = 1
    finally:
        # A second Ctrl-C must not leave half of the processes running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping the load, the apps and redis-server")
        stack.stop()
        if not args.work and not failed:
            shutil.rmtree(work, ignore_errors=True)
        say("stopped" if not failed else f"stopped; the logs are in {work}")
    return failed


def interrupt(*_) -> None:
    raise KeyboardInterrupt


def port_taken(port: int) -> str | None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return f"demo: port {port} is taken ({error.strerror}): choose another with --port N"
    return None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, default=8089, help="the live view's port (default %(default)s)")
    parser.add_argument(
        "--rate",
        type=float,
        default=60,
        metavar="PER_S",
        help="open-loop requests/s on each app (default %(default)s)",
    )
    # Not `default`: its caches take 2.8 GB of Redis per fanout app and a minute to load.
    parser.add_argument(
        "--scale",
        choices=("tiny", "small"),
        default="tiny",
        help="the seeded dataset (datagen/scales.py; default %(default)s)",
    )
    parser.add_argument(
        "--threshold",
        type=int,
        metavar="N",
        help="the hybrid's CELEBRITY_THRESHOLD (default: the bench's for the scale, 300 "
        "at tiny, so that the most-followed account is a celebrity)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help="keep the databases and logs here (default: a temporary folder, removed)",
    )
    args = parser.parse_args(argv)
    args.threshold = args.threshold or PLANS[args.scale].celebrity_threshold
    if not 1 <= args.port <= 65535:
        parser.error("--port must be between 1 and 65535")
    if not 0 < args.rate <= 2000:
        parser.error("--rate must be above 0 and at most 2000 requests/s per app")
    if args.threshold < 1:
        parser.error("--threshold must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
