"""Helpers for the training tests: a small digits project in a Store, a stand-in job context."""

from __future__ import annotations

import threading
from pathlib import Path

from core.data.annotations import Annotation, Project
from core.data.imaging import probe_image
from core.data.store import NewImage, Store


def add_digits(store: Store, digits_dir: Path, classes=("0", "1", "2"), per_class: int = 12,
               name: str = "digits") -> Project:
    """A classification project with ``per_class`` images of each digit class, split 60/20/20."""
    project = store.create_project(name, "classification")
    items = []
    for cls in classes:
        for path in sorted((digits_dir / cls).iterdir())[:per_class]:
            data = path.read_bytes()
            info = probe_image(data)
            items.append(NewImage(data=data, filename=f"{cls}/{path.name}", width=info.width,
                                  height=info.height, annotations=(Annotation(label=cls),)))
    store.add_images(project, items)
    store.assign_splits(project, (0.6, 0.2, 0.2))
    return project


class FakeContext:
    """The JobContext interface of core/jobs/, recording events (for trainer unit tests)."""

    def __init__(self, store: Store, work_dir: Path, cancel_after_batches: int | None = None):
        self.job_id = "test-job"
        self.store = store
        self.work_dir = Path(work_dir)
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cancel = threading.Event()
        self.cancel_after_batches = cancel_after_batches
        self.checks = 0

    def progress(self, **kw) -> None:
        self.events.append(kw)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        self.checks += 1
        if any(e.get("step") for e in self.events) and self.cancel_after_batches is not None:
            if sum(1 for e in self.events if e.get("step")) >= self.cancel_after_batches:
                self._cancel.set()
        if self._cancel.is_set():
            try:
                from core.jobs import JobCancelled
            except ImportError:  # core/jobs/ not there yet
                raise KeyboardInterrupt("cancelled") from None
            raise JobCancelled("cancelled")
