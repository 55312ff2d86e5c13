"""The store's records and errors: what an import hands in (NewImage), what it gets back
(AddResult), the user-facing errors, and the JSON form of annotations in the history table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from core.data.annotations import Annotation
from core.data.boxes import Box


class StoreError(Exception):
    """A store operation that cannot be done, with a message for the user."""


class ConflictError(StoreError):
    """Someone else saved the image since it was loaded (revision mismatch)."""

    def __init__(self, image_id: str, expected: int, actual: int):
        super().__init__(
            f"This image was changed elsewhere since it was opened (now at revision {actual}, the edit was "
            f"made on revision {expected}). Load the latest version before editing again."
        )
        self.image_id, self.expected, self.actual = image_id, expected, actual


@dataclass(frozen=True)
class NewImage:
    """An image ready to be added: bytes already validated, annotations in upright pixels."""

    data: bytes
    filename: str
    width: int
    height: int
    annotations: Sequence[Annotation] = ()
    split: str | None = None  # None: assigned by the stratified split


@dataclass
class AddResult:
    images_added: int = 0
    images_existing: int = 0
    boxes_added: int = 0
    labels_added: int = 0
    unlabelled_added: int = 0
    classes_added: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (filename, same pixels as filename)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ann_to_json(anns: Iterable[Annotation]) -> str:
    out = []
    for a in anns:
        d: dict = {"label": a.label, "reviewed": a.reviewed}
        if a.box is not None:
            d["box"] = list(a.box.as_tuple())
        if a.score is not None:
            d["score"] = a.score
        out.append(d)
    return json.dumps(out)


def _ann_from_json(text: str) -> list[Annotation]:
    return [
        Annotation(
            label=d["label"],
            box=Box(*d["box"]) if d.get("box") else None,
            reviewed=d.get("reviewed", True),
            score=d.get("score"),
        )
        for d in json.loads(text)
    ]
