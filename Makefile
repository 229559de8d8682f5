# Everything a new user needs: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

DEV_STAMP := $(VENV)/.installed-dev

# The demo needs only the classical methods (no torch, no dask).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

# Tests cover the optional extras too; torch is pinned to the CPU build (GUIDE: never unpinned).
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,dask,cube,hdf]" "torch==2.13.0" "lightning==2.6.6"
	touch $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/stfusion demo demo-output --overwrite

# The numba kernels compile (about a minute of CPU on a fresh clone) beside the linters, once,
# rather than in each test process; pytest starts when both are done.
test: $(DEV_STAMP)
	$(BIN)/python tools/warm_kernels.py & warm=$$!; \
	$(BIN)/ruff check src tests benchmarks tools && \
	$(BIN)/ruff format --check src tests benchmarks tools && \
	$(BIN)/lint-imports && \
	$(BIN)/mypy && \
	$(BIN)/vulture src/stfusion tools/vulture_whitelist.py --min-confidence 60; \
	lint=$$?; wait $$warm; exit $$lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# Speed and memory (see benchmarks/README.md); needs ../shared/data beside the repository.
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_starfm.py
	$(BIN)/python benchmarks/bench_classical.py
	$(BIN)/python benchmarks/bench_deep.py
	$(BIN)/python benchmarks/bench_stfdcnn.py
	$(BIN)/python benchmarks/bench_outofcore.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .mypy_cache
