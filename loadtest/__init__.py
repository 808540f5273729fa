"""The load suite: `locust -f loadtest/` against any app that speaks docs/CONTRACT.md.

Locust imports every .py file under the directory it is given, each as a top-level module
named after the file, except files whose names start with "_". So locustfile.py, the one
module with side effects (the User class and the event listeners), is the only file
without the underscore; the helpers below are imported by it as `loadtest._name`, once:

  locustfile.py   the User (FastHttpUser) and the wiring of Locust's events
  _controller.py  one process's part in a run: local, master or worker
  _options.py     the command-line options (--read-ratio, --arrival-rate, --samples-csv, ...)
  _population.py  the users a run draws from: --database, or found over HTTP
  _bootstrap.py   a small follow graph created through the API on an empty app
  _mix.py         reads and tweets, readers and authors: Zipf, drawn in numpy batches
  _openloop.py    the open-loop schedule (--arrival-rate) and its end-of-run report
  _samples.py     the per-request CSV, buffered
  _report.py      the app's /stats at the end: JSON next to the samples, one line printed
  _api.py         the client for the calls around a run (never in Locust's statistics)
  __main__.py     `python -m loadtest`: the options, since `locust --help` cannot list them

How fast the suite itself is (so that it is not what a run measures): `python -m bench loadgen`.
"""
