"""Plain-data views of a model artefact for the Models page (pages do no file I/O of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data import artefacts
from core.training.device import describe as describe_device

DOWNLOADS = (  # (manifest "files" key, default file name, mime type)
    ("int8", artefacts.INT8_MODEL, "application/octet-stream"),
    ("edgetpu", artefacts.EDGETPU_MODEL, "application/octet-stream"),  # when the compiler ran
    ("labels", artefacts.LABELS, "text/plain"),
    ("manifest", artefacts.MANIFEST, "application/json"),
)


def project_models(data_root: Path, project: str) -> list[dict[str, Any]]:
    """Published artefacts of ``project`` (manifests with ``path``), newest first."""
    return artefacts.list_artefacts(Path(data_root), project=project)


def model_label(m: dict[str, Any]) -> str:
    """A one-line name for a model in a picker."""
    import time

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.get("created", 0)))
    metrics = m.get("metrics") or {}
    score = ""
    if m.get("task") == "detection":
        v = (metrics.get("int8") or {}).get("mAP50", (metrics.get("float") or {}).get("mAP50"))
        score = f"mAP50 {v:.3f}" if isinstance(v, (int, float)) else ""
    else:
        v = (metrics.get("int8") or {}).get("accuracy")
        score = f"int8 accuracy {v:.3f}" if isinstance(v, (int, float)) else ""
    size = "x".join(map(str, m.get("input_size") or []))
    return " · ".join(x for x in (when, m.get("task", "?"), size, score, m.get("id", "")) if x)


def summary_rows(m: dict[str, Any]) -> list[dict[str, str]]:
    """Key facts of a manifest as (field, value) rows."""
    hp = m.get("hparams") or {}
    tr = m.get("training") or {}
    ds = m.get("dataset") or {}
    q = (m.get("quantization") or {}).get("input") or {}
    rows = [
        ("Model id", m.get("id")), ("Task", m.get("task")), ("Classes", ", ".join(m.get("labels") or [])),
        ("Input", f"{'x'.join(map(str, m.get('input_size') or []))} RGB uint8"
                  + (f" (scale {q.get('scale'):g}, zero point {q.get('zero_point')})" if q else "")),
        ("Backbone", f"MobileNetV2 alpha {hp.get('alpha')}, weights {hp.get('weights')}"),
        ("Epochs", f"{tr.get('epochs_run', len((m.get('history') or {}).get('loss', [])))} of {hp.get('epochs')}"),
        ("Batch size / learning rate", f"{hp.get('batch_size')} / {hp.get('learning_rate')}"),
        ("Images (train / val / test)", f"{ds.get('train', '?')} / {ds.get('val', '?')} / {ds.get('test', '?')}"
         if ds else None),
        ("Training time", f"{tr['total_seconds']:.0f} s" if tr.get("total_seconds") else None),
        ("Trained on", describe_device(m["device"]) if m.get("device") else None),
        ("Dataset hash", (m.get("dataset_hash") or "")[:16] or None),
        ("Evaluated on", (m.get("metrics") or {}).get("split")),
    ]
    return [{"field": k, "value": str(v)} for k, v in rows if v not in (None, "", "None")]


def metric_comparison(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline metrics, float next to int8."""
    metrics = m.get("metrics") or {}
    f, q = metrics.get("float") or {}, metrics.get("int8") or {}
    keys = ("mAP", "mAP50") if m.get("task") == "detection" else ("accuracy",)
    rows = [{"metric": k, "float": f.get(k), "int8": q.get(k)} for k in keys if k in f or k in q]
    if "agreement" in metrics:
        rows.append({"metric": "int8 agrees with float", "float": None, "int8": metrics["agreement"]})
    return rows


def history_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Training curves in long form: {epoch, metric, value} (with a detector's validation mAP@0.5,
    measured every few epochs: ``training.selection.val_mAP50``)."""
    out = []
    for name, values in (m.get("history") or {}).items():
        for i, v in enumerate(values or []):
            if isinstance(v, (int, float)):
                out.append({"epoch": i + 1, "metric": name, "value": float(v)})
    sel = (m.get("training") or {}).get("selection") or {}
    for epoch, v in sorted((sel.get("val_mAP50") or {}).items(), key=lambda kv: int(kv[0])):
        if isinstance(v, (int, float)):
            out.append({"epoch": int(epoch), "metric": "val_mAP50", "value": float(v)})
    return out


def per_class_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-class precision/recall/support (classification) or AP (detection), float and int8."""
    metrics = m.get("metrics") or {}
    f, q = metrics.get("float") or {}, metrics.get("int8") or {}
    rows = []
    if m.get("task") == "detection":
        fa, qa = f.get("per_class_AP") or {}, q.get("per_class_AP") or {}
        for name in m.get("labels") or sorted(set(fa) | set(qa)):
            rows.append({"class": name, "AP (float)": fa.get(name), "AP (int8)": qa.get(name)})
        return rows
    fp, qp = f.get("per_class") or {}, q.get("per_class") or {}
    for name in m.get("labels") or sorted(set(fp) | set(qp)):
        a, b = fp.get(name) or {}, qp.get(name) or {}
        rows.append({"class": name, "support": a.get("support", b.get("support")),
                     "precision (float)": a.get("precision"), "recall (float)": a.get("recall"),
                     "precision (int8)": b.get("precision"), "recall (int8)": b.get("recall")})
    return rows


