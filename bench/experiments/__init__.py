"""Every experiment, one module (or package) each, listed once here: `python -m bench --list`.

BENCH: what `make bench` runs (bench/run.py), in this order, each module with an `estimate`
(seconds, the run's ETA) and a `run`. A PER_DESIGN one runs on each design's app after its
warm-up; the others once, after them.
STUDIES: studies of their own, none of them in make bench: `python -m bench STUDY [options]`
runs the module's main(argv), with its own options and results folder.
"""

BENCH = {
    "latency": "open loop at the plan's rate, DDIA's mix and celebrities tweeting: latency, fanout lag",
    "cpu": "tweets only: the server side's CPU per tweet, its fanout included",
    "capacity": "the highest open-loop rate held within the SLO, searched per mix",
    "sweep": "one author with 10^3..10^6 followers: POST, fanout lag, CPU; the hybrid's reads",
    "thresholds": "the hybrid at other CELEBRITY_THRESHOLDs (named in EXPERIMENT only)",
    "depths": "join and fanout on deeper histories, closed loop (named in EXPERIMENT only)",
}
STUDIES = {
    "reads": ("bench.experiments.reads", "cached reads against the stack serving a page from memory (wrk)"),
    "cache-memory": ("bench.experiments.cache_memory", "Redis bytes per cached entry; users per 4 GiB"),
    "fanout": ("bench.experiments.fanout", "one tweet to 1k..1M followers through the app's outbox worker"),
    "encodings": ("bench.experiments.encodings", "bytes per entry and Redis CPU per write of each encoding"),
    "page-encoding": ("bench.experiments.encodings.page", "three ways to answer a cached page, timed"),
    "soak": ("bench.experiments.soak", "one app under a steady load for a long time"),
    "faults": ("bench.experiments.faults.cli", "Redis killed under load, the app killed mid-fanout, writers"),
    "loadgen": ("bench.experiments.loadgen", "the load suite against an app that does nothing"),
    "profile": (
        "bench.experiments.profile",
        "where a cached read's CPU goes, per design: py-spy flame graphs",
    ),
    "read-overheads": (
        "bench.experiments.read_overheads",
        "each cut of the stack's cost, before against after",
    ),
    "pulls": ("bench.experiments.pulls", "Redis CPU per celebrity a hybrid read pulls (a slope)"),
}
