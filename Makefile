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
	$(BIN)/ocsf-ray synth --out $(DEMO_OUT)/archive --overwrite
	$(BIN)/ocsf-ray featurize $(DEMO_OUT)/archive/events --out $(DEMO_OUT)
	$(BIN)/ocsf-ray train --features $(DEMO_OUT) --out $(DEMO_OUT)/bundle --epochs 3 --max-batches-per-epoch 40

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
