# The two front-door commands are `make demo` and `make test`; both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch, installed before lmech so that its `torch>=2.3` range is already met
# (a bare `torch` requirement would pull a CUDA build of several GB). Override to use another.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.lmech-installed

.PHONY: demo test test-slow check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## the main job: edge of stability on the digits, with a report
	$(BIN)/lmech run edge-of-stability --quick

test: $(STAMP)  ## the default suite (minutes on 2 cores)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)  ## the slow tests only
	$(BIN)/python -m pytest -q -m slow

check: $(STAMP)  ## every law's quick preset; fails if any check fails
	$(BIN)/lmech check --quick --out $${LMECH_RUNS:-runs}

bench: $(STAMP)  ## speed figures, as ratios against a baseline in the same process
	$(BIN)/python benchmarks/bench_sharpness.py
	$(BIN)/python benchmarks/bench_ntk.py
	$(BIN)/python benchmarks/bench_ensemble.py
	$(BIN)/python benchmarks/bench_scaling_fit.py
	$(BIN)/python benchmarks/bench_similarity.py

clean:
	rm -rf $(VENV) runs .pytest_cache
