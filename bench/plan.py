"""What `make bench` measures at each scale: rates, phase lengths, the sweeps.

Every figure here is a choice a reader may want to change, so it lives in one place and
is copied into the run's meta.json. The rates are total requests/s, reads and tweets in
DDIA's ratio (300k reads/s : 4.6k tweets/s, about 65:1).

- fixed_rate: the open-loop rate of experiment 1, the same for every approach, chosen to
  leave join-on-read (the slowest reader) some headroom on 2 cores at this scale: the
  experiment compares latencies at equal load, not capacities.
- steps: the offered rates of the step load (experiment 6), each for step_seconds; an
  approach stops once it fails a step (read p99 over slo_ms, errors, or under 95 % of the
  offered rate achieved) twice in a row, so one noisy step does not end the search.
- The `fixed` phase and the step load draw authors by activity alone, so a tweet reaches
  ~75 followers on average, as in DDIA. The `celebrities` phase (experiments 2 and 3) and
  the threshold sweep draw `celebrity_bias` of the authors by follower rank instead
  (loadtest --author-bias), so that the most-followed accounts tweet within a short run.
- thresholds: CELEBRITY_THRESHOLD values of the hybrid sweep (experiment 5); the top one
  is over the most-followed account, where the hybrid is plain fanout.
- depth_users, depths: the history-depth sweep (experiment 4), on a graph of its own with
  the same shape: tweets per author, each depth seeded and measured closed-loop with
  depth_clients clients, join-on-read against fanout (no celebrities at that size, so
  the hybrid would be fanout).
"""

from dataclasses import asdict, dataclass

from datagen.scales import SCALES, Scale

COLOURS = {"join": "#1f77b4", "fanout": "#d62728", "hybrid": "#2ca02c"}


@dataclass(frozen=True)
class Plan:
    scale: str
    fixed_rate: float
    warmup_seconds: float
    fixed_seconds: float
    steps: tuple[float, ...]
    step_seconds: float
    slo_ms: float
    celebrity_bias: float
    thresholds: tuple[int, ...]
    sweep_seconds: float
    depth_users: int
    depths: tuple[float, ...]
    depth_seconds: float
    depth_clients: int = 4
    read_ratio: float = 65
    timeline_length: int = 800
    celebrity_threshold: int = 10_000

    @property
    def dataset(self) -> Scale:
        return SCALES[self.scale]

    def depth_scale(self, depth: float) -> Scale:
        base = self.dataset
        return Scale(f"{base.name}-depth{depth:g}", self.depth_users, base.mean_followees,
                     base.exponent, depth, seed=base.seed + 100)

    def as_json(self) -> dict:
        return {**asdict(self), "dataset": asdict(self.dataset)}


def geometric(start: float, stop: float, factor: float) -> tuple[float, ...]:
    rates = [start]
    while rates[-1] * factor <= stop:
        rates.append(round(rates[-1] * factor))
    return tuple(rates)


PLANS = {plan.scale: plan for plan in (
    # CI's smoke run: every experiment once, small, in under 2 minutes.
    Plan("tiny", fixed_rate=300, warmup_seconds=2, fixed_seconds=5, steps=(300, 1200),
         step_seconds=3, slo_ms=50, celebrity_bias=0.5, thresholds=(100,), sweep_seconds=4,
         depth_users=1_000, depths=(5, 40), depth_seconds=3, celebrity_threshold=300),
    Plan("small", fixed_rate=400, warmup_seconds=5, fixed_seconds=20, steps=geometric(100, 8000, 2),
         step_seconds=6, slo_ms=50, celebrity_bias=0.5, thresholds=(600, 10_000), sweep_seconds=10,
         depth_users=2_000, depths=(10, 40, 160), depth_seconds=5, celebrity_threshold=2_000),
    Plan("default", fixed_rate=500, warmup_seconds=10, fixed_seconds=40, steps=geometric(100, 8000, 1.5),
         step_seconds=8, slo_ms=50, celebrity_bias=0.5, thresholds=(1_000, 3_000, 30_000), sweep_seconds=20,
         depth_users=5_000, depths=(10, 40, 160), depth_seconds=6),
)}
