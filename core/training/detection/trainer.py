"""``train_detection(ctx, project, hp) -> artefact id``: data, training, int8 export, evaluation,
manifest, publish -- the detection counterpart of ``core.training.classification``.

Images used: those with at least one box of a project class (an image without boxes may simply
not be labelled yet). ``hp.train_on == "all"``: every such image trains and is evaluated on;
otherwise the train split trains, the val split's mAP@0.5 picks the weights kept (and may stop a run
on a plateau, :mod:`budget`), and the metrics are computed on test (else val, else train --
recorded as ``metrics.split``). ``hp.minutes`` trains for a time budget instead of ``hp.epochs``.

Extra settings (``hp.extra``): ``resize`` ("stretch" | "letterbox"), ``min_scale`` / ``max_scale``
(anchor scales), ``bn_momentum``, ``pos_iou`` / ``neg_iou``, ``warmup_fraction``, ``cache_side``,
``eval_every`` (epochs between validation passes; 0 = from their cost), ``ema`` (weight-average
momentum, 0 = off).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from core.data import artefacts
from core.data.annotations import Project
from core.training.hparams import DetectionHParams

PREPARE = (0.0, 0.05)
TRAIN = (0.05, 0.85)
EXPORT = (0.85, 0.93)
EVALUATE = (0.93, 0.99)
MAX_BUDGET_EPOCHS = 10_000  # with a time budget the clock ends the run


def train_detection(ctx: Any, project: Project, hp: DetectionHParams) -> str:
    """Train, export and evaluate a detector for ``project``; publish the artefact; return its id.

    ``ctx`` is a ``core.jobs.JobContext``. Cancellation or any failure removes the partial
    artefact folder; nothing is published.
    """
    if isinstance(hp, dict):
        hp = DetectionHParams.from_dict(hp)
    return artefacts.build_artefact(ctx.store.root, lambda aid, partial: _train(ctx, project, hp, aid, partial),
                                    log=ctx.log)


def auto_max_detections(examples: list) -> int:
    """The exported model's max detections when the user leaves it to the data: twice the most
    boxes in one training photo, between 20 and 100 (COCO evaluates up to 100)."""
    most = max((len(e.labels) for e in examples), default=0)
    return int(min(100, max(20, 2 * most)))


def weak_result_advice(metrics: dict, n_train: int, hp: DetectionHParams, epochs_run: int) -> str | None:
    """Plain advice when the model finds little (mAP@0.5 < 0.3): the likely reason, what to try."""
    m = (metrics.get("int8") or {}).get("mAP50")
    if m is None:
        m = (metrics.get("float") or {}).get("mAP50")
    if m is None or m >= 0.3:
        return None
    reasons, tries = [], []
    if n_train < 100:
        reasons.append(f"only {n_train} training photos")
        tries.append("label more photos (a few hundred boxes)")
    scratch = str(hp.weights).lower() in ("none", "", "null")
    if scratch:
        reasons.append("training from scratch")
        tries.append("start from pretrained ImageNet weights (or a local weights file)")
    if (hp.minutes and hp.minutes < 20) or (not hp.minutes and epochs_run < 60):
        reasons.append(f"a short run ({f'{hp.minutes:g} minutes' if hp.minutes else f'{epochs_run} epochs'})")
        tries.append("train for 25 minutes or more")
    if not reasons:
        reasons.append("the objects may be hard to tell apart at this input size")
        tries.append("a larger image size or model width")
    return (f"mAP@0.5 is only {m:.2f}: this model misses most objects. Likely reason: {', '.join(reasons)}. "
            f"Try: {'; '.join(tries)}.")


def _select(store: Any, project: Project, hp: DetectionHParams, labels: list[str]):
    from core.training.detection.data import examples_from_records

    records = [r for r in store.list_images(project) if any(a.box is not None for a in r.annotations)]
    exs = {r.id: e for r, e in zip(records, examples_from_records(records, labels))}
    with_boxes = [r for r in records if len(exs[r.id].labels) > 0]
    if hp.train_on == "all":
        train, val, test = with_boxes, [], []
    else:
        train = [r for r in with_boxes if r.split == "train"]
        val = [r for r in with_boxes if r.split == "val"]
        test = [r for r in with_boxes if r.split == "test"]
    if hp.max_images:
        rng = np.random.default_rng(hp.seed)
        if len(train) > hp.max_images:
            train = [train[i] for i in sorted(rng.choice(len(train), hp.max_images, replace=False))]
    return ([exs[r.id] for r in train], [exs[r.id] for r in val], [exs[r.id] for r in test])


def _train(ctx: Any, project: Project, hp: DetectionHParams, aid: str, partial: Path) -> Path:
    from core.training.data import DatasetError
    from core.training.detection.model import build_detector, check_image_size
    from core.training.weights import resolve_weights

    store = ctx.store
    t_start = time.time()
    work = Path(ctx.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    size = int(hp.image_size)
    check_image_size(size)
    extra = dict(hp.extra or {})
    resize = extra.get("resize", "stretch")
    if resize not in ("stretch", "letterbox"):
        raise ValueError(f"resize must be 'stretch' or 'letterbox', not {resize!r}")

    # -- data -------------------------------------------------------------------------------
    ctx.progress(fraction=0.0, message="Collecting labelled images")
    labels = list(store.label_map(project).contiguous())
    if not labels:
        raise DatasetError("The project has no classes: draw some boxes first.")
    train_ex, val_ex, test_ex = _select(store, project, hp, labels)
    if not train_ex:
        raise DatasetError("No training images with boxes. Label some images (and assign splits) first.")
    dataset_hash = store.dataset_hash(project)
    n_boxes = int(sum(len(e.labels) for e in train_ex))
    ctx.log(f"{len(labels)} classes; train {len(train_ex)} images ({n_boxes} boxes), val {len(val_ex)}, "
            f"test {len(test_ex)}; input {size}x{size} ({resize})")
    weights_path = resolve_weights(hp.weights, hp.alpha, size, log=ctx.log)
    ctx.check_cancelled()

    from core.training.detection.data import ImageCache

    cache = ImageCache(store, max_side=int(extra.get("cache_side", 2 * size)))
    all_ex = train_ex + val_ex + test_ex
    for i, e in enumerate(all_ex):
        cache.load(e.image_id)
        if (i + 1) % 20 == 0 or i + 1 == len(all_ex):
            ctx.check_cancelled()
            ctx.progress(fraction=PREPARE[0] + (PREPARE[1] - PREPARE[0]) * (i + 1) / len(all_ex),
                         message=f"Decoding images {i + 1}/{len(all_ex)}")

    # -- model --------------------------------------------------------------------------------
    import keras

    from core.training.callbacks import make_progress_callback
    from core.training.detection.budget import make_budget_callback
    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.data import make_dataset, steps_per_epoch
    from core.training.detection.loss import make_box_loss, make_focal_loss

    keras.utils.set_random_seed(int(hp.seed))
    bn_momentum = float(extra.get("bn_momentum", 0.99 if weights_path else 0.9))
    ratios = tuple(float(r) for r in hp.aspect_ratios)
    apl = len(ratios) + 1
    det = build_detector(len(labels), size, float(hp.alpha), weights_path, anchors_per_location=apl,
                         bn_momentum=bn_momentum)
    from core.training.continue_from import continue_from

    ctx.lineage = continue_from(ctx, det.model, hp, "detection", labels)  # hp.init_from: a parent model
    spec = AnchorSpec(det.feature_sizes, ratios, float(extra.get("min_scale", 0.15)),
                      float(extra.get("max_scale", 0.95)))
    anchors = generate_anchors(spec)
    batch = max(1, int(hp.batch_size))
    from core.training.class_balance import balanced_examples

    fit_ex = balanced_examples(ctx, hp, train_ex, labels)  # hp.class_balance "sampling": rare classes repeated
    steps = steps_per_epoch(len(fit_ex), batch)
    budget = float(hp.minutes) * 60.0 if hp.minutes else None
    epochs = MAX_BUDGET_EPOCHS if budget else max(1, int(hp.epochs))
    lr = float(hp.learning_rate)
    ema = float(extra.get("ema", 0.0))
    det.train_model.compile(
        jit_compile=False,
        # the budget callback sets the rate per batch; extra "ema": momentum of a weight average
        optimizer=keras.optimizers.Adam(lr, clipnorm=10.0, use_ema=bool(ema), ema_momentum=ema or 0.99),
        loss=[make_box_loss(), make_focal_loss(float(hp.focal_alpha), float(hp.focal_gamma))])
    pos_iou, neg_iou = float(extra.get("pos_iou", 0.5)), float(extra.get("neg_iou", 0.4))
    common = dict(anchors=anchors, num_classes=len(labels), image_size=size, batch_size=batch,
                  resize=resize, pos_iou=pos_iou, neg_iou=neg_iou)
    train_ds = make_dataset(fit_ex, cache, augment=bool(hp.augment), shuffle=True, seed=hp.seed, **common)
    best_path = work / "best.weights.h5"
    evaluate = None
    if val_ex:  # selection by validation mAP@0.5 (float model + NMS, 100 detections per image)
        from core.training.detection.data import model_input
        from core.training.detection.fast_map import make_val_evaluator

        val_inputs = [model_input(cache.load(e.image_id), size, resize) for e in val_ex]
        evaluate = make_val_evaluator(det.model, val_inputs, val_ex, anchors, len(labels), resize)
    progress_cb = make_progress_callback(ctx, epochs if not budget else 100, steps,
                                         every_n_batches=max(1, min(10, steps // 4 or 1)), fraction_range=TRAIN)
    budget_cb = make_budget_callback(
        base_lr=lr, steps_per_epoch=steps, epochs=epochs, budget_seconds=budget, evaluate=evaluate,
        best_path=str(best_path), eval_every=int(extra.get("eval_every", 0)),
        warmup_fraction=float(extra.get("warmup_fraction", 0.03)),
        patience=int(hp.early_stopping_patience or 0),
        min_fraction=(0.75 if budget else 0.5) if not weights_path else (0.5 if budget else 0.25),
        progress=progress_cb)
    from core.training.checkpoint import Checkpointer

    ckpt = Checkpointer(ctx, det.train_model, best_path)
    initial_epoch = ckpt.restore([budget_cb])  # a resumed job continues after its last checkpoint
    if initial_epoch:
        budget_cb.step_offset = max(budget_cb.step_offset, initial_epoch * steps)
    ctx.progress(fraction=TRAIN[0], epoch=initial_epoch, total_epochs=budget_cb.state.planned_epochs,
                 message=f"Training for {hp.minutes:g} minutes" if budget else "Training")
    t_fit = time.time()
    hist = det.train_model.fit(train_ds, epochs=epochs, callbacks=[budget_cb, progress_cb, ckpt.callback()],
                               initial_epoch=initial_epoch,
                               shuffle=False, verbose=0)  # tf.data shuffles (make_dataset)
    fit_seconds = time.time() - t_fit
    state = budget_cb.state
    if budget_cb.weights is not None:  # the best validation mAP's weights
        det.train_model.set_weights(budget_cb.weights)
    history = {k: vals for k, vals in ckpt.full_history(hist.history).items()
               if k != "val_mAP50"}  # every few epochs only: the curve is in training.selection
    epochs_run = len(history.get("loss", []))
    epoch_seconds = state.epoch_seconds
    ctx.log(f"trained {epochs_run} epochs in {fit_seconds:.0f} s ({state.stop_reason}); best validation "
            f"mAP@0.5 {state.best_map if state.best_map is not None else float('nan'):.3f} at epoch "
            f"{state.best_epoch}")
    ctx.check_cancelled()

    # -- export -------------------------------------------------------------------------------
    from core.training.detection.data import model_input
    from core.training.detection.export import export_int8
    from core.training.detection.postprocess import PostprocessConfig

    ctx.progress(fraction=EXPORT[0], message="Saving the float model")
    det.model.save(partial / artefacts.FLOAT_MODEL)
    max_det = int(hp.max_detections) if hp.max_detections else auto_max_detections(train_ex)
    cfg = PostprocessConfig(float(hp.score_threshold), float(hp.iou_threshold), max_det)
    rng = np.random.default_rng(hp.seed)
    n_rep = max(1, min(int(hp.representative_samples), len(train_ex)))
    rep_idx = sorted(rng.choice(len(train_ex), n_rep, replace=False))
    reps = [model_input(cache.load(train_ex[i].image_id), size, resize) for i in rep_idx]
    # Mirror images calibrate too: twice the activation statistics at no labelling cost. Measured on
    # the 8-image overfit model: worst int8-vs-float box IoU 0.891 -> 0.919, mean 0.951 -> 0.956.
    reps += [np.ascontiguousarray(r[:, ::-1]) for r in reps]
    ctx.progress(fraction=EXPORT[0] + 0.02, message="Converting to int8 TFLite (calibrating)")
    info = export_int8(det.model, anchors, reps, partial / artefacts.INT8_MODEL, len(labels), cfg,
                       work_dir=work)
    ctx.check_cancelled()

    # -- evaluate -----------------------------------------------------------------------------
    from core.training.detection.evaluate import evaluate_examples

    eval_split, eval_ex = "test", test_ex
    if not eval_ex:
        eval_split, eval_ex = ("val", val_ex) if val_ex else ("train", train_ex)
    if hp.train_on == "all":
        eval_split = "all"
    ctx.progress(fraction=EVALUATE[0], message=f"Evaluating float and int8 models on the {eval_split} split")
    ev = evaluate_examples(eval_ex, cache, labels, size, resize, anchors, cfg, model=det.model,
                           tflite_path=partial / artefacts.INT8_MODEL)
    metrics = {"float": ev["float"], "int8": ev["int8"], "split": eval_split}
    ctx.check_cancelled()

    # -- manifest + publish -------------------------------------------------------------------
    artefacts.write_labels(partial, labels)
    q_in = info["input"]
    manifest: dict[str, Any] = {
        "schema_version": artefacts.SCHEMA_VERSION, "id": aid, "task": "detection",
        "project": project.name, "labels": labels, "input_size": [size, size], "resize": resize,
        "hparams": hp.to_dict(), "dataset_hash": dataset_hash, "created": time.time(),
        "job_id": getattr(ctx, "job_id", None),
        "files": {"float": artefacts.FLOAT_MODEL, "int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        "metrics": metrics, "history": history,
        "quantization": {
            "input": {"scale": q_in["scale"], "zero_point": q_in["zero_point"], "dtype": q_in["dtype"]},
            "output": {"dtype": "float32", "postprocess_inputs": info["postprocess_inputs"]},
        },
        "detection": {
            **cfg.to_dict(), "anchors": int(len(anchors)), "anchor_spec": spec.to_dict(),
            "box_scales": [10.0, 10.0, 5.0, 5.0], "postprocess_op": "TFLite_Detection_PostProcess",
            "use_regular_nms": False, "outputs": {"count": "output_0", "scores": "output_1",
                                                  "classes": "output_2", "boxes": "output_3"},
            "box_format": "ymin,xmin,ymax,xmax normalised to the model input",
            "letterbox_anchor": "top-left" if resize == "letterbox" else None,
        },
        "model": {"architecture": "SSDLite MobileNetV2", "alpha": float(hp.alpha),
                  "params": int(det.model.count_params()), "pretrained": weights_path is not None,
                  "feature_sizes": list(det.feature_sizes), "ops": sorted(set(info["ops"]))},
        "dataset": {"train": len(train_ex), "val": len(val_ex), "test": len(test_ex),
                    "train_boxes": n_boxes, "train_on": hp.train_on},
        "training": {"epochs_run": epochs_run, "fit_seconds": round(fit_seconds, 2),
                     "minutes": hp.minutes, "selection": state.to_dict(),
                     "advice": weak_result_advice(metrics, len(train_ex), hp, epochs_run),
                     "epoch_seconds": epoch_seconds, "weights_used": det.weights_used,
                     "total_seconds": round(time.time() - t_start, 2),
                     "resumed_from": ckpt.resume_from, "resumed_at_epoch": initial_epoch or None,
                     "images_per_second": round((epochs_run - initial_epoch) * len(fit_ex) / fit_seconds, 2)
                     if fit_seconds > 0 else None},
    }
    artefacts.write_json_atomic(partial / artefacts.MANIFEST, manifest)
    ctx.check_cancelled()
    folder = artefacts.publish(store.root, partial, aid)
    f, q = ev["float"], ev["int8"]
    advice = manifest["training"]["advice"]
    ctx.progress(fraction=1.0, metrics={"mAP50": f["mAP50"], "int8_mAP50": q["mAP50"]},
                 message=f"Done: float mAP@0.5 {f['mAP50'] or 0:.3f}, int8 mAP@0.5 {q['mAP50'] or 0:.3f} "
                         f"on {eval_split}" + (f". {advice}" if advice else ""))
    ctx.log(f"Published model {aid} at {folder}")
    return folder
