"""Exports for a download button: run core.data.exporter into a temporary zip and hand back its bytes."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from core.data.annotations import Project
from core.data.store import Store


def export_zip(store: Store, project: Project, fmt: str) -> tuple[str, bytes, dict]:
    """``(file name, zip bytes, exporter summary)`` of the project in format ``fmt``."""
    from core.data.exporter import export_project  # late: written by another part, may be missing

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", project.name).strip("-") or "project"
    name = f"{slug}-{fmt}.zip"
    with tempfile.TemporaryDirectory(prefix="studio-export-") as tmp:
        out = Path(tmp) / name
        summary = export_project(store, project, fmt, out)
        return name, out.read_bytes(), dict(summary or {})
