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
    from core.store import Store

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
