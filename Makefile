VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: test lint seed bench charts notebook bench-faults soak bench-fanout bench-encodings bench-memory bench-reads demo clean

SCALE ?= default
# The apps' store in make bench: sqlite, or postgres (a private server, rig/postgres.py).
STORE ?= sqlite
DATABASE ?= timelines.db
OUT ?= results

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

test: lint
	scripts/ensure-redis-server
	scripts/ensure-postgres
	scripts/ensure-wrk
	scripts/ensure-chromium
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

# ruff and mypy, configured in pyproject.toml: the lint rules, the formatting (checked only),
# then the types, strict on the three apps and timelines/.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Seeds DATABASE with a named scale (SQLite only: join-on-read's whole state). For a fanout
# app's caches too: .venv/bin/python -m datagen SCALE --database F --redis-url URL --approach fanout
seed: $(VENV)/.installed
	$(PYTHON) -m datagen $(SCALE) --database $(DATABASE)

# The three designs side by side (bench/run.py; `python -m bench --list` names every experiment,
# bench/experiments/ holds them): a run folder under OUT with samples, summary CSVs, meta.json
# and the charts. SCALE=tiny is the 2-minute smoke run. STORE=postgres runs the apps on a
# private PostgreSQL server instead of SQLite files.
# WORKERS=N: the load from a Locust master and N worker processes (meta.json: load_processes).
# REDIS_NODES=N: the fanout apps' caches on an N-node Redis Cluster the bench starts and stops
# (meta.json: redis_nodes); unset or 0, one redis-server.
bench: $(VENV)/.installed
	scripts/ensure-redis-server
	$(if $(filter postgres,$(STORE)),scripts/ensure-postgres)
	$(PYTHON) -m bench --scale $(SCALE) --store $(STORE) --out $(OUT)$(if $(filter-out 0,$(REDIS_NODES)), --redis-nodes $(REDIS_NODES))

# Redraws a run folder's charts, and executes the notebook on it into RUN/notebook.ipynb:
# make charts RUN=results/<run>
charts: $(VENV)/.installed
	$(PYTHON) -m bench.report.charts $(RUN)
	$(PYTHON) -m bench.report.notebook $(RUN)

# The lesson in JupyterLab: notebooks/timelines.py opens as a notebook (jupytext), reading
# the reference run, or RUN=results/<run>. The settings folder makes .py open as a notebook.
# LAB_ARGS go to jupyter lab (--no-browser on a server; --allow-root when root).
notebook: $(VENV)/.installed
	RESULTS=$(if $(RUN),$(abspath $(RUN))) JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/notebooks/jupyterlab-settings \
		$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/timelines.py

# Faults at full size (bench/experiments/faults/): Redis killed under load, the app killed mid-fanout,
# concurrent writers on two workers; each writes results/faults-<scenario>-<date>/.
bench-faults: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m bench faults redis-kill --scale $(SCALE) --out $(OUT)
	$(PYTHON) -m bench faults app-kill --out $(OUT)
	$(PYTHON) -m bench faults writers --out $(OUT)

# A long steady run (bench/experiments/soak.py) at 70 % of the throughput a bench run measured:
# make soak RUN=results/<run> [APPROACH=approach2 MINUTES=30]
APPROACH ?= approach2
MINUTES ?= 30
soak: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m bench soak --approach $(APPROACH) --minutes $(MINUTES) --from-results $(RUN) --scale $(SCALE) --out $(OUT)

# The cache layer alone, each with a private redis-server, none of it in make bench:
# one tweet to 1k..1M followers through the app's own outbox worker (FOLLOWERS=1000,10000,100000,1000000;
# REDIS_NODES=N: on an N-node Redis Cluster it starts itself)
FOLLOWERS ?= 1000,10000,100000
bench-fanout: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m bench fanout --followers $(FOLLOWERS)$(if $(filter-out 0,$(REDIS_NODES)), --redis-nodes $(REDIS_NODES))

# bytes per entry and Redis CPU per follower-write of each candidate timeline encoding
bench-encodings: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m bench encodings

# Cached reads against the same stack serving the page from memory: app + its Redis on one CPU, wrk on the other
bench-reads: $(VENV)/.installed
	scripts/ensure-redis-server
	scripts/ensure-wrk
	$(PYTHON) -m bench reads --scale $(MEMORY_SCALE)

# Redis bytes per cached entry as the apps build their cache, and users per 4 GiB at default
# (REDIS_NODES=N: on an N-node Redis Cluster it starts itself, the nodes' memory summed)
MEMORY_SCALE ?= small
bench-memory: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m bench cache-memory --scale $(MEMORY_SCALE) --default-too$(if $(filter-out 0,$(REDIS_NODES)), --redis-nodes $(REDIS_NODES))

# The three designs live, side by side, on http://127.0.0.1:8089 (demo/): tiny seeded, a private
# Redis, the three apps under the same open-loop load; Ctrl-C stops it all. DEMO_ARGS="--port 8090"
demo: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .bench-cache
