"""One process's part in a load test, whatever Locust's topology:

  local   (plain `locust`)   finds or builds the population, draws and sends requests,
                             writes the samples CSV, reports at the end.
  master  (--master, or the parent of --processes N)  finds or builds the population once
                             and sends it to every worker with the worker's share of the
                             open-loop schedule; appends the workers' sample chunks to the
                             one CSV; at the end stops the workers itself and waits for
                             every one's last samples and report, then combines and reports.
  worker                     takes its setup from the master (the population from the
                             message, or from --database itself), sends requests, ships
                             its samples to the master, and its counters at the end.

The population is found before the run clock starts when the host is known at start-up
(headless runs): in Locust's `init` event, so that building a graph on an empty app does
not eat into --run-time. Otherwise (a host typed into the web UI) it happens in
`test_start` on the master or local runner, before any user is spawned.
"""

import logging
import sys
import time
from time import perf_counter

import gevent
import gevent.event
from locust.runners import MasterRunner, WorkerRunner

from loadtest import _bootstrap as bootstrap
from loadtest import _openloop as openloop
from loadtest import _options as options
from loadtest import _population as population
from loadtest import _report as report
from loadtest._api import Api, ApiError
from loadtest._mix import OperationMix
from loadtest._samples import CsvFile, SampleBuffer, stats_path

log = logging.getLogger("loadtest")

# Custom messages: master -> worker, then worker -> master.
SETUP = "loadtest_setup"  # options, population, open-loop share, samples on/off
REQUEST_SETUP = "loadtest_request_setup"  # a worker that missed its setup
SAMPLES = "loadtest_samples"  # a chunk of formatted CSV rows
DONE = "loadtest_done"  # the worker's end-of-run counters
STOP = "loadtest_stop"  # master -> worker: stop now, send the last samples and DONE
REPORT_GRACE_S = 30  # beyond --stop-timeout: how long the master waits for the workers' DONE


