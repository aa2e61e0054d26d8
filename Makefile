# Two setup commands: `make bench` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: bench test reference venv clean

venv: $(STAMP)

# torch==2.13.0 first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,ir_datasets,onnx]'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/harness run configs/quickstart.yaml

test: $(STAMP)
	$(PY) -m pytest

# Re-measures the published reference results: every shipped offline config, one at a time, into
# results/<config>/ and reports/<config>/, then the README's reproduction tables. About 15 minutes
# on 2 CPU cores with a cold embedding cache (7 of them encode SciFact), 6 with a warm one.
# `git diff` then shows what moved: timings, wall times and what depends on them.
reference: $(STAMP)
	$(PY) benchmarks/reference.py

clean:
	rm -rf $(VENV) .cache
