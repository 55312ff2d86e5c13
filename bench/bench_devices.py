"""Training throughput per device: every device TensorFlow sees here (the CPU, each GPU in float32 and with
mixed precision), the studio's own models, placed the way a training job places them
(``core.training.device.placed``).

Measured: images/s of one training epoch over in-memory tensors, after one warm-up epoch (graph
tracing), for the MobileNetV2 classifier (alpha 0.35, 96×96, batch 32) and the SSDLite detector
(alpha 1.0, 320×320, batch 8). The data is random: throughput does not depend on what the pixels show.
Ratios against the CPU come from the same run.

    python -m bench --only bench_devices [--quick]
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np


def _epoch_rate(model, x, y, batch: int) -> float:
    """Images/s of the second of two epochs (the first traces the graph)."""
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    t = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return len(x) / (time.perf_counter() - t)


def classification_rate(n: int, batch: int = 32, size: int = 96) -> float:
    """The studio's classifier (alpha 0.35, from scratch) trained on ``n`` random images."""
    import keras

    from core.training.classification import build_model
    from core.training.hparams import ClassificationHParams

    keras.utils.set_random_seed(0)
    model = build_model(5, ClassificationHParams(image_size=size, alpha=0.35, weights="none"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, n)]
    return _epoch_rate(model, x, y, batch)


def detection_rate(n: int, batch: int = 8, size: int = 320, alpha: float = 1.0) -> float:
    """The studio's SSDLite detector trained on ``n`` random images with random anchor targets."""
    import keras

    from core.training.detection.loss import make_box_loss, make_focal_loss
    from core.training.detection.model import build_detector

    keras.utils.set_random_seed(0)
    det = build_detector(2, size, alpha, None, anchors_per_location=4, bn_momentum=0.9)
    det.train_model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=10.0), jit_compile=False,
                            loss=[make_box_loss(), make_focal_loss()])
    anchors = int(det.train_model.outputs[0].shape[1])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    boxes = np.concatenate([rng.normal(0, 1, (n, anchors, 4)), rng.random((n, anchors, 1)) < 0.01], -1)
    classes = np.concatenate([rng.random((n, anchors, 2)) < 0.005, np.ones((n, anchors, 1))], -1)
    return _epoch_rate(det.train_model, x, [boxes.astype("float32"), classes.astype("float32")], batch)


def run(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Images/s per device (see the module docstring); keys ``<device>_<task>_images_per_s``."""
    from core.training import device

    gpus = device.visible_gpus()
    runs = [("cpu", device.choose("cpu", gpus))]
    for g in gpus:
        for mixed in (False, True):
            c = device.choose("gpu", [g], mixed_precision=mixed)
            runs.append((f"gpu{g.index}{'_mixed' if mixed else ''}", c))
    n_cls, n_det = (64, 16) if quick else (512, 64)
    res: dict[str, Any] = {"tensorflow": device.tensorflow_build(), "cpu": device.cpu_model(),
                           "gpus": [g.name for g in gpus] or "none visible", "machine": platform.machine(),
                           "classification_images": n_cls, "detection_images": n_det}
    for key, choice in runs:
        with device.placed(choice):
            res[f"{key}_classification_images_per_s"] = round(classification_rate(n_cls), 2)
            res[f"{key}_detection_images_per_s"] = round(detection_rate(n_det, size=256 if quick else 320), 2)
        res[f"{key}_device"] = choice.label()
    for key, _ in runs[1:]:
        for task in ("classification", "detection"):
            res[f"{key}_{task}_vs_cpu"] = round(res[f"{key}_{task}_images_per_s"]
                                                / res[f"cpu_{task}_images_per_s"], 2)
    return res


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(Path("bench-output/bench_devices"), quick="--quick" in sys.argv), indent=2))
