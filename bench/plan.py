"""What `make bench` measures at each scale: rates, phase lengths, the searches, the sweeps.

Every figure here is a choice a reader may want to change, so it lives in one place and
is copied into the run's meta.json. Rates are total requests/s, reads and tweets in DDIA's
ratio (300k reads/s : 4.6k tweets/s, about 65:1).

- experiments: what `make bench` runs unless EXPERIMENT names some (bench/experiments/__init__.py lists them).
- repeats: independent repeats of every measured figure (phases with their own seeds), each
  round of each design on an app of its own (bench/run.py).
- fixed_rate, fixed_seconds: the latency phases, `fixed` (DDIA's mix) and `celebrities` (half
  the authors drawn by follower rank, so the most-followed accounts tweet within a short
  phase), at one open-loop rate for every design: latencies at equal load, not capacities.
- tweet_rate, cpu_seconds: the tweets-only phase, whose CPU per tweet the cpu table uses.
- capacity_*: the capacity search (bench/experiments/capacity.py): steps of step_seconds, every
  search bracketing from capacity_start by capacity_factor, bisected to capacity_tolerance
  (highest missed / highest held); capacity_runs runs per design, mix and SLO rule.
- sweep_followers: the celebrity sweep's authors (bench/experiments/sweep.py), sweep_reps tweets each,
  sweep_reads reads per reader in the hybrid.
- thresholds, depths: the older sweeps (the hybrid's CELEBRITY_THRESHOLD, history depth),
  run only when named in EXPERIMENT at `default`: with capacity searched three times over
  they no longer fit the 30-minute budget.
"""

from dataclasses import asdict, dataclass

from bench.experiments import BENCH
from datagen.scales import SCALES, Scale

COLOURS = {"join": "#1f77b4", "fanout": "#d62728", "hybrid": "#2ca02c"}


EVERY_EXPERIMENT = tuple(BENCH)


@dataclass(frozen=True)
class Plan:
    scale: str
    experiments: tuple[str, ...]
    fixed_rate: float
    warmup_seconds: float
    fixed_seconds: float
    tweet_rate: float
    cpu_seconds: float
    capacity_start: float
    step_seconds: float
    capacity_factor: float
    capacity_tolerance: float
    sweep_followers: tuple[int, ...]
    slo_ms: float
    celebrity_bias: float
    thresholds: tuple[int, ...]
    sweep_seconds: float
    depth_users: int
    depths: tuple[float, ...]
    depth_seconds: float
    repeats: int = 3
    capacity_runs: int = 3
    sweep_reps: int = 3
    sweep_reads: int = 200
    depth_clients: int = 4
    read_ratio: float = 65
    timeline_length: int = 800
    celebrity_threshold: int = 10_000

    @property
    def dataset(self) -> Scale:
        return SCALES[self.scale]

    def depth_scale(self, depth: float) -> Scale:
        base = self.dataset
        return Scale(
            f"{base.name}-depth{depth:g}",
            self.depth_users,
            base.mean_followees,
            base.exponent,
            depth,
            seed=base.seed + 100,
        )

    def as_json(self) -> dict:
        return {**asdict(self), "dataset": asdict(self.dataset)}


PLANS = {
    plan.scale: plan
    for plan in (
        # CI's smoke run: every experiment, small and short, in under 2 minutes; its figures are
        # for checking the pipeline, not for reading. Every Locust run costs ~1.5 s beyond its
        # own length, so phases are few and 1 s long: no warmup, a capacity search bracketed in
        # strides of 4 (two steps a search when the first bracket holds), one search per mix
        # and rule, one history depth, tweets at
        # a rate high enough that the open loop's users do not wait seconds for their next slot.
        # The latency phases are 2 s: Locust's users start late into its -t, so a 1 s phase
        # measured 0.2-0.8 s, on a busy machine ~90 requests, often without one tweet in 65
        # (requests sent after the stop, no longer counted, used to pad it).
        Plan(
            "tiny",
            EVERY_EXPERIMENT,
            fixed_rate=300,
            warmup_seconds=0,
            fixed_seconds=2,
            tweet_rate=150,
            cpu_seconds=1,
            capacity_start=400,
            step_seconds=0,
            capacity_factor=4,
            capacity_tolerance=4,
            sweep_followers=(100, 1_000, 10_000),
            slo_ms=50,
            celebrity_bias=0.5,
            thresholds=(100,),
            sweep_seconds=1,
            depth_users=1_000,
            depths=(10,),
            depth_seconds=1,
            celebrity_threshold=300,
            repeats=2,
            capacity_runs=1,
            sweep_reps=2,
            sweep_reads=20,
        ),
        Plan(
            "small",
            ("latency", "cpu", "capacity", "sweep"),
            fixed_rate=300,
            warmup_seconds=5,
            fixed_seconds=8,
            tweet_rate=40,
            cpu_seconds=8,
            capacity_start=600,
            step_seconds=8,
            capacity_factor=2,
            capacity_tolerance=1.1,
            sweep_followers=(1_000, 10_000, 100_000),
            slo_ms=50,
            celebrity_bias=0.5,
            thresholds=(600, 10_000),
            sweep_seconds=10,
            depth_users=2_000,
            depths=(10, 40, 160),
            depth_seconds=5,
            celebrity_threshold=2_000,
            sweep_reads=100,
        ),
        # 3 designs x 2 mixes x 3 searches of >= 20 s steps take ~22 of the 30 minutes: every other
        # phase is kept short, and repeated instead of lengthened.
        Plan(
            "default",
            ("latency", "cpu", "capacity", "sweep"),
            fixed_rate=300,
            warmup_seconds=10,
            fixed_seconds=8,
            tweet_rate=40,
            cpu_seconds=6,
            capacity_start=600,
            step_seconds=20,
            capacity_factor=2,
            capacity_tolerance=1.05,
            sweep_followers=(1_000, 10_000, 100_000, 1_000_000),
            slo_ms=50,
            celebrity_bias=0.5,
            thresholds=(1_000, 3_000, 30_000),
            sweep_seconds=20,
            depth_users=5_000,
            depths=(10, 40, 160),
            depth_seconds=6,
        ),
    )
}
