# UniVid harness. `make report` and `make test` set everything up first; `make setup` is idempotent.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
CORES  ?= all

.PHONY: setup report report-all test bench bench-all clean-results ship-pretrain

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

report-all: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) reports/all

test: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q --durations=12 tests

bench: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/perf/table4_smoke

bench-all: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/perf/all_smoke

# Train the toy default's pretrain job (~25 min here) and ship it into checkpoints/pretrain/<key>, which a cold toy
# run then installs instead of training (univid/train/shipped.py; tests/test_shipped.py checks it still reproduces).
ship-pretrain: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/univid pretrain --train --ship --set scale=toy

clean-results:
	rm -rf results .snakemake mlflow.db reports/*.tex reports/all

# Paper-scale VBench(-Long) through the official code, in its own venv with vbench's own pins (transformers 4.33,
# numpy<2, timm<=1.0.12 conflict with .venv). Needs the pip registry and torch for the machine's CUDA; weights are
# fetched separately (`univid weights fetch`, or pre-staged and checked with `univid weights verify`).
# vbench2_beta_long also imports scenedetect, moviepy<2 and dreamsim, which vbench 0.1.5 does not declare, and writes
# its clips with torchvision.io.write_video (PyAV; removed in torchvision 0.24), hence av and the torch pin
# (VBENCH_TORCH picks another build, e.g. for another CUDA). dreamsim (dev_flag) imports peft, whose releases after
# 0.5 need a newer transformers than vbench's 4.33.2. The GRiT dimensions (object_class, multiple_objects, color,
# spatial_relationship) also need detectron2, which has no wheel on PyPI: build it into this venv for those.
VBENCH_VENV  ?= .venv-vbench
VBENCH_TORCH ?= torch==2.8.0 torchvision==0.23.0
.PHONY: vbench-env eval-bench
vbench-env: $(VBENCH_VENV)/.installed

$(VBENCH_VENV)/.installed:
	@command -v $(PYTHON) >/dev/null || { echo "vbench-env: $(PYTHON) not found (expected Python 3.11; set PYTHON=...)"; exit 1; }
	test -x $(VBENCH_VENV)/bin/python || $(PYTHON) -m venv $(VBENCH_VENV)
	$(VBENCH_VENV)/bin/python -m pip install -q "setuptools<81" wheel
	$(VBENCH_VENV)/bin/python -m pip install -q $(VBENCH_TORCH)
	$(VBENCH_VENV)/bin/python -m pip install -q vbench==0.1.5 scenedetect "moviepy<2" dreamsim peft==0.5.0 av \
		$(VBENCH_TORCH)
	$(VBENCH_VENV)/bin/python -c "import vbench, vbench2_beta_long, vbench2_beta_long.subject_consistency, \
		vbench2_beta_long.background_consistency, vbench.human_action, vbench.scene"
	touch $@

eval-bench: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/perf/eval_smoke