class Controller:
    """This process's state of the load test, driven by Locust's events (wired in locustfile.py)."""

    def __init__(self):
        self.environment = None
        self.role = "local"
        self.population: population.Population | None = None
        self.prepared_for = None  # (host, database) the population was found for
        self.mix: OperationMix | None = None
        self.schedule: openloop.Schedule | None = None
        self.ready = gevent.event.Event()
        self.csv: CsvFile | None = None
        self.samples: SampleBuffer | None = None
        self.wall_offset = time.time() - perf_counter()
        self.counts = [0, 0]  # reads, tweets
        self.errors = 0
        self.started = self.stopped = None
        self.workers: set[str] = set()  # master: the workers set up for this run
        self.reports: dict[str, dict] = {}
        self.all_reported = gevent.event.Event()
        self.finalized = False

    @property
    def options(self):
        return self.environment.parsed_options

    # --- Locust events ----------------------------------------------------------------------

    def on_init(self, environment, runner, **_) -> None:
        self.environment = environment
        self.role = (
            "master"
            if isinstance(runner, MasterRunner)
            else "worker"
            if isinstance(runner, WorkerRunner)
            else "local"
        )
        if environment.parsed_options is None:  # a library use of Locust without its CLI
            raise RuntimeError("loadtest/ is run with the locust command (its options are needed)")
        if problems := options.check(self.options):
            for problem in problems:
                log.error(problem)
            sys.exit(1)
        if self.role == "worker":
            runner.register_message(SETUP, self.on_setup)
            runner.register_message(STOP, self.on_stop_message)
        else:
            if self.options.samples_csv:
                self.csv = CsvFile(self.options.samples_csv)
                self.samples = SampleBuffer(self.csv.write)
            if self.role == "master":
                runner.register_message(SAMPLES, lambda msg, **_: self.csv and self.csv.write(msg.data))
                runner.register_message(DONE, self.on_done)
                runner.register_message(REQUEST_SETUP, self.on_request_setup)
            if environment.host:
                self.prepare_or_exit()

    def on_test_start(self, environment, **_) -> None:
        self.counts = [0, 0]
        self.errors = 0
        self.started, self.stopped = perf_counter(), None
        self.finalized, self.reports = False, {}
        self.all_reported.clear()
        if self.role == "worker":
            if not self.ready.is_set():  # a worker that joined after the setup was sent
                self.environment.runner.send_message(REQUEST_SETUP, None)
            return
        if not self.prepare_or_stop():
            return
        if self.role == "local":
            self.activate(self.population, workers=1, phase=0)
        else:
            runner = self.environment.runner
            clients = sorted(
                c.id for c in (*runner.clients.ready, *runner.clients.running, *runner.clients.spawning)
            )
            self.workers = set(clients)
            for phase, client in enumerate(clients):
                runner.send_message(SETUP, self.setup_message(len(clients), phase), client_id=client)

    def on_test_stopping(self, **_) -> None:
        self.stopped = perf_counter()
        if self.schedule is not None:
            self.schedule.stop()
        if self.role == "master":
            # A headless run ends in MasterRunner.quit(), which tells the workers only "quit"
            # and stops listening 0.5 s later: a worker still letting its users finish
            # (--stop-timeout) would send its last samples and its DONE to no one.
            for worker in sorted(self.workers):
                self.environment.runner.send_message(STOP, None, client_id=worker)

    def on_test_stop(self, **_) -> None:
        if self.stopped is None:
            self.on_test_stopping()
        if self.samples is not None:
            self.samples.flush()
        if self.role == "worker":
            self.environment.runner.send_message(DONE, self.process_report())
            self.ready.clear()  # the next run brings its own setup
        elif self.role == "local":
            self.finalize([self.process_report()])
        elif self.workers:
            # Blocks the stopping greenlet only: the master's message loop goes on receiving.
            if not self.all_reported.wait(timeout=self.stop_timeout() + REPORT_GRACE_S):
                self.warn_missing()
            self.finalize(list(self.reports.values()))

    def on_quitting(self, **_) -> None:
        if self.role == "master" and self.started is not None and not self.finalized:
            self.warn_missing()
            self.finalize(list(self.reports.values()))
        if self.csv is not None:
            self.csv.close()
            self.csv = None

    # --- messages ---------------------------------------------------------------------------

    def setup_message(self, workers: int, phase: int) -> dict:
        return {
            "workers": workers,
            "phase": phase,
            "samples": self.csv is not None,
            "options": {name: getattr(self.options, name) for name in options.NAMES},
            "population": None if self.population is None else self.population.to_message(),
        }

    def on_setup(self, environment, msg, **_) -> None:  # worker
        data = msg.data
        vars(self.options).update(data["options"])
        try:
            if data["population"] is not None:
                found = population.Population.from_message(data["population"])
            else:
                found = population.from_database(self.options.database)
        except Exception as error:
            log.error("worker setup failed: %s", error)
            return
        runner = environment.runner
        self.samples = None
        if data["samples"]:
            self.samples = SampleBuffer(lambda text: runner.send_message(SAMPLES, text))
        self.activate(found, workers=data["workers"], phase=data["phase"])

    def on_request_setup(self, environment, msg, **_) -> None:  # master
        if self.prepared_for is None:
            return
        if msg.node_id not in self.workers:
            self.workers.add(msg.node_id)
            log.warning("worker %s joined the running test; open-loop shares are no longer even", msg.node_id)
        phase = sorted(self.workers).index(msg.node_id)
        environment.runner.send_message(
            SETUP, self.setup_message(len(self.workers), phase), client_id=msg.node_id
        )

    def on_done(self, environment, msg, **_) -> None:  # master
        if self.finalized:
            log.warning("worker %s reported after the run's figures were written: left out", msg.node_id)
            return
        self.reports[msg.node_id] = msg.data
        if self.workers <= set(self.reports):
            self.all_reported.set()

    def on_stop_message(self, environment, **_) -> None:  # worker
        # Here, not in a greenlet of its own: the master's "quit" waits behind it, and stop()
        # returns once every user is done, after test_stop has sent the samples and DONE.
        environment.runner.stop()

    def stop_timeout(self) -> float:
        return float(self.environment.stop_timeout or 0)

    def warn_missing(self) -> None:
        missing = len(self.workers - set(self.reports))
        if missing:
            log.warning(
                "%d worker(s) sent no end-of-run report; their requests are missing from the figures below",
                missing,
            )

    # --- the work ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Find (or build) the population for the current host, once."""
        host, database = self.environment.host, self.options.database
        if self.prepared_for == (host, database):
            return
        if database:
            if self.role == "master":  # each worker reads the database itself
                population.check_database(database)
                self.population = None
            else:
                self.population = population.from_database(database)
        else:
            if not host:
                raise ValueError("no host: give --host (or choose one in the web UI)")
            api = Api(host, token=self.options.api_token)
            try:
                if population.app_is_empty(api):
                    o = self.options
                    log.info(
                        "%s has no users: creating %d users, ~%g followees and ~%g tweets each",
                        host,
                        o.graph_users,
                        o.graph_followees,
                        o.graph_tweets,
                    )
                    plan = bootstrap.plan_graph(o.graph_users, o.graph_followees, o.graph_tweets, o.seed)
                    self.population = bootstrap.build(api, plan)
                else:
                    self.population = population.discover(api, self.options.discover_limit, self.options.seed)
            finally:
                api.close()
        if self.population is not None:
            log.info("population: %s", self.population.describe())
        self.prepared_for = (host, database)

    def prepare_or_exit(self) -> None:
        try:
            self.prepare()
        except (ApiError, OSError, ValueError, *population.DATABASE_ERRORS) as error:
            log.error("cannot prepare the run: %s", error)
            sys.exit(1)

    def prepare_or_stop(self) -> bool:
        try:
            self.prepare()
            return True
        except (ApiError, OSError, ValueError, *population.DATABASE_ERRORS) as error:
            log.error("cannot prepare the run: %s", error)
            self.environment.process_exit_code = 1
            gevent.spawn(self.environment.runner.quit)
            return False

    def activate(self, found: population.Population, workers: int, phase: int) -> None:
        o = self.options
        self.population = found
        self.mix = OperationMix(found, o.read_ratio, o.zipf, o.author_bias, o.seed, stream=phase)
        self.schedule = openloop.Schedule(o.arrival_rate, workers, phase) if o.arrival_rate else None
        self.wall_offset = time.time() - perf_counter()
        self.ready.set()

    def process_report(self) -> dict:
        end = self.stopped or perf_counter()
        return {
            "read": self.counts[0],
            "tweet": self.counts[1],
            "errors": self.errors,
            "elapsed_s": end - self.started if self.started is not None else 0.0,
            "openloop": self.schedule.report() if self.schedule is not None else None,
        }

    def finalize(self, reports: list[dict]) -> None:
        if self.finalized:
            return
        self.finalized = True
        o = self.options
        counts = {key: sum(r[key] for r in reports) for key in ("read", "tweet", "errors")}
        elapsed = max((r["elapsed_s"] for r in reports), default=0.0)
        summary = {
            "operations": counts,
            "elapsed_s": elapsed,
            "processes": len(reports),
            "read_ratio": o.read_ratio,
            "arrival_rate": o.arrival_rate or None,
            "users": o.num_users,
            "population": self.population.source if self.population is not None else f"database {o.database}",
            "samples_csv": o.samples_csv or None,
        }
        log.info(report.operations_line(counts, elapsed))
        if o.arrival_rate:
            combined = openloop.combine(o.arrival_rate, [r["openloop"] for r in reports if r["openloop"]])
            summary["openloop"] = combined
            line, warnings = openloop.summary(combined, o.num_users)
            log.info(line)
            for warning in warnings:
                log.warning(warning)
        stats = self.read_stats()
        log.info(report.stats_line(stats))
        if self.csv is not None:
            self.csv.flush()
            path = stats_path(o.samples_csv)
            report.write_json(path, stats, summary)
            log.info("samples: %s, app stats: %s", o.samples_csv, path)

    def read_stats(self) -> dict:
        api = Api(self.environment.host, concurrency=1, timeout=10)
        try:
            return api.expect(200, "GET", "/stats")
        except ApiError as error:
            log.warning("could not read /stats: %s", error)
            return {"error": str(error)}
        finally:
            api.close()
