# Edge TPU Retraining Studio — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501
STUDIO_MAX_UPLOAD_MB ?= 2048
PYTEST_ARGS ?=
# GPU=1: TensorFlow with its CUDA wheels (tensorflow[and-cuda] at the CPU pin's version) instead of tensorflow-cpu
GPU ?=
ifeq ($(GPU),1)
REQ_STAMP := $(VENV)/.req-gpu-stamp
DEV_STAMP := $(VENV)/.dev-gpu-stamp
else
REQ_STAMP := $(VENV)/.req-stamp
DEV_STAMP := $(VENV)/.dev-stamp
endif

.PHONY: run test test-ray bench venv venv-dev apt-test clean-venv devices

$(VENV)/bin/python:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/apt_deps.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Re-install only when a requirements file changed (or the build switched between CPU and GPU:
# tensorflow-cpu and tensorflow install the same files, so the other one is removed first); the project
# itself is installed editable (no dependencies: those come from requirements.txt) for the `studio` command.
$(VENV)/.req-stamp: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip uninstall -y -q tensorflow 2>/dev/null; rm -f $(VENV)/.req-gpu-stamp $(VENV)/.dev-gpu-stamp
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-stamp: requirements.txt requirements-dev.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip uninstall -y -q tensorflow 2>/dev/null; rm -f $(VENV)/.req-gpu-stamp $(VENV)/.dev-gpu-stamp
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(VENV)/.req-stamp $@

$(VENV)/.req-gpu-stamp: requirements.txt pyproject.toml scripts/gpu_requirements.py | $(VENV)/bin/python
	$(PY) scripts/gpu_requirements.py $(VENV)
	$(PY) -m pip uninstall -y -q tensorflow-cpu 2>/dev/null; rm -f $(VENV)/.req-stamp $(VENV)/.dev-stamp
	$(PY) -m pip install -q -r $(VENV)/requirements-gpu.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-gpu-stamp: requirements.txt requirements-dev.txt pyproject.toml scripts/gpu_requirements.py | $(VENV)/bin/python
	$(PY) scripts/gpu_requirements.py $(VENV)
	$(PY) -m pip uninstall -y -q tensorflow-cpu 2>/dev/null; rm -f $(VENV)/.req-stamp $(VENV)/.dev-stamp
	$(PY) -m pip install -q -r $(VENV)/requirements-dev-gpu.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(VENV)/.req-gpu-stamp $@

venv: $(REQ_STAMP)
venv-dev: $(DEV_STAMP)

apt-test:
	scripts/apt_deps.sh

## Which devices TensorFlow sees and what `--device auto` picks (after `make venv GPU=1`: a GPU should be listed)
devices: venv
	$(PY) -m core.training.device

## Start the studio on http://$(HOST):$(PORT)
run: venv
	STUDIO_MAX_UPLOAD_MB=$(STUDIO_MAX_UPLOAD_MB) $(PY) -m streamlit run app.py \
		--server.address $(HOST) --server.port $(PORT) --server.maxUploadSize $(STUDIO_MAX_UPLOAD_MB)

## Run the whole test suite (installs what it needs; starts dockerd/registry from the tests)
test: venv-dev apt-test
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) test-ray

## The Ray runner's tests, inside a network namespace that has only the loopback interface (RAY.md)
test-ray: venv-dev
	unshare -n -- bash -c 'ip link set lo up && exec $(PY) -m pytest -m ray tests/core/jobs/ray $(PYTEST_ARGS)'

## Full-size benchmarks: writes bench-output/report.json and report.md
bench: venv-dev apt-test
	$(PY) -m bench $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
