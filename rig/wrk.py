"""Closed-loop HTTP load with wrk: a fixed number of connections, each sending its next
request when the last one is answered, from a seeded Lua script that picks a random reader
per request. wrk's `done` hook prints the run's totals and latency percentiles as one
JSON line, so nothing is scraped from its human-readable report.
"""

import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rig.processes import pinned

NO_WRK = (
    "wrk not found: run scripts/ensure-wrk (as root it installs Debian's package), or install "
    "it yourself: apt-get install wrk / brew install wrk"
)
MARK = "WRK-RESULT "
DONE = (
    """
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format('%s{"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,'
        .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
        .. '"p50_us":%d,"p99_us":%d}\\n', '"""
    + MARK
    + """', summary.requests, summary.duration,
        summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
"""
)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    load_cpu: float  # wrk's CPU seconds per wall second: near 1 would mean it is the bottleneck

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def bytes_per_response(self) -> float:
        return self.bytes / max(self.requests, 1)


def require_wrk() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit(NO_WRK)
    return binary


def version() -> str:
    finished = subprocess.run([require_wrk(), "--version"], check=False, capture_output=True, text=True)
    return (finished.stdout or finished.stderr).splitlines()[0].split(" Copyright")[0]


def write_script(path: Path, readers: list[int], limit: int, seed: int) -> Path:
    """A request script choosing among `readers` with a seed, so every design sees the same
    sequence of readers in a round."""
    table = ",".join(map(str, readers))
    path.write_text(
        f"local readers = {{{table}}}\n"
        f"math.randomseed({seed})\n"
        "request = function()\n"
        f'    return wrk.format("GET", "/timeline/" .. readers[math.random(#readers)] '
        f'.. "?limit={limit}")\n'
        "end\n" + DONE
    )
    return path


def run(url: str, script: Path, seconds: float, connections: int, cpus: tuple[int, ...]) -> WrkResult:
    command = pinned(
        [
            require_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        cpus,
    )
    before, began = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    finished = subprocess.run(command, check=False, capture_output=True, text=True, timeout=seconds + 60)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - began
    lines = [line for line in finished.stdout.splitlines() if line.startswith(MARK)]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr or finished.stdout}")
    totals = json.loads(lines[-1].removeprefix(MARK))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(
        requests=totals["requests"],
        seconds=totals["duration_us"] / 1e6,
        bytes=totals["bytes"],
        non_2xx=totals["non_2xx"],
        socket_errors=sum(totals[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        p50_ms=totals["p50_us"] / 1000,
        p99_ms=totals["p99_us"] / 1000,
        load_cpu=cpu / wall,
    )
