"""Detection metrics with pycocotools: COCO mAP@[.5:.95], mAP@0.5, per-class AP and a PR curve,
for the float Keras model (numpy post-process, :mod:`postprocess`) and the int8 TFLite model
(``tf.lite.Interpreter``, outputs read by signature name) with the same thresholds.

Both are evaluated with the artefact's post-process settings (score threshold, NMS IoU, max
detections): the numbers describe the model as it is deployed, not an ideal low-threshold run.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.training.detection.postprocess import Detections, PostprocessConfig, postprocess

# (class index, x_min, y_min, x_max, y_max) per ground-truth box; per image
GroundTruth = Sequence[tuple[int, float, float, float, float]]
# (class index, score, x_min, y_min, x_max, y_max) per detection; per image
Predictions = Sequence[tuple[int, float, float, float, float, float]]


def coco_metrics(ground_truth: Sequence[GroundTruth], predictions: Sequence[Predictions],
                 class_names: Sequence[str], image_sizes: Sequence[tuple[int, int]]) -> dict:
    """COCO box metrics for images given as lists of pixel boxes.

    ``image_sizes``: ``(width, height)`` per image. Returns ``mAP`` (IoU .5:.95), ``mAP50``,
    ``mAP75``, ``per_class_AP`` and ``per_class_AP50`` ({name: AP or None when the class has no
    ground truth}), ``pr_curve`` (precision at 101 recall points, IoU 0.5, mean over classes),
    counts.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i, (w, h) in enumerate(image_sizes)]
    cats = [{"id": c + 1, "name": n} for c, n in enumerate(class_names)]
    gt_anns, dt_anns = [], []
    for i, boxes in enumerate(ground_truth):
        for c, x0, y0, x1, y1 in boxes:
            w, h = float(x1 - x0), float(y1 - y0)
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [float(x0), float(y0), w, h], "area": w * h, "iscrowd": 0})
    for i, dets in enumerate(predictions):
        for c, s, x0, y0, x1, y1 in dets:
            w, h = float(x1 - x0), float(y1 - y0)
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [float(x0), float(y0), w, h], "area": w * h, "iscrowd": 0,
                            "score": float(s)})
    recall_points = np.linspace(0.0, 1.0, 101)
    result: dict[str, Any] = {"num_images": len(images), "num_ground_truth": len(gt_anns),
                              "num_detections": len(dt_anns)}
    if not gt_anns:
        result.update(mAP=None, mAP50=None, mAP75=None, per_class_AP={n: None for n in class_names},
                      per_class_AP50={n: None for n in class_names},
                      pr_curve={"iou": 0.5, "recall": recall_points.tolist(), "precision": []})
        return result
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "categories": cats, "annotations": gt_anns}
        gt.createIndex()
        dt = COCO()
        dt.dataset = {"images": images, "categories": cats, "annotations": dt_anns}
        dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T iou, R recall, K class, A area, M maxDets]

    def mean_valid(a: np.ndarray) -> float | None:
        v = a[a > -1]
        return float(v.mean()) if v.size else None

    per_class, per_class50 = {}, {}
    for k, name in enumerate(class_names):
        per_class[name] = mean_valid(prec[:, :, k, 0, -1])
        per_class50[name] = mean_valid(prec[0, :, k, 0, -1])
    curve = prec[0, :, :, 0, -1]  # [R, K]
    valid = [k for k in range(curve.shape[1]) if (curve[:, k] > -1).any()]
    mean_curve = curve[:, valid].clip(min=0).mean(axis=1) if valid else np.zeros(len(recall_points))
    stats = [max(0.0, float(s)) for s in ev.stats]
    result.update(
        mAP=stats[0], mAP50=stats[1], mAP75=stats[2],
        per_class_AP=per_class, per_class_AP50=per_class50,
        pr_curve={"iou": 0.5, "recall": recall_points.tolist(),
                  "precision": [round(float(p), 4) for p in mean_curve]},
    )
    return result