def confusion_rows(m: dict[str, Any], kind: str = "int8") -> list[dict[str, Any]]:
    """Confusion matrix cells in long form: {true, predicted, count} (classification)."""
    cm = ((m.get("metrics") or {}).get(kind) or {}).get("confusion_matrix")
    labels = m.get("labels") or []
    if not cm:
        return []
    return [{"true": labels[i] if i < len(labels) else str(i), "predicted": labels[j] if j < len(labels) else str(j),
             "count": int(c)} for i, row in enumerate(cm) for j, c in enumerate(row)]


def pr_curve_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Detection PR curves when the manifest has them: {class, recall, precision}.

    Accepts ``metrics.int8.pr_curves`` (or float) as {class: {"recall": [...], "precision": [...]}}.
    """
    metrics = m.get("metrics") or {}
    curves = (metrics.get("int8") or {}).get("pr_curves") or (metrics.get("float") or {}).get("pr_curves") or {}
    out = []
    for name, c in curves.items():
        if isinstance(c, dict):
            for r, p in zip(c.get("recall") or [], c.get("precision") or []):
                out.append({"class": name, "recall": float(r), "precision": float(p)})
    return out


def preflight_table(m: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """The Edge TPU preflight's op table and the row index of the first CPU op (None: all on TPU)."""
    pf = m.get("preflight") or {}
    rows, first = [], None
    first_idx = (pf.get("first_cpu_op") or {}).get("index")
    for i, op in enumerate(pf.get("ops") or []):
        rows.append({"#": op.get("index", i), "op": op.get("op"), "version": op.get("version"),
                     "runs on": op.get("placement"), "why": "; ".join(op.get("reasons") or [])})
        if first is None and first_idx is not None and op.get("index") == first_idx:
            first = len(rows) - 1
    return rows, first


def download_files(folder: str | Path, m: dict[str, Any]) -> list[dict[str, Any]]:
    """The files offered for download: {key, name, data (bytes), mime}; missing files are skipped."""
    folder = Path(folder)
    files = m.get("files") or {}
    out = []
    for key, default, mime in DOWNLOADS:
        name = files.get(key, default)
        p = folder / name
        if p.is_file():
            out.append({"key": key, "name": name, "data": p.read_bytes(), "mime": mime})
    return out


# -- how far the scores can be trusted ----------------------------------------------------
FEW_PHOTOS = 5  # fewer evaluated photos than this: the scores are not reliable


def evaluated_photos(m: dict) -> int | None:
    """How many photos the headline scores were measured on: the count the evaluation recorded
    (``n`` for classification, ``num_images`` for detection), else the confusion matrix's total."""
    metrics = m.get("metrics") or {}
    for kind in ("int8", "float"):
        part = metrics.get(kind) or {}
        for key in ("n", "num_images"):
            v = part.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        if part.get("confusion_matrix"):
            return int(sum(sum(row) for row in part["confusion_matrix"]))
    return None


def measured_on(m: dict) -> tuple[str, bool]:
    """Where the scores were measured, in words, and whether that flatters the model (it trained on them)."""
    split = (m.get("metrics") or {}).get("split")
    train_on = (m.get("dataset") or {}).get("train_on") or (m.get("hparams") or {}).get("train_on")
    if split == "all":
        return "Measured on all photos, which the model was trained on — this score looks better than it is.", True
    if split == "train":
        return ("Measured on the training photos, which the model was trained on (there were no validation or test "
                "photos) — this score looks better than it is."), True
    if train_on == "all":
        return (f"Measured on the {split} photos, which the model was also trained on (*Train on all images*) — "
                "this score looks better than it is."), True
    return (f"Measured on the **{split}** split, float Keras model and int8 TFLite model on the same images.", False)
