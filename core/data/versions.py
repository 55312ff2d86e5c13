"""Dataset versions: exactly which photos and boxes a training used, what changed since, and a way back.

A version is a plain dict (stored as ``dataset.json`` in the model's folder)::

    {"hash": <store.dataset_hash>, "project", "task", "classes": [names in id order],
     "images": [{"id", "content", "filename", "width", "height", "split",
                 "annotations": [{"label", "box": [x0, y0, x1, y1] | None, "reviewed", "score"}]}]}

``hash`` is the same content hash the manifest's ``dataset_hash`` and the Ray snapshot use, so a
restored version can be checked against it. Photos are content-addressed in the store and stay
on disk when they are removed from a project, so a version can be restored later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.data.annotations import Annotation, Project
from core.data.boxes import Box
from core.data.store import NewImage, Store

FILENAME = "dataset.json"


class VersionError(ValueError):
    """A dataset version that cannot be read or restored, with the reason."""


def _ann(a: Annotation) -> dict[str, Any]:
    return {"label": a.label, "box": list(a.box.as_tuple()) if a.box is not None else None,
            "reviewed": a.reviewed, "score": a.score}


def _key(anns: list[dict]) -> list[tuple]:
    """Annotations compared as a sorted list (label, rounded box)."""
    return sorted((a["label"], tuple(round(float(v), 2) for v in a["box"]) if a["box"] else ())
                  for a in anns)


def dataset_version(store: Store, project: Project) -> dict[str, Any]:
    """The project's photos, splits and annotations right now, with their content hash."""
    records = store.list_images(project)
    images = []
    with store.connect() as conn:
        content = {r["image_id"]: r["content"] for r in conn.execute(
            "SELECT image_id, content FROM images WHERE project_id=?", (project.id,))}
    for r in records:
        images.append({"id": r.id, "content": content.get(r.id, r.id), "filename": r.filename,
                       "width": r.width, "height": r.height, "split": r.split,
                       "annotations": [_ann(a) for a in r.annotations]})
    return {"hash": store.dataset_hash(project), "project": project.name, "task": project.task.value,
            "classes": list(store.label_map(project).names), "images": images}


def write_version(folder: Path, version: dict[str, Any]) -> Path:
    from core.data.artefacts import write_json_atomic

    path = Path(folder) / FILENAME
    write_json_atomic(path, version)
    return path


def read_version(folder: Path) -> dict[str, Any]:
    path = Path(folder) / FILENAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VersionError(f"Model {Path(folder).name} has no dataset version (trained before versions were "
                           "recorded).") from None


def changes_since(version: dict[str, Any], store: Store, project: Project) -> dict[str, Any]:
    """What changed in ``project`` since ``version``: counts and the image ids.

    ``added``: photos now in the project that the version did not have; ``removed``: the reverse;
    ``relabelled``: photos in both whose boxes/labels differ; ``resplit``: same labels, other split."""
    now = dataset_version(store, project)
    old = {i["id"]: i for i in version["images"]}
    cur = {i["id"]: i for i in now["images"]}
    added = [i for i in cur if i not in old]
    removed = [i for i in old if i not in cur]
    relabelled = [i for i in cur if i in old and _key(cur[i]["annotations"]) != _key(old[i]["annotations"])]
    resplit = [i for i in cur if i in old and i not in relabelled and cur[i]["split"] != old[i]["split"]]
    return {"trained_on": len(old), "now": len(cur), "added": len(added), "removed": len(removed),
            "relabelled": len(relabelled), "resplit": len(resplit), "same": now["hash"] == version["hash"],
            "ids": {"added": added, "removed": removed, "relabelled": relabelled, "resplit": resplit}}


def describe(changes: dict[str, Any]) -> str:
    """``"trained on 180 photos; 45 added and 12 relabelled since"``."""
    head = f"trained on {changes['trained_on']} photo{'s' if changes['trained_on'] != 1 else ''}"
    if changes["same"]:
        return head + "; the dataset has not changed since"
    parts = [f"{changes[k]} {k}" for k in ("added", "relabelled", "removed", "resplit") if changes[k]]
    return head + "; " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + " since"


def restore(store: Store, version: dict[str, Any], name: str) -> Project:
    """A new project ``name`` holding exactly ``version`` (photos, splits, boxes, class order).

    The current project is left alone (nothing is lost). Raises VersionError when a photo's file
    is gone from the store, or the name is taken; the restored project's dataset hash equals
    ``version["hash"]``."""
    missing = [i["filename"] for i in version["images"] if not store.blob_path(i["content"]).exists()]
    if missing:
        raise VersionError(f"{len(missing)} photo(s) of this version are no longer stored (e.g. "
                           f"{', '.join(missing[:3])}); it cannot be restored.")
    if any(p.name == name for p in store.list_projects()):
        raise VersionError(f"A project named {name!r} exists already; choose another name.")
    project = store.create_project(name, version["task"])
    for cls in version["classes"]:
        store.add_class(project, cls)
    store.add_images(project, (
        NewImage(data=store.blob_path(i["content"]).read_bytes(), filename=i["filename"], width=i["width"],
                 height=i["height"], split=i["split"],
                 annotations=tuple(Annotation(a["label"], Box(*a["box"]) if a["box"] else None,
                                              a.get("reviewed", True), a.get("score"))
                                   for a in i["annotations"]))
        for i in version["images"]))
    got = store.dataset_hash(project)
    if got != version["hash"]:
        raise VersionError(f"The restored project {name!r} differs from the version (hash {got[:12]} instead "
                           f"of {version['hash'][:12]}).")
    return project
