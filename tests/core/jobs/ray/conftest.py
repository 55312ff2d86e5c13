"""A real Ray head node, started inside the loopback-only network namespace these tests run in.

`make test` runs this folder as `unshare -n … pytest -m ray tests/core/jobs/ray` (see the Makefile); outside such a
namespace the head is refused, because a default Ray start talks to non-loopback addresses.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "scripts"))

import ray_head  # noqa: E402


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory):
    if not ray_head.loopback_only():
        pytest.fail("the Ray tests must run in a loopback-only network namespace: "
                    "unshare -n -- bash -c 'ip link set lo up && .venv/bin/python -m pytest -m ray tests/core/jobs/ray'")
    home = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    url = ray_head.start(home)
    yield url
    ray_head.stop(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch):
    for k, v in ray_head.RAY_ENV.items():
        monkeypatch.setenv(k, v)
