# The two commands of the README's quick start. Each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU machines take the CPU build of torch (found on this workplace's wheel cache, else
# PyPI); set TORCH= to let pip choose (a CUDA build on GPU machines).
TORCH ?= torch==2.13.0
DEMO_OUT ?= demo-out

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(if $(TORCH),$(BIN)/pip install --quiet "$(TORCH)")
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/ocsf-ray run --out $(DEMO_OUT)

test: install
	$(BIN)/python -m pytest -q --durations=10

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
