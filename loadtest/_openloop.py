"""Open loop (--arrival-rate R): requests arrive at a constant total rate whatever the
response times, and a request that had to wait for the load generator counts that wait.

Locust on its own is a closed loop: a user sends its next request when the last one
returns, so a slow server gets fewer requests and the waiting that real clients would have
done never shows (coordinated omission). Here request k of the run is due at t0 + k/R.
With W processes, process i owns the slots i, i+W, i+2W, ... (its own t0: no clock is
shared between processes). Within a process the users share one schedule: a user that is
free claims the next unclaimed slot, sleeps until it is due and sends; when every user is
busy, the next one to finish claims the oldest slot, already late, sends at once, and its
latency counts from the due time. Too few users for the rate show up as late slots and an
achieved rate under the target, both reported at the end. A user holds its slot while it
sleeps; when the run stops, a slot not yet due is dropped unsent, so that the achieved rate
counts only the run's own requests.

A sleeping user is woken up to ~1 ms after its due time (libev's epoll timeouts are whole
milliseconds). That slop is the generator's, not the app's, so a request sent by a user
that was free when it was due counts its latency from the send. Wake-ups much later than
that mean the generator itself is overloaded, and are reported as such.
"""

from time import perf_counter

LATE = 0.001  # a slot claimed over 1 ms after it was due waited for a free user
OVERSLEPT = 0.005  # a wake-up over 5 ms after the due time: the generator is busy


class Schedule:
    def __init__(self, rate: float, workers: int = 1, phase: int = 0):
        self.rate = rate
        self.interval = workers / rate  # between this process's slots
        self.offset = phase / rate
        self.t0: float | None = None  # perf_counter() of the first claim
        self.claimed = 0
        self.completed = 0
        self.late = 0
        self.max_late = 0.0
        self.late_wakeups = 0
        self.max_wakeup = 0.0
        self.stopped: float | None = None

    @property
    def process_rate(self) -> float:
        return 1 / self.interval

    def claim(self) -> float:
        """The due time (perf_counter) of the next slot, now owned by the caller."""
        if self.t0 is None:
            self.t0 = perf_counter()
        due = self.t0 + self.offset + self.claimed * self.interval
        self.claimed += 1
        return due

    def behind(self, seconds: float) -> None:
        """A slot claimed `seconds` after it was due: it waited for a free user."""
        if seconds > LATE:
            self.late += 1
            self.max_late = max(self.max_late, seconds)

    def overslept(self, seconds: float) -> None:
        """A user woken `seconds` after its slot was due (over OVERSLEPT)."""
        self.late_wakeups += 1
        self.max_wakeup = max(self.max_wakeup, seconds)

    def stop(self) -> None:
        if self.stopped is None:
            self.stopped = perf_counter()

    def report(self) -> dict:
        """This process's share: what was asked of it and what it achieved."""
        end = self.stopped or perf_counter()
        elapsed = end - self.t0 if self.t0 is not None else 0.0
        return {
            "target_rate": self.process_rate,
            "completed": self.completed,
            "elapsed_s": elapsed,
            "achieved_rate": self.completed / elapsed if elapsed > 0 else 0.0,
            "late": self.late,
            "max_late_ms": self.max_late * 1000,
            "late_wakeups": self.late_wakeups,
            "max_wakeup_ms": self.max_wakeup * 1000,
        }


def combine(target_rate: float, reports: list[dict]) -> dict:
    """The run's figures from the processes' reports: achieved rates add up."""

    def total(key):
        return sum(report[key] for report in reports)

    def most(key):
        return max((report[key] for report in reports), default=0.0)

    achieved = total("achieved_rate")
    return {
        "target_rate": target_rate,
        "achieved_rate": achieved,
        "achieved_share": achieved / target_rate if target_rate else 0.0,
        "completed": total("completed"),
        "processes": len(reports),
        "elapsed_s": most("elapsed_s"),
        "late": total("late"),
        "max_late_ms": most("max_late_ms"),
        "late_wakeups": total("late_wakeups"),
        "max_wakeup_ms": most("max_wakeup_ms"),
    }


def summary(combined: dict, users: int | None = None) -> tuple[str, list[str]]:
    """The line to print, and warnings: the target missed by over 5%, an overloaded generator."""
    line = (
        f"open loop: target {combined['target_rate']:.1f} req/s, achieved "
        f"{combined['achieved_rate']:.1f} req/s ({combined['achieved_share']:.1%}); "
        f"{combined['completed']} requests in {combined['elapsed_s']:.2f} s over "
        f"{combined['processes']} process(es); {combined['late']} waited over 1 ms for a free "
        f"user (at most {combined['max_late_ms']:.1f} ms); {combined['late_wakeups']} woke over "
        f"{OVERSLEPT * 1000:.0f} ms late (at most {combined['max_wakeup_ms']:.1f} ms)"
    )
    warnings = []
    if combined["achieved_share"] < 0.95:
        warnings.append(
            f"open loop achieved only {combined['achieved_share']:.1%} of the target rate: too few "
            f"users for the response times ({'' if users is None else f'{users} users, '}each with "
            f"one request in flight; try more with -u), or the load generator is saturated"
        )
    if combined["late_wakeups"] > 0.01 * combined["completed"]:
        warnings.append(
            f"{combined['late_wakeups']} requests went out over {OVERSLEPT * 1000:.0f} ms after they "
            f"were due though a user was free: the load generator is short of CPU (busy, or sharing "
            f"its core; try --processes), and those requests' latencies leave the delay out"
        )
    return line, warnings
