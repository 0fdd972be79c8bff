# One target per job. Every target creates .venv itself, so each works from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov conflicts with the dev tools' pins (see .ci/checkov-requirements.txt): a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The Lambda runtime's Python, needed by `sam build` (pyenv names it 3.13.x).
PY313 ?= $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.13*/bin 2>/dev/null | tail -1 || dirname "$$(command -v python3.13)")
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: all demo serve test lint typecheck unit e2e validate gates build bench soak clean

all: test

$(STAMP): pyproject.toml layers/common/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP): .ci/checkov-requirements.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r .ci/checkov-requirements.txt
	touch $(CHECKOV_STAMP)

demo: $(STAMP)  ## run the whole pipeline offline over several simulated days
	$(BIN)/python -m local demo

serve: $(STAMP)  ## the offline stack, serving until interrupted (prints one JSON line of endpoints)
	$(BIN)/python -m local serve --param DomainNames=demo-domain --param ObjectTypes=_profile,_asset,_order --time-scale 0.01

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(STAMP)  ## sam validate --lint (cfn-lint inside) and statelint on the ASL
	$(BIN)/sam validate --lint --template template.yaml
	for asl in statemachine/*.asl.json; do $(BIN)/python -m local.checks statelint $$asl || exit 1; done

# Every finding is fixed or skipped on its resource with a reason: checkov `Metadata: checkov: skip`,
# cfn-lint `Metadata: cfn-lint: config: ignore_checks`, bandit `# nosec BXXX: reason`.
# checkov runs offline: --skip-download and BC_SKIP_MAPPING stop its platform calls, and the
# update check is off, so nothing but loopback is contacted.
gates: $(STAMP) $(CHECKOV_STAMP)  ## checkov, cfn-lint with the serverless rules, bandit on the product code
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --quiet --compact \
		--skip-download --framework cloudformation --file template.yaml
	$(BIN)/bandit -c pyproject.toml --quiet --recursive functions layers

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not e2e"

e2e: $(STAMP)
	$(BIN)/python -m pytest tests -m e2e

# Two workers (TEST_WORKERS=0 runs in one process), a file per worker: moto's state is per process
# and every e2e file deploys its own stacks, so files never share an account.
TEST_WORKERS ?= 2
test: $(STAMP)  ## what CI runs: lint, types, template checks and gates, every test
	$(MAKE) --no-print-directory lint typecheck validate gates
	$(BIN)/python -m pytest tests $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

build: $(STAMP)  ## sam build (needs python3.13 on PATH for the runtime)
	PATH="$(PY313):$$PATH" $(BIN)/sam build --template template.yaml

N ?= 300
soak: $(STAMP)  ## the randomized soak: N simulated days with faults (SEED=... replays one), prints counts
	$(BIN)/python -m local.soak --schedules $(N) $(if $(SEED),--seed $(SEED),)

# The real state machine on the offline stack, every figure beside its baseline (20 to 26 minutes on 2 CPUs);
# writes bench/results.json. `sam build` inside needs python3.13, found as for `build`.
bench: $(STAMP)  ## executed benchmarks: polling, indexing, cold start, cost, demo, current state -> bench/results.json
	PATH="$(PY313):$$PATH" PYTHONPATH=layers/common $(BIN)/python -m bench

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
