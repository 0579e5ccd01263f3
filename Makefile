# `make demo` runs the bundled Poisson example locally; `make test` runs the whole suite (`make test-fast`
# leaves out the slow tests, for the inner loop).
# Both create the virtual environment first when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench synth cmdstan

$(STAMP): requirements.txt requirements-dev.txt runtime/requirements.txt package.json package-lock.json pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	npm ci --no-audit --no-fund
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m runtime.submit examples/poisson/fit_data.stan \
		--generator examples/poisson/generative_ensemble.stan \
		--data examples/poisson/data.json --replicates 100 --out sbc-report/poisson-demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint --failure-threshold style container/Dockerfile

test: lint
	$(VENV)/bin/pytest -q

# The inner loop: everything but the tests marked slow (whole ensembles, CmdStan compiles, the CDK CLI's
# synthesis) and the AWS end-to-end runs; make test runs them all.
test-fast: lint
	$(VENV)/bin/pytest -q -m "not slow and not aws_e2e"

# CmdStan 2.35.0 built offline from .ci/cmdstan (cmdstanpy.install_cmdstan needs GitHub; use it where
# GitHub is reachable). Then `export CMDSTAN=$(CMDSTAN_DIR)`: the CmdStan tests and --engine cmdstanpy run.
CMDSTAN_DIR ?= $(HOME)/.cache/cmdstan-offline/cmdstan-2.35.0

cmdstan: $(STAMP)
	PYTHON=$(PY) bash .ci/cmdstan/build.sh $(CMDSTAN_DIR)

bench: $(STAMP)
	$(PY) bench/local_overhead.py
	$(PY) bench/local_overhead.py --case wide --replicates 60 --iterations 200
	$(PY) bench/wide_model.py
	$(PY) bench/collect_scale.py
	$(PY) bench/gamma_tail.py
	$(PY) bench/verdict_power.py
	$(PY) bench/verdict_real_fits.py
	$(PY) bench/aws_calls.py
	$(PY) bench/child_startup.py
	$(PY) bench/aws_cost.py
	$(PY) bench/dask_overhead.py

# The AWS CDK app (app.py, stacks/): `make synth` writes the CloudFormation template and the staged
# assets to cdk.out/ with the pinned CDK CLI (npm ci installs it), cdk-nag's checks included. No AWS
# account or Docker is needed to synthesize; `npx cdk deploy` needs both (README: Deploying to AWS).
# jsii warns on every run that Node 20 is past end-of-life; these silence that banner.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

synth: $(STAMP)
	npx --no-install cdk synth --quiet