def _to_pixel_predictions(d: Detections, width: int, height: int, resize: str) -> list:
    from core.training.detection.data import boxes_to_pixels

    px = boxes_to_pixels(d.boxes, width, height, resize)
    return [(int(c), float(s), *map(float, b)) for c, s, b in zip(d.classes, d.scores, px)]


def predict_float(model: Any, inputs: Sequence[np.ndarray], anchors: np.ndarray,
                  cfg: PostprocessConfig, batch_size: int = 8) -> list[Detections]:
    """Run the float Keras model (image -> [boxes, scores]) and post-process each image."""
    out = []
    for i in range(0, len(inputs), batch_size):
        batch = np.stack(inputs[i:i + batch_size]).astype(np.float32)
        enc, scores = model(batch, training=False)
        enc, scores = np.asarray(enc), np.asarray(scores)
        out.extend(postprocess(enc[j], scores[j], anchors, cfg) for j in range(len(batch)))
    return out


def predict_int8(tflite_path: str | Path, inputs: Sequence[np.ndarray]) -> list[Detections]:
    """Run the int8 TFLite model (with its own post-process op) on uint8 model inputs."""
    from core.training.detection.export import Int8Detector

    det = Int8Detector(tflite_path)
    out = []
    for x in inputs:
        b, c, s = det(x)
        out.append(Detections(b.astype(np.float32), c, s.astype(np.float32)))
    return out


def evaluate_examples(examples: Sequence[Any], cache: Any, labels: Sequence[str], image_size: int,
                      resize: str, anchors: np.ndarray, cfg: PostprocessConfig,
                      model: Any = None, tflite_path: str | Path | None = None) -> dict:
    """``{"float": metrics, "int8": metrics}`` (a key only for the model given) on examples."""
    from core.training.detection.data import model_input

    gts, sizes, inputs = [], [], []
    for e in examples:
        px = e.boxes.astype(np.float64) * [e.height, e.width, e.height, e.width]
        gts.append([(int(c), b[1], b[0], b[3], b[2]) for c, b in zip(e.labels, px)])
        sizes.append((e.width, e.height))
        inputs.append(model_input(cache.load(e.image_id), image_size, resize))
    res: dict[str, Any] = {}
    runs = []
    if model is not None:
        runs.append(("float", lambda: predict_float(model, inputs, anchors, cfg)))
    if tflite_path is not None:
        runs.append(("int8", lambda: predict_int8(tflite_path, inputs)))
    for key, run in runs:
        dets = run()
        preds = [_to_pixel_predictions(d, w, h, resize) for d, (w, h) in zip(dets, sizes)]
        res[key] = coco_metrics(gts, preds, labels, sizes)
    return res


def evaluate_detection(store: Any, project: Any, artefact_dir: str | Path, split: str = "test") -> dict:
    """Evaluate a published detection artefact on a split (``"train"``, ``"val"``, ``"test"`` or
    ``"all"``) of the project: ``{"float": {...}, "int8": {...}}``."""
    import keras

    from core.data import artefacts
    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.data import ImageCache, examples_from_records

    folder = Path(artefact_dir)
    m = artefacts.load_manifest(folder)
    if m.get("task") != "detection":
        raise ValueError(f"{folder} is not a detection model")
    labels = list(m["labels"])
    det = m["detection"]
    size = int(m["input_size"][0])
    anchors = generate_anchors(AnchorSpec.from_dict(det["anchor_spec"]))
    cfg = PostprocessConfig(det["score_threshold"], det["iou_threshold"], det["max_detections"])
    records = store.list_images(project, split=None if split in (None, "all") else split)
    examples = examples_from_records(records, labels)
    files = m.get("files", {})
    float_path = folder / files.get("float", artefacts.FLOAT_MODEL)
    int8_path = folder / files.get("int8", artefacts.INT8_MODEL)
    model = keras.saving.load_model(float_path, compile=False) if float_path.exists() else None
    cache = ImageCache(store, max_side=2 * size)
    out = evaluate_examples(examples, cache, labels, size, m.get("resize", "stretch"), anchors, cfg,
                            model=model, tflite_path=int8_path if int8_path.exists() else None)
    out["split"] = split
    return out
