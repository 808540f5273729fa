"""What `python -m bench reads` reports: one row per design over the rounds (req/s median,
min, max; latency; the same-round ratios to the ceiling and to fanout), as reads.csv and a
printed table, and every round's raw figures as rounds.csv."""

import statistics
from dataclasses import dataclass

from rig.wrk import WrkResult

DESIGNS = ("ceiling", "join", "fanout", "hybrid")
# The figures: (design, divided by, goal).
FIGURES = (("fanout", "ceiling", 0.5), ("hybrid", "fanout", 0.9), ("join", "ceiling", None))


@dataclass(frozen=True)
class Measurement:
    round: int
    design: str
    wrk: WrkResult
    cache_hits: int | None  # hits the app counted during the measured seconds (fanout designs)
    app_cpu: float  # CPU seconds the app used while wrk measured
    redis_cpu: float  # and its redis-server (idle for join and the ceiling)
    load_average: float  # the machine's, over the last minute: others' work shows here

    @property
    def server_cpu(self) -> float:
        return self.app_cpu + self.redis_cpu

    @property
    def server_share(self) -> float:
        """How much of its pinned CPU the server got; the rest went to other work."""
        return self.server_cpu / self.wrk.seconds

    @property
    def rate_per_cpu(self) -> float:
        """Answers per CPU-second of the server: what the rate would be with the CPU to itself,
        much less disturbed than req/s by other processes sharing the machine."""
        return self.wrk.requests / self.server_cpu

    def row(self) -> dict:
        w = self.wrk
        return {
            "round": self.round,
            "design": self.design,
            "rate": round(w.rate, 1),
            "requests": w.requests,
            "seconds": round(w.seconds, 3),
            "p50_ms": w.p50_ms,
            "p99_ms": w.p99_ms,
            "bytes_per_response": round(w.bytes_per_response, 1),
            "non_2xx": w.non_2xx,
            "socket_errors": w.socket_errors,
            "load_cpu": round(w.load_cpu, 3),
            "cache_hits": "" if self.cache_hits is None else self.cache_hits,
            "app_cpu_seconds": round(self.app_cpu, 2),
            "redis_cpu_seconds": round(self.redis_cpu, 2),
            "server_share": round(self.server_share, 3),
            "app_us_per_request": round(self.app_cpu / self.wrk.requests * 1e6, 1),
            "redis_us_per_request": round(self.redis_cpu / self.wrk.requests * 1e6, 1),
            "rate_per_cpu": round(self.rate_per_cpu, 1),
            "load_average_1m": round(self.load_average, 2),
        }


def same_round_ratios(
    measurements: list[Measurement], design: str, base: str, rate=lambda m: m.wrk.rate
) -> list[float]:
    rates = {(m.round, m.design): rate(m) for m in measurements}
    return [rates[r, design] / rates[r, base] for r in sorted({m.round for m in measurements})]


def by_cpu(m: Measurement) -> float:
    return m.rate_per_cpu


def spread(prefix: str, values: list[float], digits: int) -> dict:
    return {
        f"{prefix}_median": round(statistics.median(values), digits),
        f"{prefix}_min": round(min(values), digits),
        f"{prefix}_max": round(max(values), digits),
    }


def summary(measurements: list[Measurement]) -> list[dict]:
    return [design_row(measurements, design) for design in DESIGNS]


def design_row(measurements: list[Measurement], design: str) -> dict:
    mine = [m for m in measurements if m.design == design]
    runs = [m.wrk for m in mine]
    return {
        "design": design,
        "rounds": len(runs),
        **spread("rate", [w.rate for w in runs], 1),
        "p50_ms": statistics.median(w.p50_ms for w in runs),
        "p99_ms": statistics.median(w.p99_ms for w in runs),
        "bytes_per_response": round(statistics.median(w.bytes_per_response for w in runs), 1),
        "load_cpu": round(max(w.load_cpu for w in runs), 3),
        **spread("vs_ceiling", same_round_ratios(measurements, design, "ceiling"), 3),
        **spread("vs_fanout", same_round_ratios(measurements, design, "fanout"), 3),
        "server_share_min": round(min(m.server_share for m in mine), 3),
        "app_us_per_request": round(statistics.median(m.app_cpu * 1e6 / m.wrk.requests for m in mine), 1),
        "redis_us_per_request": round(statistics.median(m.redis_cpu * 1e6 / m.wrk.requests for m in mine), 1),
        **spread("rate_per_cpu", [m.rate_per_cpu for m in mine], 1),
        **spread("cpu_vs_ceiling", same_round_ratios(measurements, design, "ceiling", by_cpu), 3),
        **spread("cpu_vs_fanout", same_round_ratios(measurements, design, "fanout", by_cpu), 3),
    }


def table(rows: list[dict]) -> str:
    header = (
        f"{'design':<8} {'req/s median (min-max)':>26} {'p50 ms':>7} {'p99 ms':>7} {'bytes':>6} "
        f"{'÷ceiling (min-max)':>19} {'÷fanout (min-max)':>19} {'req/CPU-s median':>17} "
        f"{'÷ceiling':>19} {'÷fanout':>19}"
    )
    lines = [header]
    for r in rows:
        rate = f"{r['rate_median']:,.0f} ({r['rate_min']:,.0f}-{r['rate_max']:,.0f})"
        lines.append(
            f"{r['design']:<8} {rate:>26} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
            f"{r['bytes_per_response']:>6.0f} {ratio_text(r, 'vs_ceiling'):>19} "
            f"{ratio_text(r, 'vs_fanout'):>19} {r['rate_per_cpu_median']:>17,.0f} "
            f"{ratio_text(r, 'cpu_vs_ceiling'):>19} {ratio_text(r, 'cpu_vs_fanout'):>19}"
        )
    busiest = max(r["load_cpu"] for r in rows)
    starved = min(r["server_share_min"] for r in rows)
    lines.append(
        f"wrk used at most {busiest:.0%} of its CPU; the server got at least {starved:.0%} of its "
        "own (req/CPU-s: answers per CPU-second of the app and its redis-server)"
    )
    lines += [
        f"{r['design']:<8} CPU per answer: app {r['app_us_per_request']:,.0f} µs, "
        f"redis-server {r['redis_us_per_request']:,.0f} µs"
        for r in rows
    ]
    return "\n".join(lines)


def ratio_text(row: dict, prefix: str) -> str:
    return f"{row[prefix + '_median']:.2f} ({row[prefix + '_min']:.2f}-{row[prefix + '_max']:.2f})"


def figures(rows: list[dict]) -> str:
    by_design = {r["design"]: r for r in rows}
    lines = []
    for design, base, goal in FIGURES:
        r = by_design[design]
        goal_text = f"   goal >= {goal}" if goal else ""
        lines.append(
            f"{design} ÷ {base}: req/s {ratio_text(r, 'vs_' + base)}, "
            f"per server CPU-second {ratio_text(r, 'cpu_vs_' + base)}{goal_text}"
        )
    return "\n".join(lines)
