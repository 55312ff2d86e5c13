"""Fixtures: tiny real models built once per session (TensorFlow is used only here, in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.coral_runtime import models as M


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("coral_models")


def _build(model_dir: Path, name: str, fn) -> Path:
    p = model_dir / f"{name}.tflite"
    if not p.exists():
        p.write_bytes(fn())
    return p


@pytest.fixture(scope="session")
def mobilenet_int8(model_dir) -> Path:
    """Our own classification graph: MobileNetV2 alpha 0.35 at 96 px, full int8, uint8 I/O."""
    return _build(model_dir, "mobilenet_v2", M.mobilenet_v2_classifier)


@pytest.fixture(scope="session")
def small_cls_int8(model_dir) -> Path:
    return _build(model_dir, "small_cls", lambda: M.convert_int8(M.small_classifier(), (32, 32, 3)))


@pytest.fixture(scope="session")
def detector_int8(model_dir) -> Path:
    return _build(model_dir, "detector", lambda: M.tiny_detector(model_dir))


@pytest.fixture(scope="session")
def colour_cls_int8(model_dir) -> Path:
    """A really trained tiny red/green/blue classifier (32 px, full int8)."""
    return _build(model_dir, "colour_cls", M.trained_colour_classifier)
