# Edge TPU Retraining Studio — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501
STUDIO_MAX_UPLOAD_MB ?= 2048
PYTEST_ARGS ?=

.PHONY: run test test-ray bench venv venv-dev apt-test clean-venv

$(VENV)/bin/python:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/apt_deps.sh python3-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Re-install only when a requirements file changed; the project itself is installed editable
# (no dependencies: those come from requirements.txt) for the `studio` command.
$(VENV)/.req-stamp: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-stamp: requirements.txt requirements-dev.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(VENV)/.req-stamp $@

venv: $(VENV)/.req-stamp
venv-dev: $(VENV)/.dev-stamp

apt-test:
	scripts/apt_deps.sh

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
