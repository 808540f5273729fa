"""Every request, at microsecond resolution (Locust's own tables round to milliseconds):

    time,operation,status,latency_us,count
    1763722161.123456,read,200,1843,20

time        unix seconds when the latency interval starts: when the request was sent, or,
            in open loop, when it was due if it had to wait for a free user
operation   read (GET /timeline/{id}) or tweet (POST /tweets)
status      the HTTP status, 0 for a connection error or timeout
latency_us  integer microseconds from that start to the whole response read
count       a tweet: its author's followers; a read: the reader's followees (at the start
            of the run, from the population)

Rows are buffered and formatted a few thousand at a time. A local run writes the file
itself; in a distributed run (--processes N, or --master/--worker) each worker sends its
formatted chunks to the master, which appends them to the one file: one CSV per run
whatever the topology, rows in arrival order (sort by time if order matters).
"""

HEADER = "time,operation,status,latency_us,count\n"
OPERATIONS = ("read", "tweet")
ROW = "%.6f,%s,%d,%d,%d\n"


class SampleBuffer:
    """Collects rows; hands `sink` a chunk of CSV text every `size` rows and on flush()."""

    def __init__(self, sink, size: int = 4096):
        self.sink = sink
        self.size = size
        self.rows: list[tuple] = []

    def add(self, row: tuple) -> None:
        """row: (time, operation index, status, latency_us, count)."""
        rows = self.rows
        rows.append(row)
        if len(rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            self.sink(format_rows(rows))


def format_rows(rows: list[tuple]) -> str:
    return "".join(
        [
            ROW % (when, OPERATIONS[operation], status, latency, count)
            for when, operation, status, latency, count in rows
        ]
    )


class CsvFile:
    def __init__(self, path: str):
        self.path = path
        # Open for the whole run, closed by close(): no with-block spans a Locust run.
        self.file = open(path, "w", encoding="ascii", buffering=1 << 20)  # noqa: SIM115
        self.file.write(HEADER)

    def write(self, text: str) -> None:
        self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def stats_path(samples_csv: str) -> str:
    """Where the app's /stats go: run.csv -> run.stats.json (any other name + .stats.json)."""
    base = samples_csv.removesuffix(".csv")
    return base + ".stats.json"
