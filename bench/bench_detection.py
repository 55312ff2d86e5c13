"""Detection benchmark: the raccoon set (VOC) with the fixed split ``split.csv`` (160 train / 40 val),
SSDLite MobileNetV2 from scratch at 320x320, trained for a 25-minute budget (the Train page's
*Full training* preset), the weights picked by validation mAP@0.5.

Reports float and int8 mAP@0.5 and mAP@[.5:.95] on the 40 val photos (the job's evaluation; the
YOLOv8n peer also picks its best epoch on them and reports them), epochs run, wall time, training
throughput and the single-image CPU latency of the int8 TFLite model (with its post-process op) at
1 and 2 threads -- in one table beside the YOLOv8n peer's row. The peer's JSON line (from
``../shared/peer/train_peer.py``, run on the same machine the same day) is read from the file named
by ``--peer`` or ``$STUDIO_PEER_JSON`` (its last JSON line); without it the issue's figures are shown,
labelled "reported, other day".

    python -m bench --only bench_detection [--quick]
    python -m bench.bench_detection [--quick] [--minutes M] [--epochs N] [--alpha A] [--size S] [--peer FILE]
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


MINUTES = 25.0
PEER_ENV = "STUDIO_PEER_JSON"
# Issue #14's figures (YOLOv8n from scratch, 320 px, split.csv, 25 min, on another day)
PEER_REPORTED = {"peer": "yolov8n from scratch", "minutes": 25, "epochs": 85, "mAP50": 0.742,
                 "mAP50_95": 0.392, "int8_latency_ms": 7.0, "source": "reported, other day"}


def read_peer(path: str | Path | None = None) -> dict[str, Any]:
    """The peer's figures: the last JSON line of ``path`` (or ``$STUDIO_PEER_JSON``), else the issue's."""
    import os

    path = path or os.environ.get(PEER_ENV)
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace")
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{") and '"mAP50"' in line:
                d = json.loads(line)
                return {**d, "source": f"measured beside it ({Path(path).name})"}
        got = peer_from_ultralytics_log(text)
        if got:
            return {**got, "source": f"measured beside it ({Path(path).name}, from its training log)"}
    return dict(PEER_REPORTED)


def peer_from_ultralytics_log(text: str) -> dict[str, Any] | None:
    """The peer's figures from Ultralytics' own log when ``train_peer.py`` ended without its JSON
    line: the validation of ``best.pt`` that closes training ("all  images  boxes  P  R  mAP50
    mAP50-95"), and "N epochs completed in H hours"."""
    import re

    done = re.search(r"(\d+) epochs completed in ([\d.]+) hours", text)
    if not done:
        return None
    rows = re.findall(r"^\s*all\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s*$",
                      text[done.end():], flags=re.M)
    if not rows:
        return None
    hours = float(done.group(2))
    return {"peer": "yolov8n from scratch", "minutes": round(hours * 60), "epochs": int(done.group(1)),
            "wall_s": round(hours * 3600), "mAP50": float(rows[-1][0]), "mAP50_95": float(rows[-1][1])}


def apply_split_csv(store: Any, project: Any, csv_path: Path) -> dict[str, int]:
    """Give every image the split ``csv_path`` (image,split) names; an image it misses is an error."""
    import csv

    with open(csv_path, newline="") as fh:
        wanted = {row["image"]: row["split"] for row in csv.DictReader(fh)}
    by_split: dict[str, list[str]] = {}
    for r in store.list_images(project):
        if r.filename not in wanted:
            raise ValueError(f"{r.filename} is not in {csv_path}")
        by_split.setdefault(wanted[r.filename], []).append(r.id)
    for split, ids in by_split.items():
        store.set_split(project, ids, split)
    return {k: len(v) for k, v in by_split.items()}


def table(res: dict[str, Any], peer: dict[str, Any]) -> str:
    """Markdown: the studio's row beside the peer's."""
    def f(v, fmt="{:.3f}"):
        return fmt.format(v) if isinstance(v, (int, float)) else "–"

    lat = peer.get("int8_latency_ms")
    lat_text = f"{lat:.1f} ms" if lat else f"{PEER_REPORTED['int8_latency_ms']:.1f} ms (reported, other day)"
    return "\n".join([
        "| model | mAP@0.5 float | mAP@0.5 int8 | mAP@[.5:.95] float | mAP@[.5:.95] int8 | epochs | "
        "training wall time | int8 latency, 1 thread |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| studio SSDLite MobileNetV2 {res['alpha']} @ {res['image_size']} px, {f(res['minutes'], '{:g}')} min "
        f"| {f(res['float_mAP50'])} | {f(res['int8_mAP50'])} | {f(res['float_mAP'])} | {f(res['int8_mAP'])} "
        f"| {res['epochs_run']} | {f(res['fit_seconds'], '{:.0f}')} s "
        f"| {f(res['int8_cpu_latency_ms_1_thread'], '{:.2f}')} ms |",
        f"| YOLOv8n from scratch, {peer.get('minutes')} min ({peer['source']}) | {f(peer.get('mAP50'))} | – "
        f"| {f(peer.get('mAP50_95'))} | – | {peer.get('epochs', '–')} | {f(peer.get('wall_s'), '{:.0f} s')} "
        f"| {lat_text} |",
    ])


def run(out_dir: Path, quick: bool = False, epochs: int | None = None, alpha: float | None = None,
        image_size: int | None = None, dataset_dir: Path = RACCOON, minutes: float | None = None,
        peer: str | Path | None = None, extra: dict | None = None) -> dict[str, Any]:
    """Import, train (a real "train" job), export, evaluate and time; returns the figures."""
    import numpy as np

    from core.data import artefacts
    from core.data.importer import import_paths
    from bench._common import train_and_read
    from core.data.store import Store

    minutes = None if epochs else (minutes or (1.0 if quick else MINUTES))
    epochs = epochs or 40
    alpha = alpha or 0.35
    size = image_size or (192 if quick else 320)
    work = Path(out_dir) / "detection"
    shutil.rmtree(work, ignore_errors=True)
    store = Store(work / "data")
    project = store.create_project("raccoon", "detection")
    t = time.perf_counter()
    rep = import_paths(store, project, [dataset_dir], fmt="voc")
    import_s = time.perf_counter() - t
    splits = apply_split_csv(store, project, dataset_dir / "split.csv")
    hp = {"epochs": epochs, "minutes": minutes, "image_size": size, "alpha": alpha, "batch_size": 8,
          "learning_rate": 3e-3, "weights": "none", "augment": True, "early_stopping_patience": 15,
          "max_images": 16 if quick else None, "representative_samples": 8 if quick else 100,
          "score_threshold": 0.05, "iou_threshold": 0.5, "max_detections": 0, "seed": 0,
          "extra": dict(extra or {})}
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
    res = {
        "images": rep.images_added, "boxes": rep.boxes_added, "import_seconds": round(import_s, 2),
        "splits": splits, "train_images": n_train, "eval_split": m["metrics"]["split"],
        "image_size": size, "alpha": alpha, "minutes": minutes, "epochs_requested": None if minutes else epochs,
        "epochs_run": tr["epochs_run"], "best_epoch": (tr.get("selection") or {}).get("best_epoch"),
        "val_mAP50_curve": (tr.get("selection") or {}).get("val_mAP50"), "extra": hp["extra"],
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
    peer_row = read_peer(peer)
    res["peer"] = peer_row
    res["table"] = table(res, peer_row)
    (work / "detection_vs_peer.md").write_text(res["table"] + "\n")
    print(res["table"], flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_detection")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, help="a fixed number of epochs instead of the time budget")
    ap.add_argument("--minutes", type=float, help=f"time budget (default {MINUTES:g})")
    ap.add_argument("--peer", help=f"file whose last JSON line is the peer's result (default ${PEER_ENV})")
    ap.add_argument("--extra", default="{}", help="JSON of extra trainer settings (ablations)")
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--size", type=int)
    ap.add_argument("--out", default="bench-output")
    args = ap.parse_args(argv)
    res = run(Path(args.out), args.quick, args.epochs, args.alpha, args.size, minutes=args.minutes,
              peer=args.peer, extra=json.loads(args.extra))
    print(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
