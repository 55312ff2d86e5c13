"""Job kinds: the function that runs each kind, and the modules that register kinds on import
(imported lazily, by name, when a job of that kind first runs)."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Callable

from core.jobs.states import JobError

if TYPE_CHECKING:
    from core.jobs.context import JobContext


# -- job kinds -------------------------------------------------------------------
JobFn = Callable[["JobContext", dict], "str | None"]
_KINDS: dict[str, JobFn] = {}
_KINDS_LOCK = threading.Lock()

#: kind -> module that registers it on import (imported lazily, by name, when first needed).
#: Layers above core add theirs with ``register_kind_module`` (core never names them).
KIND_MODULES: dict[str, str] = {
    "train": "core.training.jobs",
}


def register_kind_module(kind: str, module: str) -> None:
    """Declare that importing ``module`` registers job kind ``kind`` (for layers above core)."""
    with _KINDS_LOCK:
        KIND_MODULES[kind] = module


def register_job_kind(kind: str, fn: JobFn) -> None:
    """Register (or replace) the function that runs jobs of ``kind``; it returns an artefact id or None."""
    with _KINDS_LOCK:
        _KINDS[kind] = fn


def known_kinds() -> list[str]:
    return sorted(set(_KINDS) | set(KIND_MODULES))


def require_known(kind: str) -> None:
    """Raise JobError unless ``kind`` is registered or has a module that registers it."""
    if kind not in _KINDS and kind not in KIND_MODULES:
        raise JobError(f"Unknown job kind {kind!r} (known: {', '.join(known_kinds()) or 'none'}).")


def resolve_kind(kind: str) -> JobFn:
    """The function for ``kind``, importing its module from ``KIND_MODULES`` on first use."""
    fn = _KINDS.get(kind)
    if fn is not None:
        return fn
    module = KIND_MODULES.get(kind)
    if module is None:
        raise JobError(f"Unknown job kind {kind!r} (known: {', '.join(known_kinds()) or 'none'}).")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise JobError(f"Jobs of kind {kind!r} are not available here: {exc}") from exc
    fn = _KINDS.get(kind)
    if fn is None:
        raise JobError(f"Module {module} did not register job kind {kind!r}.")
    return fn
