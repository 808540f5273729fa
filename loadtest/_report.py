"""The end of a run: the app's own view (/stats: fanout backlog and lag) next to the
samples, and one line each for a person watching."""

import json


def stats_line(stats: dict) -> str:
    if "fanout_backlog" not in stats:
        return f"app /stats unavailable: {stats.get('error', stats)}"
    parts = [f"app /stats: {stats.get('approach', '?')}", f"fanout_backlog={stats.get('fanout_backlog')}"]
    lag = stats.get("fanout_lag_ms") or {}
    if lag.get("count"):
        parts.append(
            "fanout lag ms p50={} p99={} max={} (last {})".format(
                lag.get("p50"), lag.get("p99"), lag.get("max"), lag["count"]
            )
        )
    for key in ("tweets", "tweets_fanned_out", "fanout_writes", "celebrities"):
        if key in stats:
            parts.append(f"{key}={stats[key]}")
    cache = stats.get("cache") or {}
    if any(cache.values()):
        parts.append("cache " + " ".join(f"{name}={value}" for name, value in cache.items() if value))
    return ", ".join(parts)


def operations_line(counts: dict, elapsed: float) -> str:
    reads, tweets, errors = counts["read"], counts["tweet"], counts["errors"]
    ratio = f"{reads / tweets:.1f}" if tweets else "inf"
    rate = f", {(reads + tweets) / elapsed:.0f} req/s" if elapsed > 0 else ""
    return f"operations: {reads} reads, {tweets} tweets (reads per tweet {ratio}), {errors} errors{rate}"


def write_json(path: str, stats: dict, loadtest: dict) -> None:
    """The app's /stats as it answered, plus what the suite knows under "loadtest"."""
    with open(path, "w") as file:
        json.dump({**stats, "loadtest": loadtest}, file, indent=2)
        file.write("\n")
