# `make demo` runs the bundled Poisson example locally; `make test` runs the whole suite.
# Both create the virtual environment first when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): requirements.txt requirements-dev.txt runtime/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m runtime.submit examples/poisson/fit_data.stan \
		--generator examples/poisson/generative_ensemble.stan \
		--data examples/poisson/data.json --replicates 100 --out sbc-report/poisson-demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/local_overhead.py
