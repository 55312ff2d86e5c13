"""Continue-from benchmark (issue #16): raccoon with its fixed split (``split.csv``: 160 train / 40 val).

1. *scratch*: a detector trained from nothing on all 160 training photos for ``epochs`` epochs;
   its val mAP@0.5 is the target and its fit time ``T``.
2. *half*: the same recipe on 80 of the training photos (the parent; its time is not counted).
3. *continued*: from the half model on all 160 photos, in rounds of ``epochs // 4`` epochs, each round
   continuing from the previous one, until the val mAP@0.5 reaches the target or the continued fit
   time passes ``T``. The goal: the target reached within ``T / 2``.

Both curves (val mAP@0.5 against cumulative fit seconds) and the times are in the result. ``--quick``
(2 epochs, 16 photos, 192 px) only checks that it runs: its mAPs are 0.

    python -m bench --only bench_continue [--quick]
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RACCOON = ROOT.parent / "shared" / "datasets" / "raccoon"


def _import(store, name: str, dataset_dir: Path, keep: set[str] | None):
    from core.data.importer import import_paths

    project = store.create_project(name, "detection")
    import_paths(store, project, [dataset_dir], fmt="voc")
    split = {r["image"]: r["split"] for r in csv.DictReader(open(dataset_dir / "split.csv"))}
    recs = store.list_images(project)
    for s in ("train", "val"):
        store.set_split(project, [r.id for r in recs if split.get(r.filename) == s], s)
    if keep is not None:  # the half set: drop the other training photos
        store.delete_images(project, [r.id for r in recs if split.get(r.filename) == "train" and r.filename not in keep])
    return project


def run(out_dir: Path, quick: bool = False, epochs: int | None = None,
        dataset_dir: Path = RACCOON) -> dict[str, Any]:
    from bench._common import train_and_read
    from core.data.store import Store

    epochs = epochs or (2 if quick else 40)
    size = 192 if quick else 320
    hp = {"epochs": epochs, "image_size": size, "alpha": 0.35, "batch_size": 8, "learning_rate": 3e-3,
          "weights": "none", "augment": True, "early_stopping_patience": 0, "representative_samples": 8 if quick else 50,
          "score_threshold": 0.05, "max_detections": 20, "seed": 0, "max_images": 16 if quick else None}
    work = Path(out_dir) / "continue"
    shutil.rmtree(work, ignore_errors=True)
    store = Store(work / "data")
    full = _import(store, "raccoon", dataset_dir, None)
    scratch = train_and_read(store, full, "detection", hp)
    target, t_scratch = scratch.manifest["metrics"]["float"]["mAP50"], scratch.manifest["training"]["fit_seconds"]

    train_names = sorted(r["image"] for r in csv.DictReader(open(dataset_dir / "split.csv")) if r["split"] == "train")
    half_store = Store(work / "half")
    half_project = _import(half_store, "raccoon", dataset_dir, set(train_names[::2]))
    half = train_and_read(half_store, half_project, "detection", hp)
    # the parent must be a model of the project being trained: copy its folder over
    shutil.copytree(half.folder, store.root / "models" / half.folder.name)
    parent, spent, curve = half.folder.name, 0.0, []
    rounds = max(1, epochs // 4)
    while spent < t_scratch:
        r = train_and_read(store, full, "detection", {**hp, "epochs": rounds, "init_from": parent,
                                                      "learning_rate": hp["learning_rate"] / 3})
        spent += r.manifest["training"]["fit_seconds"]
        m50 = r.manifest["metrics"]["float"]["mAP50"]
        curve.append({"fit_seconds": round(spent, 1), "mAP50": m50})
        parent = r.folder.name
        if m50 >= target:
            break
    reached = next((c["fit_seconds"] for c in curve if c["mAP50"] >= target), None)
    return {
        "epochs_scratch": epochs, "image_size": size, "scratch_mAP50": target, "scratch_fit_seconds": t_scratch,
        "half_mAP50": half.manifest["metrics"]["float"]["mAP50"],
        "half_fit_seconds": half.manifest["training"]["fit_seconds"],
        "scratch_curve_val_loss": scratch.manifest["history"].get("val_loss"),
        "continued_curve": curve, "continued_seconds_to_target": reached,
        "ratio_to_scratch": round(reached / t_scratch, 3) if reached else None,
        "goal_met": bool(target and reached is not None and reached <= t_scratch / 2),  # a 0 target proves nothing
    }
