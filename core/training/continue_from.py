"""Continue training from a model of the project: copy its weights into a freshly built model.

Generic on purpose (the architecture changes under it): layers are matched by their *path name*
(``backbone/block_1_expand`` ...) and each weight by its position in the layer.

- same shape                 -> copied (backbone, box heads, every layer when the classes are the same)
- a class-output layer       -> the old classes' slices copied by class name, new classes keep their
                                fresh initialisation. A class-output weight has ``k * C`` entries on its
                                last axis (``k`` anchors per location for a detector head, 1 for a
                                classifier's Dense), parent ``k * C_old``, child ``k * C_new``.
- anything else              -> left as initialised, and reported.

A different input size or width is refused before anything is built (:func:`check_compatible`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import artefacts

CLASS_LAYER_HINTS = ("cls", "class", "probabilities", "logits")  # names of class-output layers


class ContinueError(ValueError):
    """A model that cannot be continued from, with the reason for the user."""


def parent_manifest(store: Any, model_id: str, project: str | None = None) -> tuple[Path, dict]:
    """The folder and manifest of model ``model_id`` (of ``project`` when given)."""
    try:
        folder = artefacts.artefact_path(store.root, model_id)
    except artefacts.ArtefactError:
        raise ContinueError(f"There is no model {model_id!r} to continue from.") from None
    m = artefacts.load_manifest(folder)
    if project is not None and m.get("project") != project:
        raise ContinueError(f"Model {model_id} belongs to project {m.get('project')!r}, not {project!r}.")
    return folder, m


def check_compatible(parent: dict, task: str, image_size: int, alpha: float) -> None:
    """Refuse a parent of another task, input size or width, naming both."""
    pid = parent.get("id")
    if parent.get("task") != task:
        raise ContinueError(f"Model {pid} is a {parent.get('task')} model; this is a {task} training.")
    p_size = int((parent.get("input_size") or [0])[0])
    p_alpha = float((parent.get("model") or {}).get("alpha", parent.get("hparams", {}).get("alpha", 0)))
    if p_size != int(image_size) or abs(p_alpha - float(alpha)) > 1e-9:
        raise ContinueError(
            f"Cannot continue from model {pid}: it takes {p_size}x{p_size} images at width (alpha) {p_alpha:g}, "
            f"this training is set to {int(image_size)}x{int(image_size)} at width {float(alpha):g}. "
            f"Choose {p_size} and {p_alpha:g} to continue from it, or start from ImageNet or from nothing.")


def _walk(model: Any, prefix: str = "") -> dict[str, Any]:
    """Every layer that owns weights, by its path name (nested models are entered)."""
    out: dict[str, Any] = {}
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        if getattr(layer, "layers", None):
            out.update(_walk(layer, path + "/"))
        elif layer.weights:
            out[path] = layer
    return out


def _class_slices(old: np.ndarray, new: np.ndarray, old_labels: Sequence[str],
                  new_labels: Sequence[str]) -> np.ndarray | None:
    """``new`` with the old classes' entries of ``old`` copied in (None when the shapes don't fit)."""
    c_old, c_new = len(old_labels), len(new_labels)
    if old.shape[:-1] != new.shape[:-1] or old.shape[-1] % c_old or new.shape[-1] % c_new:
        return None
    k = old.shape[-1] // c_old
    if new.shape[-1] // c_new != k:
        return None
    o = old.reshape(*old.shape[:-1], k, c_old)
    n = new.reshape(*new.shape[:-1], k, c_new).copy()
    index = {name: i for i, name in enumerate(old_labels)}
    for j, name in enumerate(new_labels):
        if name in index:
            n[..., j] = o[..., index[name]]
    return n.reshape(new.shape)


def transfer_weights(parent: Any, child: Any, old_labels: Sequence[str], new_labels: Sequence[str]) -> dict:
    """Copy ``parent``'s weights into ``child`` (see the module docstring); returns a report
    ``{"copied", "class_sliced", "reinitialised": [layer paths], "new_classes", "dropped_classes"}``."""
    same_classes = list(old_labels) == list(new_labels)
    p_layers, c_layers = _walk(parent), _walk(child)
    copied, sliced, fresh = 0, [], []
    for path, layer in c_layers.items():
        src = p_layers.get(path)
        if src is None or len(src.weights) != len(layer.weights):
            fresh.append(path)
            continue
        values: list | None = []
        # same number of classes but other names/order: the class outputs still need remapping
        hinted = type(layer).__name__ in ("Conv2D", "Dense") and any(h in path.lower() for h in CLASS_LAYER_HINTS)
        remap = hinted and not same_classes
        was_sliced = False
        for w_old, w_new in zip(src.get_weights(), layer.get_weights()):
            if w_old.shape == w_new.shape and not remap:
                values.append(w_old)
                continue
            merged = _class_slices(w_old, w_new, old_labels, new_labels) if hinted else None
            if merged is None and w_old.shape == w_new.shape:
                merged = w_old
            elif merged is not None:
                was_sliced = True
            if merged is None:
                values = None
                break
            values.append(merged)
        if values is None:
            fresh.append(path)
            continue
        layer.set_weights(values)
        if was_sliced:
            sliced.append(path)
        else:
            copied += 1
    return {"copied": copied, "class_sliced": sliced, "reinitialised": fresh,
            "new_classes": [n for n in new_labels if n not in old_labels],
            "dropped_classes": [n for n in old_labels if n not in new_labels]}


def continue_from(ctx: Any, model: Any, hp: Any, task: str, labels: Sequence[str]) -> dict | None:
    """The trainers' hook: when ``hp.init_from`` names a model, check it fits and copy its weights
    into ``model`` (the inference model, sharing its layers with the training model). Returns the
    lineage record for the manifest (None without a parent)."""
    model_id = getattr(hp, "init_from", None)
    if not model_id:
        return None
    import keras

    folder, parent = parent_manifest(ctx.store, model_id)
    check_compatible(parent, task, int(hp.image_size), float(hp.alpha))
    old_labels = list(parent.get("labels") or [])
    src = keras.saving.load_model(folder / parent.get("files", {}).get("float", artefacts.FLOAT_MODEL),
                                  compile=False)
    report = transfer_weights(src, model, old_labels, labels)
    ctx.log(f"continuing from model {model_id}: {report['copied']} layers copied, "
            f"{len(report['class_sliced'])} class layers sliced (new classes: {report['new_classes'] or 'none'}), "
            f"{len(report['reinitialised'])} layers left as initialised")
    return {"id": model_id, "labels": old_labels, "created": parent.get("created"),
            "dataset_hash": parent.get("dataset_hash"), "metrics": _headline(parent), **report}


def _headline(manifest: dict) -> dict:
    m = manifest.get("metrics") or {}
    f = m.get("float") or {}
    return {k: f.get(k) for k in ("mAP50", "accuracy") if k in f} | {"split": m.get("split")}
