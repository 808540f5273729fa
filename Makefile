VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: test seed bench-fanout clean

SCALE ?= tiny
DATABASE ?= timelines.db

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

test: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

# Seeds DATABASE with a named scale (SQLite only: join-on-read's whole state). For a fanout
# app's caches too: .venv/bin/python -m datagen SCALE --database F --redis-url URL --approach fanout
seed: $(VENV)/.installed
	$(PYTHON) -m datagen $(SCALE) --database $(DATABASE)

bench-fanout: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache
