"""The registry lists every format module with the agreed interface, in detection order."""

from __future__ import annotations

import pytest

from core.data.formats.registry import FORMATS, formats_for, get_format


def test_order_and_interface():
    assert list(FORMATS) == ["voc", "coco", "yolo", "csv", "folders"]
    for name, mod in FORMATS.items():
        assert mod.NAME == name
        assert set(mod.TASKS) <= {"detection", "classification"} and mod.TASKS
        assert callable(mod.detect) and callable(mod.parse) and callable(mod.export)


def test_lookup_helpers():
    assert get_format(" VOC ") is FORMATS["voc"]
    with pytest.raises(ValueError, match="use one of"):
        get_format("pascal")
    assert formats_for("classification") == ["csv", "folders"]
    assert formats_for("detection") == ["voc", "coco", "yolo", "csv"]
