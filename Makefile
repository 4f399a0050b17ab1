# earlywarn — `make run` sets up and runs the main job; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: help venv run bench bench-scale drill sbom test lint typecheck pytest clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch first, so resolving the project never pulls a multi-GB CUDA build.
	$(PY) -m pip install -q 'torch==2.13.*'
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create .venv and install the project with its dev tools

run: $(STAMP) ## Default cohort -> validate -> (train + promote if no champion) -> package -> serve on 127.0.0.1:3000
	$(VENV)/bin/earlywarn data synth --out runs/cohort
	$(VENV)/bin/earlywarn data validate --features runs/cohort/features.parquet --outcomes runs/cohort/outcomes.csv
	$(VENV)/bin/earlywarn serve --build --ensure-champion --demo --port 3000

bench: $(STAMP) ## Load-test the service (Locust), in-process scoring, a monitor run over 100k predictions; needs `make run` first
	$(PY) -m pip install -q -e '.[bench]'
	@test -f runs/cohort/features.parquet || $(VENV)/bin/earlywarn data synth --out runs/cohort
	$(PY) -m serving.bench
	$(PY) -m monitoring.bench 100000

bench-scale: $(STAMP) ## Time and peak memory of each stage at growing cohort sizes (see BENCHMARKS.md); needs `make run` first
	@mkdir -p runs/bench-scale
	$(PY) -m monitoring.scale_bench machine
	$(PY) -m monitoring.scale_bench synth 500 5000 50000
	$(PY) -m monitoring.scale_bench validate 500 5000 50000 5000@50000 5000@500000 5000@2000000
	$(PY) -m monitoring.scale_bench windows 500 5000 50000
	# 100x trains on a tenth of an epoch (a full one is about an hour on 2 cores); see BENCHMARKS.md.
	$(PY) -m monitoring.scale_bench train-epoch 500 5000 50000/10
	$(PY) -m monitoring.scale_bench score 500 5000 50000 10000 100000 1000000
	$(PY) -c "from monitoring.monitor import champion_reference; champion_reference().to_parquet('runs/bench-scale/reference.parquet')"
	$(PY) -m monitoring.scale_bench monitor 10000 100000 1000000

drill: $(STAMP) ## Fuzzing, hostile input, rate limits, secrets, faults, a 10-minute soak, supply chain; prints the table
	@mkdir -p runs/drill && rm -f runs/drill/results.jsonl
	EARLYWARN_DRILL=full EARLYWARN_DRILL_RESULTS=$(CURDIR)/runs/drill/results.jsonl $(PY) -m pytest -q -p no:randomly \
		tests/test_drills.py tests/test_serving_drill.py tests/test_serving_http.py -k "drill or fuzz or validators or hostile or rate or logs or secret or production or mlflow or tampered or kill or soak or versions or telemetry or revoked or partners or outage"
	$(PY) -m tests.drill runs/drill/results.jsonl | tee runs/drill/table.md
	$(MAKE) sbom

sbom: $(STAMP) ## CycloneDX SBOM of the service's environment -> runs/sbom.cdx.json
	$(PY) -m pip install -q -e '.[drill]'
	@mkdir -p runs
	$(VENV)/bin/cyclonedx-py environment $(VENV) --of JSON -o runs/sbom.cdx.json
	@echo "SBOM: runs/sbom.cdx.json"

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check data training serving monitoring tests
	$(VENV)/bin/ruff format --check data training serving monitoring tests

typecheck: $(STAMP) ## mypy on the packages
	$(VENV)/bin/mypy

pytest: $(STAMP) ## The test suite only
	$(PY) -m pytest

test: lint typecheck pytest ## Lint, type-check and run the whole test suite

clean: ## Remove generated runs and caches (keeps .venv)
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
