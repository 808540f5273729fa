"""Where a read's CPU goes, by part of the stack: py-spy's collapsed stacks (`--format raw`,
one line per distinct stack, `frame;frame;... count`, root first) sorted into the parts of
issue 19, and the parts' shares turned into µs of a read with the app's CPU per answer.

A sample belongs to the innermost frame of its stack that names a part, so that the cost
of a library is what runs inside it, whoever called it. asyncio's own frames (tasks,
timeouts, locks, wait_for) are skipped over, as the event loop's machinery called on a
library's behalf: a `wait_for` that redis-py starts is redis-py's cost, not the loop's.
"""

import csv
import gzip
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# The event loop's entry: what is above it in a stack is the loop's own call, not a callback's.
LOOP_ENTRY = "/asyncio/runners.py"
# Frames that belong to whoever called them (py-spy names files from their package's root).
TRANSPARENT = (
    "/asyncio/",
    "/contextlib.py",
    "/functools.py",
    "/typing.py",
    "/concurrent/futures/",
    "/threading.py",
    "/_weakrefset.py",
)
# Threads waiting, which py-spy does not take for idle: aiosqlite's worker blocked on its
# queue (aiosqlite 0.22.1, requirements.txt), and an idle executor thread (Python 3.11).
WAITING = ("_connection_worker_thread (aiosqlite/core.py:59)", "_worker (concurrent/futures/thread.py:81)")
JSON_FUNCTIONS = ("tweet_list", "json_response", "problem", "tweet_json")
JSON = "JSON (orjson, page assembly)"
REDIS_CLIENT = "Redis client (redis-py, its socket calls)"
# timelines/cache.py's subclasses of redis-py's classes do redis-py's job.
REDIS_CLIENT_CLASSES = ("HiredisPackedConnection.", "CacheCluster.")
# (part, files it runs in), innermost match wins; a file in two parts goes to the first.
PARTS = (
    ("HTTP parse and write (uvicorn/httptools)", ("/uvicorn/", "/httptools/", "/h11/")),
    (
        "telemetry (FastAPI's OpenTelemetry hooks) and logging",
        (
            "/fastapi/telemetry/",
            "/opentelemetry/",
            "/trace/",
            "/metrics/",
            "/_logs/",
            "/context/",
            "/logging/",
        ),
    ),
    (
        "routing and validation (FastAPI/Starlette/pydantic)",
        ("/fastapi/", "/starlette/", "/pydantic", "/anyio/"),
    ),
    (REDIS_CLIENT, ("/redis/",)),
    ("database (aiosqlite, SQLite's query)", ("/aiosqlite/", "/sqlite3/", "/timelines/db.py", "/psycopg")),
    (JSON, ("/json/", "/timelines/encoding.py")),
    ("middleware (timelines.http)", ("/timelines/http.py",)),
    (
        "the app's own code",
        ("/approach1.py", "/approach2.py", "/approach3_hybrid.py", "/timelines/", "/bench/"),
    ),
)
LOOP = "event loop (uvloop, asyncio) and the rest"
THREADS = "other threads: SQLite's query in aiosqlite's workers (measured)"
REDIS_SERVER = "Redis server CPU (Lua, commands; measured)"
ORDER = (*(name for name, _ in PARTS), LOOP, THREADS, REDIS_SERVER)
THREAD_ROOT = "Thread._bootstrap (threading.py:"  # the root frame of a thread Python started


def part_of_frame(frame: str) -> str | None:
    match = FRAME.match(frame)
    if match is None:
        return None
    file, function = "/" + match["file"], match["function"]
    if any(marker in file for marker in TRANSPARENT):
        return None
    if file.endswith("/timelines/http.py") and function in JSON_FUNCTIONS:
        return JSON
    if file.endswith("/timelines/cache.py") and function.startswith(REDIS_CLIENT_CLASSES):
        return REDIS_CLIENT
    return next((name for name, files in PARTS if any(marker in file for marker in files)), None)


def callbacks(frames: list[str]) -> list[str]:
    """The frames below the event loop's entry (all of them in a thread of its own)."""
    entries = [i for i, frame in enumerate(frames) if f"({LOOP_ENTRY[1:]}:" in frame]
    return frames[entries[-1] + 1 :] if entries else frames


def part_of_stack(frames: list[str]) -> str | None:
    """The part of the innermost frame that has one; the loop's when none has; None for a
    thread other than the event loop's, whose CPU is measured instead of sampled."""
    if frames[-1] in WAITING or frames[0].startswith(THREAD_ROOT):
        return None
    return next((part for frame in reversed(callbacks(frames)) if (part := part_of_frame(frame))), LOOP)


def samples_by_part(collapsed: Path) -> Counter[str]:
    """py-spy's raw output, gzipped: `frame;frame;...;leaf count` per line."""
    parts: Counter[str] = Counter()
    with gzip.open(collapsed, "rt") as lines:
        text = lines.read()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and (part := part_of_stack(stack.split(";"))):
            parts[part] += int(count)
    return parts


@dataclass(frozen=True)
class Profile:
    """One design's read: what py-spy saw of the app's event loop thread, and the CPU a read
    cost, unprofiled, on that thread, on the app's other threads, and in redis-server."""

    design: str
    samples: Counter[str]  # of the event loop's thread
    loop_us: float
    threads_us: float
    redis_us: float

    @property
    def app_us(self) -> float:
        return self.loop_us + self.threads_us

    def micros(self) -> dict[str, float]:
        total = sum(self.samples.values()) or 1
        sampled = {part: self.loop_us * self.samples[part] / total for part in ORDER[:-2]}
        return {**sampled, THREADS: max(0.0, self.threads_us), REDIS_SERVER: self.redis_us}

    def rows(self, label: str) -> list[dict]:
        return [
            {
                "label": label,
                "design": self.design,
                "part": part,
                "us_per_read": round(us, 1),
                "samples": self.samples.get(part, ""),
            }
            for part, us in self.micros().items()
        ] + [
            {
                "label": label,
                "design": self.design,
                "part": "total",
                "us_per_read": round(self.app_us + self.redis_us, 1),
                "samples": sum(self.samples.values()),
            }
        ]


def measured(rows: list[dict], design: str) -> tuple[float, float, float]:
    """(event loop, other threads, redis-server) µs per read, as a parts.csv recorded them."""
    mine = {r["part"]: float(r["us_per_read"]) for r in rows if r["design"] == design}
    threads, redis = mine[THREADS], mine[REDIS_SERVER]
    return mine["total"] - threads - redis, threads, redis


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def table(rows: list[dict]) -> str:
    """µs of a read by part, a column per (label, design) in the order they come."""
    columns = list(dict.fromkeys((r["label"], r["design"]) for r in rows))
    cell = {(r["label"], r["design"], r["part"]): float(r["us_per_read"]) for r in rows}
    width = max(len(part) for part in ORDER)
    lines = [
        f"{'µs of CPU per read':<{width}} " + " ".join(f"{design:>9}" for _, design in columns),
        f"{'':<{width}} " + " ".join(f"{label:>9}" for label, _ in columns),
    ]
    for part in (*ORDER, "total"):
        values = " ".join(f"{cell.get((label, design, part), math.nan):>9.0f}" for label, design in columns)
        lines.append(f"{part:<{width}} {values}")
    return "\n".join(lines)
