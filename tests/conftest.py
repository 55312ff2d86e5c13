"""Shared fixtures: a fresh store per test, and paths to the real datasets in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STUDIO_SHARED_DIR", ROOT.parent / "shared")).resolve()
DATASETS = SHARED / "datasets"
RACCOON = DATASETS / "raccoon"
DIGITS = DATASETS / "sign-language-digits" / "Dataset"
OUTPUT = ROOT / "test-output"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def store(data_dir: Path):
    from core.data.store import Store

    return Store(data_dir)


@pytest.fixture(scope="session")
def raccoon_dir() -> Path:
    assert RACCOON.is_dir(), f"the raccoon dataset is expected at {RACCOON}"
    return RACCOON


@pytest.fixture(scope="session")
def raccoon_jpeg(raccoon_dir: Path) -> bytes:
    """The bytes of the first raccoon photo (a real JPEG)."""
    images = sorted((raccoon_dir / "images").glob("*.jpg"))
    assert images, f"no raccoon images in {raccoon_dir}"
    return images[0].read_bytes()


@pytest.fixture(scope="session")
def digits_dir() -> Path:
    assert DIGITS.is_dir(), f"the sign-language digits dataset is expected at {DIGITS}"
    return DIGITS


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture
def weights_offline(tmp_path, monkeypatch):
    """No cached ImageNet weights, and their download address a loopback port nobody listens on:
    the offline path of ``core.training.weights`` without any traffic leaving 127.0.0.1."""
    import socket

    import core.training.weights as weights

    with socket.socket() as s:  # a free port, closed again: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(weights, "BASE_URL", f"http://127.0.0.1:{port}/keras-applications/mobilenet_v2/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return weights
