"""Evaluation of model artefacts: accuracy, per-class precision/recall, confusion matrix.

The float Keras model and the int8 TFLite model are evaluated on the same images, so the
cost of quantisation is visible. Detection artefacts are delegated to the detection part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import artefacts
from core.data.annotations import Project


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """``accuracy``, ``per_class`` {name: {precision, recall, f1, support}}, ``confusion_matrix`` (rows = true)."""
    k = len(labels)
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((k, k), dtype=np.int64)
    if len(yt):
        np.add.at(cm, (yt, yp), 1)
    per_class = {}
    for i, name in enumerate(labels):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    n = int(len(yt))
    return {
        "accuracy": float((yt == yp).mean()) if n else 0.0,
        "n": n,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def predict_float(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class probabilities of a Keras model for uint8 images (N, H, W, 3)."""
    if len(images) == 0:
        return np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)
    # direct calls: no tf.function tracing (model.predict spends seconds on it for small sets)
    out = [np.asarray(model(images[i:i + batch_size].astype(np.float32), training=False))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


def predict_int8(tflite_path: str | Path, images: np.ndarray) -> np.ndarray:
    """Dequantised class scores of the int8 .tflite for raw uint8 images."""
    from core.training.int8 import run_tflite

    return run_tflite(tflite_path, images)


def compare_float_int8(model, tflite_path: str | Path, images: np.ndarray, y_true: Sequence[int],
                       labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of the float and int8 models on the same images, plus how often they agree."""
    pf = predict_float(model, images).argmax(-1) if len(images) else np.zeros(0, np.int64)
    pq = predict_int8(tflite_path, images).argmax(-1) if len(images) else np.zeros(0, np.int64)
    return {
        "float": classification_metrics(y_true, pf, labels),
        "int8": classification_metrics(y_true, pq, labels),
        "agreement": float((pf == pq).mean()) if len(images) else 0.0,
    }


def evaluate_artefact(store, artefact_dir: str | Path, project: Project | str, split: str = "test",
                      ) -> dict[str, Any]:
    """Evaluate a published model on a split (``train``/``val``/``test``/``all``) of ``project``.

    Classification: ``{"float": metrics, "int8": metrics, "agreement", "split", "n_images",
    "skipped"}``; detection is delegated to ``core.training.detection.evaluate.evaluate_detection``.
    """
    artefact_dir = Path(artefact_dir)
    manifest = artefacts.load_manifest(artefact_dir)
    if isinstance(project, str):
        project = store.get_project(project)
    if split not in ("train", "val", "test", "all"):
        raise ValueError(f"Unknown split {split!r}; use train, val, test or all.")
    if manifest.get("task") == "detection":
        from core.training.detection.evaluate import evaluate_detection

        return evaluate_detection(store, project, artefact_dir, split)
    return _evaluate_classification(store, artefact_dir, manifest, project, split)


def _evaluate_classification(store, folder: Path, manifest: dict, project: Project, split: str) -> dict:
    import keras

    from core.training.data import collect_examples, load_images, reviewed_class

    labels = list(manifest["labels"])
    size = int(manifest["input_size"][0])
    data = collect_examples(store, project, labels=labels)
    examples = data.split(split)
    all_labelled = sum(1 for r in store.list_images(project, split=None if split == "all" else split)
                       if reviewed_class(r) is not None)
    images = load_images(store, examples, size)
    y = [e.label for e in examples]
    files = manifest.get("files", {})
    model = keras.models.load_model(folder / files.get("float", artefacts.FLOAT_MODEL), compile=False)
    result = compare_float_int8(model, folder / files.get("int8", artefacts.INT8_MODEL), images, y, labels)
    result.update({"split": split, "n_images": len(examples), "skipped": all_labelled - len(examples),
                   "artefact": manifest.get("id"), "project": project.name, "task": "classification"})
    return result
