"""The format modules by name, in detection order (earlier wins a tie)."""

from __future__ import annotations

from types import ModuleType

from core.data.formats import coco, csv, folders, voc, yolo

FORMATS: dict[str, ModuleType] = {
    "voc": voc,
    "coco": coco,
    "yolo": yolo,
    "csv": csv,
    "folders": folders,
}


def get_format(name: str) -> ModuleType:
    """The module of format ``name``; ValueError listing the known names otherwise."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}") from None


def formats_for(task: str) -> list[str]:
    """Names of the formats that can carry ``task`` ("detection" / "classification")."""
    return [n for n, m in FORMATS.items() if task in m.TASKS]
