"""Annotations, image records, label maps and projects: the one data model."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from core.data.boxes import Box


class Task(str, Enum):
    """What a project's model does."""

    DETECTION = "detection"
    CLASSIFICATION = "classification"


SPLITS = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class Annotation:
    """One label on an image: a box (detection) or the image's class (``box is None``).

    ``reviewed`` is False for model predictions a person has not confirmed yet;
    ``score`` is the model's confidence for such predictions.
    """

    label: str
    box: Box | None = None
    reviewed: bool = True
    score: float | None = None


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image in a project. ``id`` is the sha256 of the file's bytes.

    A renamed copy of an image already in the project (same bytes, other name,
    possibly other boxes) is a separate record with its own id that shares the
    stored file; ``content`` is always the sha256 of the bytes.

    ``width``/``height`` are of the upright image (EXIF orientation applied);
    boxes are in those pixel coordinates.
    """

    id: str
    filename: str
    width: int
    height: int
    split: str = "train"
    annotations: tuple[Annotation, ...] = ()
    revision: int = 0
    reviewed: bool = True
    content: str = ""  # sha256 of the bytes (== id except for a renamed copy of another image)

    @property
    def boxes(self) -> list[Annotation]:
        return [a for a in self.annotations if a.box is not None]

    @property
    def class_label(self) -> str | None:
        """The image-level class (classification), if any."""
        for a in self.annotations:
            if a.box is None:
                return a.label
        return None

    @property
    def is_labelled(self) -> bool:
        return bool(self.annotations)


@dataclass
class LabelMap:
    """Class names with stable integer ids (adding a class never renumbers others)."""

    ids: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Names in id order."""
        return [n for n, _ in sorted(self.ids.items(), key=lambda kv: kv[1])]

    def id_of(self, name: str) -> int:
        return self.ids[name]

    def name_of(self, class_id: int) -> str:
        for n, i in self.ids.items():
            if i == class_id:
                return n
        raise KeyError(class_id)

    def add(self, name: str) -> int:
        """Id of ``name``, adding it with the next free id when new."""
        if name not in self.ids:
            self.ids[name] = max(self.ids.values(), default=-1) + 1
        return self.ids[name]

    def __contains__(self, name: object) -> bool:
        return name in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def contiguous(self) -> list[str]:
        """Names in id order, for a model's output index (index i = names[i])."""
        return self.names


@dataclass(frozen=True, slots=True)
class Project:
    """A named dataset with a task."""

    id: int
    name: str
    task: Task
    created: float
