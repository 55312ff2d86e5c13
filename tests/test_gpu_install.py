"""`make venv GPU=1` / `make run GPU=1`: tensorflow[and-cuda] at the CPU pin's version, nothing by hand.

The real install (7.3 GB, ~6 min here) is not repeated by the tests; docs/GPU.md records it. These tests
check what the Makefile would run and the requirements it derives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_requirements  # noqa: E402


def _cpu_pin() -> str:
    return re.search(r"^tensorflow-cpu==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)


def test_gpu_requirements_swap_only_the_tensorflow_pin(tmp_path):
    assert gpu_requirements.main([str(tmp_path)]) == 0
    cpu = (ROOT / "requirements.txt").read_text().splitlines()
    gpu = (tmp_path / "requirements-gpu.txt").read_text().splitlines()
    changed = [(a, b) for a, b in zip(cpu, gpu) if a != b]
    assert len(cpu) == len(gpu) and changed == [(f"tensorflow-cpu=={_cpu_pin()}",
                                                 f"tensorflow[and-cuda]=={_cpu_pin()}")]
    dev = (tmp_path / "requirements-dev-gpu.txt").read_text()
    assert "-r requirements-gpu.txt" in dev and "-r requirements.txt" not in dev
    assert "pytest==" in dev


def test_a_requirements_file_without_the_cpu_pin_is_refused():
    with pytest.raises(ValueError, match="tensorflow-cpu==VERSION"):
        gpu_requirements.gpu_requirements("numpy==2.4.6\n")


def _dry_run(*args: str) -> str:
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_make_gpu_installs_the_cuda_build_instead_of_tensorflow_cpu(tmp_path):
    venv = tmp_path / "v"
    out = _dry_run("run", "GPU=1", f"VENV={venv}")
    assert f"scripts/gpu_requirements.py {venv}" in out
    assert "pip uninstall -y -q tensorflow-cpu" in out  # both builds install the same files
    assert f"pip install -q -r {venv}/requirements-gpu.txt" in out and "streamlit run app.py" in out
    dev = _dry_run("venv-dev", "GPU=1", f"VENV={venv}")
    assert f"pip install -q -r {venv}/requirements-dev-gpu.txt" in dev


def test_make_without_gpu_stays_cpu_only(tmp_path):
    out = _dry_run("venv", f"VENV={tmp_path / 'v'}")
    assert "pip install -q -r requirements.txt" in out and "requirements-gpu" not in out
    assert "pip uninstall -y -q tensorflow " in out  # a venv switched back from GPU=1 loses the CUDA build
