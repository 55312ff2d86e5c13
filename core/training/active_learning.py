"""Label what matters next: rank photos by a trained model's uncertainty and its disagreement with labels.

Two lists from one pass of the model (float Keras, CPU) over the project's photos:

- **next to label** (photos without reviewed labels: unlabelled, or only unconfirmed predictions):
  uncertainty = mean over its detections (score >= ``LOW``) of ``1 - |2s - 1|`` (1 at s = 0.5, 0 at
  0 or 1), or ``1 - (p1 - p2)`` (top-2 margin) for a classifier. A photo where the model finds
  nothing scores ``NOTHING_FOUND`` (worth a look, less than a real doubt).
- **likely mistakes** (photos with reviewed labels), detection: a confident prediction
  (score >= ``CONFIDENT``) that overlaps no labelled box (IoU >= 0.3) -- a missing box, or one of
  another class -- adds its score; a labelled box the model never finds (no same-class
  prediction at IoU >= 0.1 with score >= ``LOW``) adds ``1 - best score``. Classification: the
  model's probability of its own prediction when it differs from the label.

Every item says why (``reasons``) so the Label / Dataset pages can show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.data import artefacts
from core.data.boxes import Box

LOW = 0.1
CONFIDENT = 0.5
NOTHING_FOUND = 0.3
MATCH_IOU = 0.3  # a confident prediction this close to a box is that box (a loose box is no label error)
FOUND_IOU = 0.1  # a labelled box "found" by any same-class prediction overlapping it this much


def _reviewed_boxes(record) -> list:
    return [a for a in record.annotations if a.box is not None and a.reviewed]


def _has_reviewed_label(record, task: str) -> bool:
    if task == "detection":
        return bool(_reviewed_boxes(record))
    return any(a.box is None and a.reviewed for a in record.annotations)


def detection_scores(preds: list[tuple[str, float, Box]], labelled: list[tuple[str, Box]]) -> dict[str, Any]:
    """Uncertainty and mistake score of one photo from its predictions ``(label, score, box)``
    (pixels) and its labelled boxes ``(label, box)``."""
    confident = [p for p in preds if p[1] >= CONFIDENT]
    doubtful = [p for p in preds if p[1] >= LOW]
    uncertainty = (float(np.mean([1 - abs(2 * s - 1) for _, s, _ in doubtful])) if doubtful else NOTHING_FOUND)
    mistake, reasons = 0.0, []
    for label, score, box in confident:
        hits = [(lab, box.iou(b)) for lab, b in labelled if box.iou(b) >= MATCH_IOU]
        if not hits:
            mistake += score
            reasons.append(f"the model sees a {label} ({score:.2f}) where there is no box")
        elif all(lab != label for lab, _ in hits):
            mistake += score
            reasons.append(f"the model sees a {label} ({score:.2f}) where the box says {hits[0][0]}")
    for label, b in labelled:
        best = max((s for lab, s, pb in preds if lab == label and pb.iou(b) >= FOUND_IOU), default=0.0)
        if best < LOW:
            mistake += 1.0 - best
            reasons.append(f"the model never finds the {label} box at "
                           f"({b.x_min:.0f}, {b.y_min:.0f}, {b.x_max:.0f}, {b.y_max:.0f})")
    return {"uncertainty": uncertainty, "mistake": mistake, "reasons": reasons}


def classification_scores(probs: np.ndarray, labels: list[str], label: str | None) -> dict[str, Any]:
    """Uncertainty (top-2 margin) and mistake score of one photo from the class probabilities."""
    order = np.argsort(probs)[::-1]
    p1 = float(probs[order[0]])
    p2 = float(probs[order[1]]) if len(order) > 1 else 0.0
    pred = labels[int(order[0])]
    out = {"uncertainty": 1.0 - (p1 - p2), "mistake": 0.0, "reasons": []}
    if label is not None and label != pred:
        out["mistake"] = p1
        out["reasons"].append(f"the model says {pred} ({p1:.2f}), the label says {label}")
    return out


def _predict_detection(store, records, folder: Path, m: dict) -> list[list[tuple[str, float, Box]]]:
    import keras

    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.data import ImageCache, boxes_to_pixels, model_input
    from core.training.detection.evaluate import predict_float
    from core.training.detection.postprocess import PostprocessConfig

    labels, size, resize = list(m["labels"]), int(m["input_size"][0]), m.get("resize", "stretch")
    det = m["detection"]
    anchors = generate_anchors(AnchorSpec.from_dict(det["anchor_spec"]))
    cfg = PostprocessConfig(LOW, det["iou_threshold"], max(20, int(det["max_detections"])))
    model = keras.saving.load_model(folder / m.get("files", {}).get("float", artefacts.FLOAT_MODEL), compile=False)
    cache = ImageCache(store, max_side=2 * size)
    out = []
    for i in range(0, len(records), 16):
        chunk = records[i:i + 16]
        inputs = [model_input(cache.load(r.id), size, resize) for r in chunk]
        for r, d in zip(chunk, predict_float(model, inputs, anchors, cfg)):
            px = boxes_to_pixels(d.boxes, r.width, r.height, resize)
            out.append([(labels[int(c)], float(s), Box(*map(float, b)).clip(r.width, r.height))
                        for c, s, b in zip(d.classes, d.scores, px) if 0 <= int(c) < len(labels)])
    return out


def _predict_classification(store, records, folder: Path, m: dict) -> np.ndarray:
    import keras

    from core.training.evaluation import predict_float
    from core.training.data import Example, load_images

    size = int(m["input_size"][0])
    model = keras.saving.load_model(folder / m.get("files", {}).get("float", artefacts.FLOAT_MODEL), compile=False)
    images = load_images(store, [Example(r.id, r.filename, 0, r.split or "train") for r in records], size)
    return predict_float(model, images)


def rank_photos(store, project, model_id: str, *, split: str | None = None) -> dict[str, list[dict]]:
    """``{"next": [...], "mistakes": [...]}``: photo items sorted most useful / most suspicious first.

    Each item: ``image_id, filename, split, score, uncertainty, mistake, reasons``."""
    folder = artefacts.artefact_path(store.root, model_id)
    m = artefacts.load_manifest(folder)
    task = m.get("task")
    if task != project.task.value:
        raise ValueError(f"Model {model_id} is a {task} model; project {project.name!r} is {project.task.value}.")
    records = store.list_images(project, split=split)
    labels = list(m["labels"])
    if task == "detection":
        preds = _predict_detection(store, records, folder, m)
        scored = [detection_scores(p, [(a.label, a.box) for a in _reviewed_boxes(r)])
                  for r, p in zip(records, preds)]
    else:
        probs = _predict_classification(store, records, folder, m)
        scored = []
        for r, p in zip(records, probs):
            label = next((a.label for a in r.annotations if a.box is None and a.reviewed), None)
            scored.append(classification_scores(p, labels, label))
    nxt, mistakes = [], []
    for r, s in zip(records, scored):
        item = {"image_id": r.id, "filename": r.filename, "split": r.split, **s}
        if _has_reviewed_label(r, task):
            if s["mistake"] > 0:
                mistakes.append({**item, "score": s["mistake"]})
        else:
            nxt.append({**item, "score": s["uncertainty"]})
    nxt.sort(key=lambda i: -i["score"])
    mistakes.sort(key=lambda i: -i["score"])
    return {"next": nxt, "mistakes": mistakes, "model": model_id}
