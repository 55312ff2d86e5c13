"""Detection benchmark: the raccoon set (VOC), 80/20 split, SSDLite MobileNetV2 from scratch at 320x320.

Reports float and int8 mAP@0.5 and mAP@[.5:.95] on the 20% split (the job's evaluation), training
throughput (images/s, with and without the first epoch, which includes graph tracing) and the
single-image CPU latency of the int8 TFLite model (with its post-process op) at 1 and 2 threads.
Budget: about 30 minutes of CPU on 2 cores with the defaults.

    python -m bench --only bench_detection [--quick]
    python -m bench.bench_detection [--quick] [--epochs N] [--alpha A] [--size S]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench._common import median_ms

ROOT = Path(__file__).resolve().parents[1]
RACCOON = ROOT.parent / "shared" / "datasets" / "raccoon"


def run(out_dir: Path, quick: bool = False, epochs: int | None = None, alpha: float | None = None,
        image_size: int | None = None, dataset_dir: Path = RACCOON) -> dict[str, Any]:
    """Import, train (a real "train" job), export, evaluate and time; returns the figures."""
    import numpy as np

    from core.data import artefacts
    from core.data.importer import import_paths
    from bench._common import train_and_read
    from core.data.store import Store

    # ~30 min of CPU on 2 quiet cores: 160 images x 40 epochs at 320 px, alpha 0.35 (steady ~5 img/s)
    epochs = epochs or (2 if quick else 40)
    alpha = alpha or 0.35
    size = image_size or (192 if quick else 320)
    work = Path(out_dir) / "detection"
    shutil.rmtree(work, ignore_errors=True)
    store = Store(work / "data")
    project = store.create_project("raccoon", "detection")
    t = time.perf_counter()
    rep = import_paths(store, project, [dataset_dir], fmt="voc")
    import_s = time.perf_counter() - t
    splits = store.assign_splits(project, (0.8, 0.2, 0.0), seed=0)
    hp = {"epochs": epochs, "image_size": size, "alpha": alpha, "batch_size": 8, "learning_rate": 3e-3,
          "weights": "none", "augment": True, "early_stopping_patience": 0 if quick else 15,
          "max_images": 16 if quick else None, "representative_samples": 8 if quick else 100,
          "score_threshold": 0.05, "iou_threshold": 0.5, "max_detections": 20, "seed": 0}
    run_ = train_and_read(store, project, "detection", hp)
    folder, m, job_s, n_train, steady = (run_.folder, run_.manifest, run_.job_seconds, run_.train_images,
                                         run_.steady_epoch_seconds)
    tr = m["training"]

    # -- int8 latency (CPU, tf.lite.Interpreter with the post-process op) ------------------------
    import tensorflow as tf

    from core.training.detection.export import OUTPUTS, SIGNATURE

    x = np.random.default_rng(0).integers(0, 255, (1, size, size, 3), dtype=np.uint8)
    lat = {}
    for threads in (1, 2):
        it = tf.lite.Interpreter(model_path=str(folder / artefacts.INT8_MODEL), num_threads=threads)
        it.allocate_tensors()
        runner = it.get_signature_runner(SIGNATURE)
        name = next(iter(runner.get_input_details()))
        out = runner(**{name: x})
        assert set(out) == set(OUTPUTS.values())
        lat[threads] = median_ms(lambda runner=runner, name=name: runner(**{name: x}), 20 if quick else 100)

    f, q = m["metrics"]["float"], m["metrics"]["int8"]
    return {
        "images": rep.images_added, "boxes": rep.boxes_added, "import_seconds": round(import_s, 2),
        "splits": splits, "train_images": n_train, "eval_split": m["metrics"]["split"],
        "image_size": size, "alpha": alpha, "epochs_requested": epochs, "epochs_run": tr["epochs_run"],
        "anchors": m["detection"]["anchors"],
        "float_mAP50": f["mAP50"], "float_mAP": f["mAP"], "int8_mAP50": q["mAP50"], "int8_mAP": q["mAP"],
        "job_seconds": round(job_s, 1), "fit_seconds": tr["fit_seconds"],
        "train_images_per_s_incl_first_epoch": tr["images_per_second"],
        "train_images_per_s_steady": round(n_train / steady, 2) if steady else None,
        "int8_cpu_latency_ms_1_thread": round(lat[1], 2),
        "int8_cpu_latency_ms_2_threads": round(lat[2], 2),
        "int8_model_kb": round((folder / artefacts.INT8_MODEL).stat().st_size / 1024, 1),
        "artefact": str(folder),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_detection")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--size", type=int)
    ap.add_argument("--out", default="bench-output")
    args = ap.parse_args(argv)
    print(json.dumps(run(Path(args.out), args.quick, args.epochs, args.alpha, args.size), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
