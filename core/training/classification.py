"""Image classification: Keras 3 MobileNetV2 → training → int8 TFLite → evaluation → artefact.

The model takes raw 0..255 RGB (float in Keras, uint8 in TFLite) and scales to [-1, 1]
itself (a Rescaling layer), so the Edge TPU model's input is the plain resized image.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core.data import artefacts
from core.data.annotations import Project
from core.training.data import (ClassificationSet, DatasetError, collect_examples, load_images, make_dataset,
                                one_hot, representative_images)
from core.training.hparams import ClassificationHParams

# fractions of the whole job spent in each stage (for the progress bar)
PREPARE, TRAIN, EXPORT, EVALUATE = (0.0, 0.08), (0.08, 0.85), (0.85, 0.93), (0.93, 0.99)
SCRATCH_BN_MOMENTUM = 0.9


def build_model(num_classes: int, hp: ClassificationHParams, weights: str | None = None):
    """MobileNetV2 (``hp.alpha``, ``hp.image_size``) with Rescaling in front and a softmax head.

    ``weights``: None (random init) or a path to headless ImageNet weights; with weights the
    backbone is frozen and only the head trains (transfer learning).
    """
    import keras

    size = int(hp.image_size)
    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_unit")(inputs)
    try:
        base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=float(hp.alpha),
                                              include_top=False, weights=weights, pooling="avg")
    except (ValueError, OSError) as exc:
        if weights:
            raise DatasetError(f"The weights file {weights!r} does not fit MobileNetV2 with alpha "
                               f"{hp.alpha} (headless, i.e. a *_no_top.h5 file): {exc}") from None
        raise
    if weights:
        base.trainable = False
    else:
        # from scratch: Keras' MobileNetV2 uses BatchNorm momentum 0.999. Its moving variance starts at 1
        # while the real one is far smaller, so in inference mode (validation, export) activations shrink
        # through ~50 BN layers and the model predicts one class for hundreds of steps. 0.9 follows the
        # real statistics within a few dozen steps.
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = SCRATCH_BN_MOMENTUM
    x = base(x, training=False if weights else None)
    if hp.dropout:
        x = keras.layers.Dropout(float(hp.dropout), name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"mobilenetv2_{float(hp.alpha):.2f}_{size}_classifier")


def class_weights(counts: list[int]) -> dict[int, float]:
    """Inverse-frequency weights (mean 1 over present classes) to balance an uneven training split."""
    present = [c for c in counts if c > 0]
    if not present:
        return {}
    total, k = sum(present), len(present)
    return {i: (total / (k * c) if c else 0.0) for i, c in enumerate(counts)}


def _check_data(data: ClassificationSet) -> None:
    if len(data.labels) < 2:
        raise DatasetError(
            f"Classification needs at least two classes with labelled images; this project has "
            f"{len(data.labels)}. Label more images first.")
    if not data.train:
        raise DatasetError("The training split has no labelled images. Assign splits or label images first.")
    missing = [n for n, c in zip(data.labels, data.class_counts("train")) if c == 0]
    if missing:
        raise DatasetError(f"These classes have no training images: {', '.join(missing)}. Label some images "
                           "of them in the train split, or delete the classes.")


def train_classification(ctx, project: Project, hp: ClassificationHParams) -> str:
    """Train, export and evaluate a classifier for ``project``; publish the artefact; return its id.

    ``ctx`` is a ``core.jobs.JobContext``. Cancellation (``ctx.check_cancelled``) or any
    failure removes the partial artefact folder; nothing is published.
    """
    return artefacts.build_artefact(ctx.store.root, lambda aid, partial: _train(ctx, project, hp, aid, partial),
                                    log=ctx.log)


def _train(ctx, project: Project, hp: ClassificationHParams, aid: str, partial: Path) -> Path:
    from core.training.weights import resolve_weights

    store = ctx.store
    t_start = time.time()
    work = Path(ctx.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    size = int(hp.image_size)

    # -- data ---------------------------------------------------------------------------------
    ctx.progress(fraction=0.0, message="Collecting labelled images")
    data = collect_examples(store, project, train_on=hp.train_on, max_images=hp.max_images, seed=hp.seed)
    _check_data(data)
    dataset_hash = store.dataset_hash(project)
    if data.unreviewed:
        ctx.log(f"{data.unreviewed} image(s) have only an unconfirmed (predicted) class and are left out")
    ctx.log(f"{len(data.labels)} classes; train {len(data.train)}, val {len(data.val)}, "
            f"test {len(data.test)} images at {size}x{size}")
    weights_path = resolve_weights(hp.weights, hp.alpha, size, log=ctx.log)
    ctx.check_cancelled()

    total = len(data.train) + len(data.val) + len(data.test)
    done_before = 0

    def decode(split: str, examples):
        nonlocal done_before
        base = done_before

        def on_progress(i: int, n: int) -> None:
            ctx.check_cancelled()
            if i == n or i % 50 == 0:
                ctx.progress(fraction=PREPARE[0] + (PREPARE[1] - PREPARE[0]) * (base + i) / max(1, total),
                             message=f"Decoding {split} images {i}/{n}")

        arr = load_images(store, examples, size, cache_file=work / f"cache-{split}-{size}.npy",
                          on_progress=on_progress)
        done_before += len(examples)
        return arr

    x_train = decode("train", data.train)
    x_val = decode("val", data.val)
    x_test = decode("test", data.test)
    k = len(data.labels)
    y_train = one_hot([e.label for e in data.train], k)
    y_val = one_hot([e.label for e in data.val], k)

    # -- model --------------------------------------------------------------------------------
    import keras

    keras.utils.set_random_seed(int(hp.seed))
    model = build_model(k, hp, weights_path)
    from core.training.continue_from import continue_from

    ctx.lineage = continue_from(ctx, model, hp, "classification", data.labels)  # hp.init_from: a parent model
    model.compile(optimizer=keras.optimizers.Adam(float(hp.learning_rate)),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(hp.label_smoothing)),
                  metrics=["accuracy"], jit_compile=False)  # XLA: slower to compile, slower on CPU here
    from core.training.callbacks import make_best_weights_callback, make_epoch_timer, make_progress_callback

    batch = max(1, int(hp.batch_size))
    train_ds = make_dataset(x_train, y_train, batch, training=True, augment=bool(hp.augment), seed=hp.seed)
    has_val = len(x_val) > 0
    val_ds = make_dataset(x_val, y_val, batch) if has_val else None
    monitor = "val_loss" if has_val else "loss"
    steps = int(np.ceil(len(x_train) / batch))
    best_path = work / "best.weights.h5"
    timer = make_epoch_timer()
    callbacks = [
        timer,
        make_progress_callback(ctx, hp.epochs, steps, every_n_batches=max(1, min(10, steps // 4 or 1)),
                               fraction_range=TRAIN),
        make_best_weights_callback(str(best_path), monitor=monitor),
    ]
    if has_val and hp.early_stopping_patience and hp.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=int(hp.early_stopping_patience), restore_best_weights=True,
            start_from_epoch=0 if weights_path else min(5, int(hp.epochs) // 3)))  # scratch: slow start
    from core.training.checkpoint import Checkpointer
    from core.training.class_balance import classification_weights

    ckpt = Checkpointer(ctx, model, best_path)
    initial_epoch = ckpt.restore(callbacks)  # a resumed job continues after its last checkpoint
    callbacks.append(ckpt.callback())
    ctx.progress(fraction=TRAIN[0], epoch=initial_epoch, total_epochs=int(hp.epochs), message="Training")
    t_fit = time.time()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=int(hp.epochs), callbacks=callbacks,
                     initial_epoch=initial_epoch,
                     class_weight=classification_weights(ctx, hp, data.labels, data.class_counts("train")),
                     shuffle=False,  # tf.data shuffles
                     verbose=0)
    fit_seconds = time.time() - t_fit
    if best_path.exists():
        model.load_weights(str(best_path))
    history = ckpt.full_history(hist.history)
    epochs_run = len(next(iter(history.values()), []))
    ctx.check_cancelled()

    # -- export -------------------------------------------------------------------------------
    from core.training.int8 import convert_int8, quantization_params

    ctx.progress(fraction=EXPORT[0], message="Saving the float model")
    model.save(partial / artefacts.FLOAT_MODEL)
    ctx.progress(fraction=EXPORT[0] + 0.02, message="Converting to int8 TFLite (calibrating)")
    reps = representative_images(x_train, int(hp.representative_samples), seed=hp.seed)
    info = convert_int8(model, reps, partial / artefacts.INT8_MODEL)
    ctx.check_cancelled()

    # -- evaluate -----------------------------------------------------------------------------
    from core.training.evaluation import compare_float_int8

    eval_split, x_eval, ex_eval = "test", x_test, data.test
    if not len(x_eval):
        eval_split, x_eval, ex_eval = ("val", x_val, data.val) if len(x_val) else ("train", x_train, data.train)
    ctx.progress(fraction=EVALUATE[0], message=f"Evaluating float and int8 models on the {eval_split} split")
    ev = compare_float_int8(model, partial / artefacts.INT8_MODEL, x_eval, [e.label for e in ex_eval],
                            data.labels)
    metrics = {"float": ev["float"], "int8": ev["int8"], "agreement": ev["agreement"], "split": eval_split}
    if hp.train_on == "all" or eval_split == "train":
        metrics["note"] = "evaluated on images the model was trained on: optimistic"
    ctx.check_cancelled()

    # -- manifest + publish -------------------------------------------------------------------
    artefacts.write_labels(partial, data.labels)
    manifest: dict[str, Any] = {
        "schema_version": artefacts.SCHEMA_VERSION, "id": aid, "task": "classification",
        "project": project.name, "labels": data.labels, "input_size": [size, size], "resize": "stretch",
        "hparams": hp.to_dict(), "dataset_hash": dataset_hash, "created": time.time(),
        "job_id": getattr(ctx, "job_id", None),
        "files": {"float": artefacts.FLOAT_MODEL, "int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        "metrics": metrics, "history": history,
        "quantization": quantization_params(info),
        "model": {"architecture": "MobileNetV2", "alpha": float(hp.alpha), "params": int(model.count_params()),
                  "pretrained": weights_path is not None, "ops": sorted(set(info["ops"]))},
        "dataset": {"train": len(data.train), "val": len(data.val), "test": len(data.test),
                    "class_counts_train": dict(zip(data.labels, data.class_counts("train"))),
                    "train_on": hp.train_on},
        "training": {"epochs_run": epochs_run, "fit_seconds": round(fit_seconds, 2),
                     "total_seconds": round(time.time() - t_start, 2),
                     "images_per_second": round((epochs_run - initial_epoch) * len(data.train) / fit_seconds, 2)
                     if fit_seconds > 0 else None,
                     "epoch_seconds": ckpt.previous_epoch_seconds + [round(s, 3) for s in timer.seconds],
                     "resumed_from": ckpt.resume_from, "resumed_at_epoch": initial_epoch or None},
    }
    artefacts.write_json_atomic(partial / artefacts.MANIFEST, manifest)
    ctx.check_cancelled()
    folder = artefacts.publish(store.root, partial, aid)
    ctx.progress(fraction=1.0, metrics={"accuracy": ev["float"]["accuracy"],
                                        "int8_accuracy": ev["int8"]["accuracy"]},
                 message=f"Done: float accuracy {ev['float']['accuracy']:.3f}, "
                         f"int8 accuracy {ev['int8']['accuracy']:.3f} on {eval_split}")
    ctx.log(f"Published model {aid} at {folder}")
    return folder
