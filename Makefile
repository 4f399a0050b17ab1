# earlywarn — `make run` sets up and runs the main job; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: help venv lock docs-images run validate bench bench-scale drill sbom test test-fast lint typecheck pytest clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch first, so resolving the project never pulls a multi-GB CUDA build.
	$(PY) -m pip install -q 'torch==2.13.*'
	# scale: Ray, so the distributed batch path's agreement test runs in `make test` (local mode) like the rest.
	$(PY) -m pip install -q -e '.[dev,scale]'
	touch $@

venv: $(STAMP) ## Create .venv and install the project with its dev tools

# The bento's packages: pyproject's `serving` extra pinned for Linux x86_64, Python 3.11, with the CPU build of torch
# (from the machine's wheel folder where pip is configured with one, else PyTorch's CPU index).
TORCH_CPU := torch==2.13.0+cpu
TORCH_SOURCE := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
lock: $(STAMP) ## Re-pin the bento's packages (pyproject's serving extra, CPU torch) into serving/requirements.lock
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["serving"], sep="\n")' \
		| $(VENV)/bin/uv pip compile - --constraint <(echo '$(TORCH_CPU)') $(TORCH_SOURCE) --no-emit-find-links \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-annotate --quiet --custom-compile-command 'make lock' \
		-o serving/requirements.lock

run: $(STAMP) ## Default cohort -> validate -> (train + promote if no champion) -> package -> serve on 127.0.0.1:3000
	EARLYWARN_MODE=demo $(VENV)/bin/earlywarn run --port 3000

bench: $(STAMP) ## Cost budget (training, in-process scoring), the service beside a bare server and BentoML's floor (wrk), a monitor run over 100k predictions; needs `make run` first and wrk
	@command -v wrk >/dev/null || { echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	@test -f runs/cohort/features.parquet || $(VENV)/bin/earlywarn data synth --out runs/cohort
	$(PY) -m bench.costs
	$(PY) -m bench.serving
	$(PY) -m bench.batching
	$(PY) -m bench.monitor 100000

validate: $(STAMP) ## Write docs/validation.md: calibration, partial signals, interval and behaviour against the true risk and a fresh cohort; case-control synthetic, GLOBEM sample, the nested model choice (about 25 minutes on 2 idle cores)
	$(PY) -m bench.validate docs/validation.md

docs-images: $(STAMP) ## Regenerate docs/images (calibration, decision curve, a risk trajectory, the drift dashboard); needs Chromium, ~5 min
	$(PY) -m bench.docs_images docs/images

bench-scale: $(STAMP) ## Time and peak memory of each stage at growing cohort sizes (see BENCHMARKS.md); needs `make run` first
	@mkdir -p runs/bench-scale
	$(PY) -m bench.scale machine
	$(PY) -m bench.scale synth 500 5000 50000
	$(PY) -m bench.scale validate 500 5000 50000 5000@50000 5000@500000 5000@2000000
	$(PY) -m bench.scale windows 500 5000 50000
	# 100x trains on a tenth of an epoch (a full one is about an hour on 2 cores); see BENCHMARKS.md.
	$(PY) -m bench.scale train-epoch 500 5000 50000/10
	$(PY) -m bench.scale score 500 5000 50000 10000 100000 1000000
	$(PY) -m bench.scale reference
	$(PY) -m bench.scale monitor 10000 100000 1000000

drill: $(STAMP) ## Fuzzing, hostile input, rate limits, secrets, faults, a 10-minute soak, supply chain; prints the table
	@mkdir -p runs/drill && rm -f runs/drill/results.jsonl
	EARLYWARN_DRILL=full EARLYWARN_DRILL_RESULTS=$(CURDIR)/runs/drill/results.jsonl $(PY) -m pytest -q -p no:randomly \
		tests/drills/test_drills.py tests/drills/test_serving_drill.py tests/integration/test_serving_http.py tests/integration/test_consent_cli.py tests/unit/serving/test_serving_unit.py tests/integration/test_retrain.py tests/integration/test_supply_chain.py \
		-k "drill or fuzz or validators or hostile or rate or logs or secret or production or mlflow or tampered or swapped or kill or soak or versions or telemetry or revoked or partners or outage or resource or forget or private or purge or expire or spool_survives or queue or authentication_comes or outcomes_are_bounded or model_card or retrain_beats or alias or planted or packaged_model or rotating or tracing"
	$(PY) -m tests.drill runs/drill/results.jsonl | tee runs/drill/table.md
	$(MAKE) sbom

sbom: $(STAMP) ## CycloneDX SBOM of the service's environment -> runs/sbom.cdx.json
	$(PY) -m pip install -q -e '.[drill]'
	@mkdir -p runs
	$(VENV)/bin/cyclonedx-py environment $(VENV) --of JSON -o runs/sbom.cdx.json
	@echo "SBOM: runs/sbom.cdx.json"

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check earlywarn data training serving monitoring bench tests
	$(VENV)/bin/ruff format --check earlywarn data training serving monitoring bench tests

typecheck: $(STAMP) ## mypy on the packages
	$(VENV)/bin/mypy

pytest: $(STAMP) ## The test suite only
	$(PY) -m pytest

test: lint typecheck pytest ## Lint, type-check and run the whole test suite (what CI runs)

test-fast: lint typecheck $(STAMP) ## Lint, type-check and the unit tier (tests/unit: no servers, no CLI processes): about two minutes
	$(PY) -m pytest tests/unit

clean: ## Remove generated runs and caches (keeps .venv)
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
