"""Fixtures of the coral-profile tests: the pinned runtime's wheelhouse and a dummy libedgetpu .deb."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import runtime_pins as rp
from tests.builder import dummy_deb


@pytest.fixture(scope="session")
def coral_wheelhouse() -> Path:
    """ai-edge-litert 1.2.0 (the pin) + numpy, pillow and their dependencies (pip download once, cached)."""
    from builder.context import ensure_wheelhouse, runtime_requirements

    return ensure_wheelhouse(rp.coral_requirements(runtime_requirements()))


@pytest.fixture(scope="session")
def deb_folder(tmp_path_factory) -> Path:
    """A folder holding the dummy .deb under the pinned file name (dpkg-deb, built here)."""
    if not dummy_deb.can_build():
        pytest.skip("dpkg-deb and gcc are needed to build the dummy .deb")
    d = tmp_path_factory.mktemp("debs")
    dummy_deb.build_deb(d / "build")
    (d / "build" / rp.LIBEDGETPU.filename).rename(d / rp.LIBEDGETPU.filename)
    return d
