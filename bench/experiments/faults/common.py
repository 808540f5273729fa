"""What the fault scenarios share beyond the process harness: clients that keep every
status (a connection error included), the CSV of raw records, and the printed report."""

import os

import httpx

from rig.processes import Cpus

UNPINNED = Cpus()  # tests: the processes share every CPU


def writing_client(url: str, timeout: float = 30) -> httpx.Client:
    """For calls that write: an app started with API_TOKEN (inherited from this environment,
    as the load suite takes it) wants it on every write."""
    token = os.environ.get("API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=timeout, headers=headers)


def status_of(call) -> tuple[int, httpx.Response | None]:
    """call()'s status and response; status 0 when no answer came."""
    try:
        response = call()
    except httpx.TransportError:
        return 0, None  # no answer: the app dropped the connection or is not there
    return response.status_code, response


def report(result: dict, figures: tuple[str, ...]) -> str:
    """The result of one scenario on one app, as printed: its figures, then the checks."""
    lines = [f"{result['scenario']} {result['approach']}:"]
    lines += [f"  {name}: {result[name]}" for name in figures]
    if "tweets" in result:
        lines.append("  tweets: " + ", ".join(f"{k} {v}" for k, v in result["tweets"].items()))
    t = result["timelines"]
    lines.append(
        f"  home timelines vs join: {t['users']} users, {t['pages']} pages, {t['missing']} missing, "
        f"{t['extra']} extra, {t['duplicates']} twice, {t['misordered']} misordered, "
        f"{t['failed']} failed"
    )
    stats = result["app_stats"]
    lines.append(
        f"  /stats: fanout_writes {stats.get('fanout_writes')}, fanout_repeated_deliveries "
        f"{stats.get('fanout_repeated_deliveries')}, cache {stats.get('cache')}"
    )
    lines.append("  problems: " + ("none" if not result["problems"] else "; ".join(result["problems"])))
    return "\n".join(lines)
