"""Where a model came from: its parent model, the dataset version it saw, and fair comparisons.

``record_training`` runs after a training job published its model: it stores the dataset version
(``dataset.json``) and adds ``parent`` / ``dataset_version`` to the manifest. ``chain`` walks a
model's ancestors; ``evaluate_current`` evaluates any model on the project's *current* split
(cached per dataset hash in ``evaluations.json``), so parent and child are compared on the same
photos whatever each was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.data import artefacts
from core.data import versions

EVALUATIONS = "evaluations.json"


def record_training(ctx: Any, artefact_id: str, version: dict[str, Any]) -> None:
    """Write the dataset version and the lineage of a freshly published model."""
    folder = artefacts.artefact_path(ctx.store.root, artefact_id)
    versions.write_version(folder, version)
    updates: dict[str, Any] = {
        "dataset_version": {"hash": version["hash"], "images": len(version["images"]), "file": versions.FILENAME},
        "parent": getattr(ctx, "lineage", None),
    }
    balance = getattr(ctx, "class_balance", None)
    if balance is not None:
        updates["class_balance"] = balance
    artefacts.update_manifest(folder, **updates)


def chain(data_root: Path, model_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The model and its ancestors, newest first (manifests; a deleted ancestor ends the chain with
    ``{"id", "missing": True}``)."""
    out: list[dict[str, Any]] = []
    current: str | None = model_id
    while current and len(out) < limit:
        try:
            m = artefacts.load_manifest(artefacts.artefact_path(data_root, current))
        except artefacts.ArtefactError:
            out.append({"id": current, "missing": True})
            break
        out.append(m)
        current = (m.get("parent") or {}).get("id") or (m.get("hparams") or {}).get("init_from")
    return out


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The float/int8 headline numbers of an evaluation (mAP@0.5 or accuracy)."""
    out = {}
    for kind in ("float", "int8"):
        r = result.get(kind) or {}
        for key in ("mAP50", "accuracy"):
            if key in r:
                out[f"{kind}_{key}"] = r[key]
    return out


def evaluate_current(store: Any, model_id: str, project: Any, split: str = "val",
                     refresh: bool = False) -> dict[str, Any]:
    """The model's metrics on the project's current ``split`` (cached until the dataset changes)."""
    from core.training.evaluation import evaluate_artefact

    folder = artefacts.artefact_path(store.root, model_id)
    digest = store.dataset_hash(project)
    cache_path = folder / EVALUATIONS
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    key = f"{project.name}|{split}|{digest}"
    if key in cache and not refresh:
        return cache[key]
    result = evaluate_artefact(store, folder, project, split)
    brief = {"split": split, "dataset_hash": digest, "n_images": result.get("n_images"), **headline(result)}
    _count_unknown_classes(brief, result, artefacts.load_manifest(folder), store, project, split)
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{project.name}|{split}|")}
    cache[key] = brief
    artefacts.write_json_atomic(cache_path, cache)
    return brief


def _count_unknown_classes(brief: dict[str, Any], result: dict[str, Any], manifest: dict, store: Any,
                           project: Any, split: str) -> None:
    """A fair comparison on the current split: a detection class added since the model was trained
    counts as AP 0 for it (the model cannot find it), so mAP@0.5 averages over the current classes."""
    if manifest.get("task") != "detection":
        return
    known = set(manifest.get("labels") or [])
    records = store.list_images(project, split=None if split == "all" else split)
    present = sorted({a.label for r in records for a in r.boxes})  # classes with boxes in this split
    unknown = [c for c in present if c not in known]
    if not unknown:
        return
    brief["unknown_classes"] = unknown
    for kind in ("float", "int8"):
        per_class = (result.get(kind) or {}).get("per_class_AP50") or {}
        scored = [per_class.get(c) for c in present if c in known and per_class.get(c) is not None]
        if scored:
            brief[f"{kind}_mAP50"] = sum(scored) / (len(scored) + len(unknown))
