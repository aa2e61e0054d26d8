# Two setup commands: `make bench` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: bench test test-compat bench-gpu reference venv clean

venv: $(STAMP)

# torch==2.13.0 first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,ir_datasets,colbert,ray,diversity,pgvector,lancedb,finetune,onnx]'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/harness run configs/quickstart.yaml

test: $(STAMP)
	$(PY) -m pytest

# The same suite under the newest transformers 5.x / sentence-transformers 6.x, without the
# colbert extra (its tests skip): the core must work for users not pinned to transformers 4.
# A second venv, .venv-compat; .ci/run runs it after `make test`.
COMPAT := .venv-compat
COMPAT_STAMP := $(COMPAT)/.installed
$(COMPAT_STAMP): pyproject.toml
	rm -rf $(COMPAT)
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q torch==2.13.0
	$(COMPAT)/bin/python -m pip install -q -e '.[test,ir_datasets]' 'transformers>=5,<6' \
		'sentence-transformers>=6,<7'
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT)/bin/python -m pytest

# GPU suite (docs/gpu.md): a Python whose torch sees CUDA, not .venv (a CPU build); exits 0 with
# a skip message on a machine without CUDA. ARGS: e.g. --quick, --out DIR.
GPU_PYTHON ?= python3
bench-gpu:
	$(GPU_PYTHON) benchmarks/gpu_suite.py $(ARGS)

# Re-measures the published reference results: every shipped offline config, one at a time, into
# results/<config>/ and reports/<config>/, then the README's reproduction tables. About 15 minutes
# on 2 CPU cores with a cold embedding cache (7 of them encode SciFact), 6 with a warm one.
# `git diff` then shows what moved: timings, wall times and what depends on them.
reference: $(STAMP)
	$(PY) benchmarks/reference.py

clean:
	rm -rf $(VENV) $(COMPAT) .cache
