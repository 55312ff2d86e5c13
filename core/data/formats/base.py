"""Neutral structures shared by the format modules: raw boxes, parsed images, issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.data.annotations import ImageRecord


@dataclass(frozen=True, slots=True)
class RawBox:
    """A box as written in an annotation file, before validation against the image.

    ``normalized`` boxes are corners in [0, 1] of the upright image; others are pixels.
    Coordinates may be anything (NaN, outside, inverted): the importer validates.
    """

    label: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    normalized: bool = False


@dataclass
class ParsedImage:
    """One image named by an annotation source, with what the source says about it."""

    ref: str  # resolved path of the image inside the Source (posix), or the name as written
    boxes: list[RawBox] = field(default_factory=list)
    label: str | None = None  # image-level class (classification)
    split: str | None = None  # train / val / test when the format says so
    declared_size: tuple[int, int] | None = None  # (width, height) as written, if any
    origin: str = ""  # the annotation file (and line) this came from, for the report


@dataclass(frozen=True, slots=True)
class Issue:
    """Something skipped, repaired or ignored during import, with its reason."""

    item: str  # file, or file:line / file#object (or a summary of several ignored files)
    reason: str
    action: str = "skipped"  # skipped | clipped | repaired | refused | kept | ignored


@dataclass
class ParseResult:
    images: list[ParsedImage] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # declared class order, if the format has one
    issues: list[Issue] = field(default_factory=list)
    # the non-image files the format took as its own (annotation files, class lists, split lists);
    # the importer reports every other non-image file of the source as ignored
    used: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ExportItem:
    """An image to export: its record and a way to get its bytes."""

    record: ImageRecord
    read_bytes: Callable[[], bytes]
    extension: str = ".jpg"  # file extension matching the bytes (".jpg", ".png", …)

    @property
    def export_name(self) -> str:
        """Unique file name in the export: ``<stem>_<id8><ext>``.

        A stem that already ends in this image's ``_<id8>`` (an earlier export) is
        not suffixed again, so names stay stable over repeated round trips.
        """
        stem = Path(self.record.filename).stem or "image"
        tag = f"_{self.record.id[:8]}"
        return f"{stem.removesuffix(tag)}{tag}{self.extension}"


class FormatError(ValueError):
    """The whole input is unusable in this format (refused, nothing imported)."""


class UnsafeInputError(FormatError):
    """Hostile input (XML entity expansion, external entities, …): the whole import is refused."""
