# UniVid harness. `make report` and `make test` set everything up first; `make setup` is idempotent.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
CORES  ?= all

.PHONY: setup report test bench clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-lock.txt requirements-nodeps.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found (expected Python 3.11; set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt -c requirements-lock.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

report: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) reports/table4.tex

test: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q tests

bench: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/perf/table4_smoke

clean-results:
	rm -rf results .snakemake mlflow.db reports/*.tex
