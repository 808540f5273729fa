VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: test bench-fanout clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

test: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

bench-fanout: $(VENV)/.installed
	scripts/ensure-redis-server
	$(PYTHON) bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache
