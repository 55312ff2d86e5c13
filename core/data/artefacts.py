"""Model artefacts: one folder per trained model, with manifest.json as its index.

    <data>/models/<artefact_id>/
        manifest.json             task, labels, input size, hparams, dataset hash, metrics, preflight…
        model_float.keras
        model_int8.tflite
        model_int8_edgetpu.tflite (when compiled)
        labels.txt

A job builds its artefact in ``<data>/models/.partial-<id>/`` and publishes it with
an atomic rename, so a cancelled, failed or killed job never leaves a folder
that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FLOAT_MODEL = "model_float.keras"
INT8_MODEL = "model_int8.tflite"
EDGETPU_MODEL = "model_int8_edgetpu.tflite"
LABELS = "labels.txt"
SCHEMA_VERSION = 1


class ArtefactError(Exception):
    """A missing or unreadable artefact."""


def models_dir(data_root: Path) -> Path:
    d = Path(data_root) / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_artefact_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def partial_dir(data_root: Path, artefact_id: str) -> Path:
    """A fresh working folder for an artefact being built."""
    d = models_dir(data_root) / f".partial-{artefact_id}"
    d.mkdir(parents=True, exist_ok=False)
    return d


def publish(data_root: Path, partial: Path, artefact_id: str) -> Path:
    """Move a finished partial folder into place atomically; returns the final folder."""
    if not (partial / MANIFEST).exists():
        raise ArtefactError("an artefact needs a manifest before it is published")
    final = models_dir(data_root) / artefact_id
    os.replace(partial, final)
    return final


def discard_partials(data_root: Path, keep: set[str] | None = None) -> list[str]:
    """Delete partial folders (left by dead or cancelled jobs); returns their ids."""
    removed = []
    for d in models_dir(data_root).glob(".partial-*"):
        aid = d.name.removeprefix(".partial-")
        if keep and aid in keep:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(aid)
    return removed


def write_json_atomic(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def write_labels(folder: Path, labels: list[str]) -> None:
    (folder / LABELS).write_text("".join(f"{n}\n" for n in labels), encoding="utf-8")


def load_manifest(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / MANIFEST
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError(f"{folder} is not a model folder (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{p} is unreadable: {exc}") from None


def update_manifest(folder: str | Path, **updates: Any) -> dict[str, Any]:
    """Merge top-level keys into a manifest (e.g. preflight, compiler) atomically."""
    m = load_manifest(folder)
    m.update(updates)
    write_json_atomic(Path(folder) / MANIFEST, m)
    return m


def list_artefacts(data_root: Path, project: str | None = None) -> list[dict[str, Any]]:
    """Manifests of published artefacts, newest first (each with its ``path``)."""
    out = []
    for d in models_dir(data_root).iterdir():
        if d.name.startswith(".") or not (d / MANIFEST).exists():
            continue
        try:
            m = load_manifest(d)
        except ArtefactError:
            continue
        if project and m.get("project") != project:
            continue
        m["path"] = str(d)
        out.append(m)
    out.sort(key=lambda m: m.get("created", 0), reverse=True)
    return out


def delete_artefacts(data_root: Path, project: str) -> list[str]:
    """Remove every published model of ``project`` (when the project itself is deleted: no page
    could reach them any more, and a new project of the same name would inherit them).
    Returns the ids removed."""
    removed = []
    for m in list_artefacts(data_root, project):
        folder = Path(m["path"])
        trash = folder.with_name(f".deleting-{folder.name}")
        folder.rename(trash)  # atomic: a model is listed whole or not at all
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(str(m.get("id") or folder.name))
    return removed


def artefact_path(data_root: Path, artefact_id: str) -> Path:
    p = models_dir(data_root) / artefact_id
    if not (p / MANIFEST).exists():
        raise ArtefactError(f"No model {artefact_id!r}.")
    return p


# -- hooks run after an artefact is published --------------------------------
# core cannot import coral_runtime; entry points (pages/_shared, the CLI, the Ray
# worker) call ``coral_runtime.hooks.install()``, which registers the Edge TPU
# preflight (and the compiler where it exists) here.
_POST_PUBLISH_HOOKS: list = []


def register_post_publish_hook(fn) -> None:
    """Run ``fn(artefact_folder: Path) -> None`` after each publish (idempotent per function)."""
    if fn not in _POST_PUBLISH_HOOKS:
        _POST_PUBLISH_HOOKS.append(fn)


def run_post_publish_hooks(folder: Path, log=print) -> None:
    """Run the registered hooks; a failing hook is logged and never loses the artefact."""
    for fn in list(_POST_PUBLISH_HOOKS):
        try:
            fn(Path(folder))
        except Exception as exc:  # noqa: BLE001 - a hook must not break a finished model
            log(f"post-publish step {getattr(fn, '__name__', fn)} failed: {exc}")


def build_artefact(data_root: Path, build, log=print) -> str:
    """Run ``build(artefact_id, partial_folder) -> published_folder`` and the post-publish hooks.

    The partial folder is removed when ``build`` fails or is cancelled, so nothing half-made is
    left that looks like a model. Returns the artefact id.
    """
    aid = new_artefact_id()
    partial = partial_dir(data_root, aid)
    try:
        folder = build(aid, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    run_post_publish_hooks(folder, log=log)
    return aid
