"""Classification benchmark: sign-language digits, MobileNetV2 alpha 0.35 at 96×96 from scratch.

Reports float and int8 test accuracy of a full training job (the same job the app runs), training
throughput of the job next to the same model fed cached tensors, image decoding throughput, and
single-image CPU latency of the float Keras model vs the int8 TFLite model.

    python -m bench --only bench_classification [--quick]
    python -m bench.bench_classification [--quick] [--epochs N]
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
DIGITS = ROOT.parent / "shared" / "datasets" / "sign-language-digits" / "Dataset"


def _throughput(model, dataset, n_images: int) -> float:
    """Images/s of one training epoch over ``dataset`` (after a warm-up epoch for tracing)."""
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    t = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    return n_images / (time.perf_counter() - t)


def run(out_dir: Path, quick: bool = False, epochs: int | None = None, max_images: int | None = None,
        dataset_dir: Path = DIGITS) -> dict[str, Any]:
    """Train, export, evaluate and time; returns the figures (see module docstring)."""
    from core.data import artefacts
    from core.data.importer import import_paths
    from bench._common import train_and_read
    from core.data.store import Store

    epochs = epochs or (2 if quick else 30)
    max_images = max_images if max_images is not None else (300 if quick else None)
    work = Path(out_dir) / "classification"
    shutil.rmtree(work, ignore_errors=True)
    store = Store(work / "data")
    project = store.create_project("digits", "classification")
    t = time.perf_counter()
    rep = import_paths(store, project, [dataset_dir], fmt="folders")
    import_s = time.perf_counter() - t

    hp = {"epochs": epochs, "image_size": 96, "alpha": 0.35, "batch_size": 32, "learning_rate": 1e-3,
          "weights": "none", "early_stopping_patience": 5, "max_images": max_images, "seed": 0}
    run_ = train_and_read(store, project, "classification", hp)
    folder, m, job_s, n_train, steady = (run_.folder, run_.manifest, run_.job_seconds, run_.train_images,
                                         run_.steady_epoch_seconds)
    tr = m["training"]

    # -- the same model: tf.data pipeline (augmented) vs cached tensors --------------------------
    import keras
    import numpy as np

    from core.training.int8 import run_tflite
    from core.training.data import collect_examples, load_images, make_dataset, one_hot

    data = collect_examples(store, project, labels=m["labels"], max_images=max_images, seed=0)
    t = time.perf_counter()
    x_train = load_images(store, data.train, 96)
    decode_ips = len(x_train) / (time.perf_counter() - t)
    y_train = one_hot([e.label for e in data.train], len(data.labels))
    model = keras.models.load_model(folder / artefacts.FLOAT_MODEL, compile=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy", jit_compile=False)
    pipeline_ips = _throughput(model, make_dataset(x_train, y_train, 32, training=True, augment=True), len(x_train))
    plain_ips = _throughput(model, make_dataset(x_train, y_train, 32, training=True, augment=False), len(x_train))
    cached_x, cached_y = x_train.astype(np.float32), y_train

    def cached_epoch():
        model.fit(cached_x, cached_y, batch_size=32, epochs=1, verbose=0, shuffle=True)

    cached_epoch()
    t = time.perf_counter()
    cached_epoch()
    cached_ips = len(x_train) / (time.perf_counter() - t)

    # -- latency: one image, float Keras vs int8 TFLite (CPU) ------------------------------------
    one = x_train[:1]
    import tensorflow as tf

    model = keras.models.load_model(folder / artefacts.FLOAT_MODEL, compile=False)
    serve = tf.function(lambda x: model(x, training=False), jit_compile=False)  # traced once, like a server
    one_f = tf.constant(one.astype(np.float32))
    float_ms = median_ms(lambda: serve(one_f).numpy(), 30 if quick else 100)
    int8_path = folder / artefacts.INT8_MODEL
    from core.training.int8 import _interpreter

    lat = {}
    for threads in (1, 2):
        it = _interpreter(int8_path, num_threads=threads)
        it.allocate_tensors()
        inp = it.get_input_details()[0]["index"]

        def invoke(it=it, inp=inp):
            it.set_tensor(inp, one)
            it.invoke()

        lat[threads] = median_ms(invoke, 30 if quick else 200)
    assert run_tflite(int8_path, one).shape[-1] == len(m["labels"])

    metrics = m["metrics"]
    return {
        "images": rep.images_added, "classes": len(m["labels"]), "import_seconds": round(import_s, 2),
        "train_images": n_train, "val_images": m["dataset"]["val"], "test_images": m["dataset"]["test"],
        "epochs_requested": epochs, "epochs_run": tr["epochs_run"],
        "float_test_accuracy": metrics["float"]["accuracy"], "int8_test_accuracy": metrics["int8"]["accuracy"],
        "int8_float_agreement": metrics["agreement"],
        "job_seconds": round(job_s, 1), "fit_seconds": tr["fit_seconds"],
        "job_train_images_per_s_incl_first_epoch": tr["images_per_second"],
        "job_train_images_per_s_steady": round(n_train / steady, 1) if steady else None,
        "same_model_tfdata_augmented_images_per_s": round(pipeline_ips, 1),
        "same_model_tfdata_plain_images_per_s": round(plain_ips, 1),
        "same_model_cached_tensors_images_per_s": round(cached_ips, 1),
        "decode_resize_images_per_s": round(decode_ips, 1),
        "float_keras_latency_ms": round(float_ms, 3),  # tf.function, TF's own thread pool
        "int8_tflite_latency_ms_1_thread": round(lat[1], 3),
        "int8_tflite_latency_ms_2_threads": round(lat[2], 3),
        "int8_speedup_vs_float_1_thread": round(float_ms / lat[1], 2),
        "int8_model_kb": round(int8_path.stat().st_size / 1024, 1),
        "float_model_kb": round((folder / artefacts.FLOAT_MODEL).stat().st_size / 1024, 1),
        "artefact": str(folder),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_classification")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--max-images", type=int)
    ap.add_argument("--out", default="bench-output")
    args = ap.parse_args(argv)
    print(json.dumps(run(Path(args.out), args.quick, args.epochs, args.max_images), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
