"""Named scales: a seeded graph and history, the same every time a scale is named.

| scale   | users   | followees | Zipf | tweets/author | tweets | for                          |
|---------|---------|-----------|------|---------------|--------|------------------------------|
| tiny    |   1,000 | 75        | 1.1  | 10            |    11k | tests and CI: loads in ~1 s  |
| small   |   5,000 | 75        | 1.1  | 20            |    99k | a quick look: ~6 s           |
| default |  30,000 | 75        | 1.1  | 50            |   1.5M | the published run: < 1 min   |
| large   | 100,000 | 75        | 1.1  | 100           |   9.9M | for the patient              |

75 followees is DDIA's mean. The Zipf exponent 1.1 gives a follower tail of density about
k^-1.9 (Twitter's measured tail is about k^-2): at `default` the median account has 15
followers and the most followed has 28,945 of the 30,000 users.

Why `default` is 30,000 users: it must be well over CELEBRITY_THRESHOLD (10,000) for
celebrities to exist at all (22 accounts cross it), and the fanout apps cache every user's
timeline, at TIMELINE_LENGTH 800 nearly all of them full (23M entries). As Redis lists of
ids that is about 16 bytes an entry with the bodies, 350 MiB for approach2
(`python -m bench cache-memory --default-too`), loaded in under a minute. `large` is the
patient's scale: its SQLite file alone is 1.7 GB. 50 tweets per
author (1.5M tweets) makes the join read 75 followees' histories per page, where the
designs' read costs part.
"""

from dataclasses import dataclass

from datagen.graph import Graph, generate_graph
from datagen.history import History, generate_history


@dataclass(frozen=True)
class Scale:
    name: str
    users: int
    mean_followees: float
    exponent: float  # Zipf exponent of followee popularity
    mean_tweets: float  # per author: the history's depth
    seed: int

    def generate(self) -> tuple[Graph, History]:
        graph = generate_graph(self.users, self.mean_followees, self.exponent, self.seed)
        return graph, generate_history(graph, self.mean_tweets, self.seed)


SCALES = {
    scale.name: scale
    for scale in (
        Scale("tiny", 1_000, 75, 1.1, 10, seed=1),
        Scale("small", 5_000, 75, 1.1, 20, seed=2),
        Scale("default", 30_000, 75, 1.1, 50, seed=3),
        Scale("large", 100_000, 75, 1.1, 100, seed=4),
    )
}
