"""Helpers shared by the benchmarks: a training run read back, medians, and the untrained models
the latency benchmarks (``bench_preview``, ``bench_builder``) measure, built once per output folder."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainedRun:
    """A finished training job with what the benchmarks read from its artefact."""

    folder: Path
    manifest: dict
    job_seconds: float
    train_images: int
    steady_epoch_seconds: float | None  # median epoch time after the first (graph building) epoch


def train_and_read(store, project, task: str, hparams: dict) -> TrainedRun:
    """Run a "train" job in the foreground (as the CLI does) and read its artefact's manifest."""
    from core.data import artefacts
    from core.jobs import JobState, run_foreground

    t = time.perf_counter()
    job = run_foreground(store, "train", {"task": task, "project": project.name, "hparams": hparams})
    job_s = time.perf_counter() - t
    if job.state != JobState.SUCCEEDED:
        raise RuntimeError(f"training failed: {job.error}")
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    epoch_s = m["training"].get("epoch_seconds") or []
    steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else None
    return TrainedRun(folder, m, job_s, m["dataset"]["train"], steady)


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


# -- untrained studio models (latency does not depend on the weights) --------------------------------
def shared_models_dir(out_dir: Path) -> Path:
    """Where the benchmarks of one ``make bench`` run keep the models they share (beside their outputs)."""
    return Path(out_dir).parent / "_models"


def untrained_detector(models_dir: Path, size: int, alpha: float = 1.0,
                       labels: tuple[str, ...] = ("raccoon", "dog")) -> Path:
    """An artefact folder with the studio's SSDLite MobileNetV2 detector (``core.training.detection``,
    untrained) in int8 with the fused post-process op at ``size`` px, letterbox; score threshold 0 so
    that all 20 detections come back (the worst case to decode and serialise). Built once."""
    import numpy as np

    from core.data import artefacts
    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.export import OUTPUTS, export_int8
    from core.training.detection.model import build_detector
    from core.training.detection.postprocess import PostprocessConfig

    folder = Path(models_dir) / f"detector_{size}_a{alpha:g}_{len(labels)}"
    if (folder / "manifest.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    det = build_detector(len(labels), image_size=size, alpha=alpha)
    anchors = generate_anchors(AnchorSpec(feature_sizes=det.feature_sizes))
    cfg = PostprocessConfig(score_threshold=0.0, iou_threshold=0.5, max_detections=20)
    reps = [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(8)]
    info = export_int8(det.model, anchors, reps, folder / artefacts.INT8_MODEL, len(labels), cfg,
                       work_dir=folder.parent)
    artefacts.write_labels(folder, list(labels))
    q = info["input"]
    artefacts.write_json_atomic(folder / artefacts.MANIFEST, {
        "schema_version": 1, "id": f"bench-detector-{size}", "task": "detection", "project": "bench",
        "labels": list(labels), "input_size": [size, size], "resize": "letterbox", "created": time.time(),
        "dataset_hash": "0" * 16, "files": {"int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        "quantization": {"input": {"scale": q.get("scale"), "zero_point": q.get("zero_point"), "dtype": "uint8"}},
        "detection": {**cfg.to_dict(), "anchors": int(len(anchors)), "outputs": dict(OUTPUTS),
                      "letterbox_anchor": "top-left"},
        "model": {"architecture": "SSDLite MobileNetV2", "alpha": alpha, "weights": "untrained"},
    })
    return folder


def untrained_classifier(models_dir: Path, size: int, alpha: float = 1.0,
                         labels: tuple[str, ...] = ("raccoon", "dog", "cat")) -> Path:
    """An artefact folder with the studio's MobileNetV2 classifier (``core.training.classification``,
    untrained) in int8 at ``size`` px. Built once."""
    import numpy as np

    from core.data import artefacts
    from core.training.int8 import convert_int8
    from core.training.classification import build_model
    from core.training.hparams import ClassificationHParams

    folder = Path(models_dir) / f"classifier_{size}_a{alpha:g}_{len(labels)}"
    if (folder / "manifest.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(len(labels), ClassificationHParams(image_size=size, alpha=alpha))
    reps = [np.random.default_rng(i).integers(0, 256, (size, size, 3)).astype(np.float32) for i in range(8)]
    info = convert_int8(model, reps, folder / artefacts.INT8_MODEL)
    artefacts.write_labels(folder, list(labels))
    q = info["inputs"][0] if "inputs" in info else {}
    artefacts.write_json_atomic(folder / artefacts.MANIFEST, {
        "schema_version": 1, "id": f"bench-classifier-{size}", "task": "classification", "project": "bench",
        "labels": list(labels), "input_size": [size, size], "resize": "stretch", "created": time.time(),
        "dataset_hash": "0" * 16, "files": {"int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        "quantization": {"input": {"scale": q.get("scale"), "zero_point": q.get("zero_point"), "dtype": "uint8"}},
        "model": {"architecture": "MobileNetV2", "alpha": alpha, "weights": "untrained"},
    })
    return folder
