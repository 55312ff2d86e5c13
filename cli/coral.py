"""``python -m cli preflight|compile|predict``: the Edge TPU stages without the UI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import add_common, emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preflight", help="static Edge TPU check of a .tflite (ops, first CPU cut)")
    add_common(p)
    p.add_argument("model", help="a .tflite file, or a model artefact folder")
    p.add_argument("--ops", action="store_true", help="print the per-op table")
    p.set_defaults(func=cmd_preflight)

    p = sub.add_parser("compile", help="compile a .tflite with edgetpu_compiler")
    add_common(p)
    p.add_argument("model", help="a .tflite file, or a model artefact folder")
    p.add_argument("--out", help="output folder (default: next to the model)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--min-runtime-version", type=int, default=None)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("predict", help="run a model artefact on images (Edge TPU or CPU)")
    add_common(p)
    p.add_argument("--model", required=True, help="model artefact folder")
    p.add_argument("--device", default="auto", help="auto, cpu, :0, usb:0, pci:0 …")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--full-decode", action="store_true",
                   help="decode large JPEGs at full size (default: reduced scale, as the robot image's server)")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=cmd_predict)


def _model_file(arg: str) -> Path:
    p = Path(arg)
    if p.is_dir():
        from core.data import artefacts

        m = artefacts.load_manifest(p)
        return p / (m.get("files") or {}).get("int8", artefacts.INT8_MODEL)
    if not p.exists():
        raise FileNotFoundError(f"no model at {p}")
    return p


def cmd_preflight(args: argparse.Namespace) -> int:
    from coral_runtime.preflight import preflight

    rep = preflight(_model_file(args.model))
    if args.ops:
        for o in rep.ops:
            why = "; ".join(o.reasons)
            print(f"{o.index:4d} {o.op:<30} v{o.version:<2} {o.placement:<14} {why}")
    print(rep.summary)
    d = rep.to_dict()
    d.pop("ops")
    emit({"ok": rep.compilable, **d})
    return 0 if rep.compilable else 1


def cmd_compile(args: argparse.Namespace) -> int:
    from coral_runtime import compiler as C

    model = _model_file(args.model)
    out = Path(args.out) if args.out else model.parent
    try:
        res = C.compile_model(model, out, timeout=args.timeout, min_runtime_version=args.min_runtime_version)
    except C.CompilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        emit({"ok": False, "error": str(exc), "docker": C.docker_commands(model, out),
              **({"result": C.summarize(exc.result)} if exc.result else {})})
        return 2
    if res.stdout:
        print(res.stdout.rstrip())
    if res.advice:
        print(f"advice: {res.advice}", file=sys.stderr)
    emit(C.summarize(res))
    return 0 if res.ok else 1


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict on image files with ``Predictor.predict_bytes`` (the robot image server's own call:
    same decode, boxes in original pixels)."""
    from coral_runtime.predictor import Predictor

    pred = Predictor(args.model, device=args.device)
    if pred.fallback_reason:
        print(f"note: {pred.fallback_reason}", file=sys.stderr)
    results = []
    for path in args.images:
        r = pred.predict_bytes(Path(path).read_bytes(), threshold=args.threshold, top_k=args.top_k,
                               draft=not args.full_decode, max_pixels=None)
        d = r.to_dict()
        d["image"] = str(path)
        results.append(d)
        what = (", ".join(f"{c['label']} {c['score']:.2f}" for c in d["classes"]) if r.task == "classification"
                else f"{len(d['detections'])} detections")
        print(f"{path}: {what} ({r.latency_ms:.1f} ms on {r.device})")
    emit({"ok": True, "model": str(args.model), "task": pred.task, "device": pred.device,
          "fallback_reason": pred.fallback_reason, "results": results})
    return 0
