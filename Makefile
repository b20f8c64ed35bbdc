# `make demo` and `make test` each set up .venv from nothing, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flairlc-installed
DEMO_OUT ?= demo_output

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flairlc demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info src/*.egg-info
