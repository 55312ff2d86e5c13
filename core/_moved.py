"""Old module names of core (before the rooms of 0.2) still import, with a DeprecationWarning.

``import core.store`` gives the very module object ``core.data.store`` (one module, two names), so
code written against the old layout, e.g. on a branch merged later, keeps working for a release.
The project itself uses the new names only (tests/test_import_rules.py checks it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

_DATA = ("annotations", "artefacts", "boxes", "db", "demo", "exporter", "formats", "imaging", "importer",
         "labeling", "render", "settings", "snapshot", "sources", "split", "store")
MOVED: dict[str, str] = {f"core.{name}": f"core.data.{name}" for name in _DATA}
MOVED.update({"core.ray_runner": "core.jobs.ray_runner", "core.remote": "core.jobs.remote",
              "core.export": "core.training.int8", "core.evaluate": "core.training.evaluation"})


def new_name(old: str) -> str | None:
    """The current name of a module known by its old name (submodules included), or None."""
    for before, after in MOVED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before):]
    return None


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        return importlib.util.spec_from_loader(fullname, self) if new_name(fullname) else None

    def create_module(self, spec):  # noqa: ANN001
        new = new_name(spec.name)
        warnings.warn(f"{spec.name} moved to {new}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:  # noqa: ANN001
        """The module ran under its new name already."""


def install() -> None:
    """Let the old names import (once per process). First in line: a submodule of a moved package
    (``core.formats.voc``) would otherwise load a second time under its old name."""
    if not any(isinstance(f, _OldNames) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldNames())
