"""``python -m cli train …``, ``python -m cli evaluate …``, ``python -m cli jobs list``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import add_common, emit, store_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model in the foreground (the same job the app runs)")
    add_common(p)
    p.add_argument("--project", required=True)
    p.add_argument("--task", choices=("classification", "detection"), help="default: the project's task")
    p.add_argument("--epochs", type=int)
    p.add_argument("--minutes", type=float, help="detection: train for this many minutes (the epochs then "
                                                    "follow the clock; the best validation mAP is kept)")
    p.add_argument("--image-size", type=int, help="square input size (classification default 224; 96 is quick)")
    p.add_argument("--alpha", type=float, help="MobileNetV2 width: 0.35, 0.5, 0.75, 1.0, 1.3, 1.4")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--weights", help="imagenet | none | PATH to a Keras weights file")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--from", dest="init_from", metavar="MODEL_ID",
                   help="continue from this model of the project (same input size and width)")
    p.add_argument("--class-balance", choices=("auto", "none", "weights", "sampling"),
                   help="classification: class weights (auto) or none; detection: class-balanced sampling")
    p.add_argument("--train-on", choices=("split", "all"), help="train split only (default) or every image")
    p.add_argument("--max-images", type=int, help="use at most N images (quick runs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--runner", choices=("local", "ray"), default="local",
                   help="run here (default) or on a Ray cluster (token from $STUDIO_RAY_TOKEN)")
    p.add_argument("--ray-address", help="the Ray cluster's dashboard URL (default: the studio's setting)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto (default): a GPU when TensorFlow sees one, else the CPU; gpu fails if none is visible")
    p.add_argument("--mixed-precision", action="store_true",
                   help="on a GPU: float16 compute, float32 weights (faster; the int8 export is unchanged)")
    p.add_argument("--ray-node", choices=("cpu", "gpu"), default="cpu",
                   help="with --runner ray: a CPU node (default) or a node with a GPU")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model folder's float and int8 models on a split")
    add_common(p)
    p.add_argument("--model", required=True, help="the model folder (or its id)")
    p.add_argument("--project", help="default: the project in the model's manifest")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("jobs", help="list background jobs")
    jsub = p.add_subparsers(dest="jobs_command", required=True)
    q = jsub.add_parser("list", help="recent jobs, newest first")
    add_common(q)
    q.add_argument("--project")
    q.add_argument("--limit", type=int, default=20)
    q.set_defaults(func=cmd_jobs_list)
    from cli.retrain import register_jobs

    register_jobs(jsub)


def hparams_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``hparams`` dict of a train job from the given options (unset ones keep the defaults)."""
    mapping = {"epochs": "epochs", "image_size": "image_size", "alpha": "alpha", "batch_size": "batch_size",
               "learning_rate": "learning_rate", "weights": "weights", "train_on": "train_on",
               "max_images": "max_images", "seed": "seed", "init_from": "init_from",
               "class_balance": "class_balance", "minutes": "minutes"}
    hp = {key: getattr(args, attr) for attr, key in mapping.items() if getattr(args, attr, None) is not None}
    if args.no_augment:
        hp["augment"] = False
    return hp


def device_params(args: argparse.Namespace) -> dict[str, Any]:
    """The job's device params from ``--device``/``--mixed-precision`` (and ``--ray-node`` for Ray)."""
    params: dict[str, Any] = {"device": getattr(args, "device", None) or "auto",
                              "mixed_precision": bool(getattr(args, "mixed_precision", False))}
    if getattr(args, "runner", "local") == "ray":
        params["ray_node"] = getattr(args, "ray_node", None) or "cpu"
        if params["device"] == "auto":
            params.pop("device")  # the node type decides (core.jobs.ray_node.job_params)
    return params


def _install_hooks() -> None:
    try:  # the Edge TPU preflight / compiler step after publishing (CLI may import coral_runtime)
        from coral_runtime.hooks import install
    except ImportError:
        return
    install()


def _quiet_tf() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ info/warning lines drown the progress bar


def cmd_train(args: argparse.Namespace) -> int:
    _quiet_tf()
    from core.data import artefacts
    from core.jobs import JobState, run_foreground

    store = store_from(args)
    project = store.get_project(args.project)
    task = args.task or project.task.value
    if getattr(args, "minutes", None) is not None and (task != "detection" or args.minutes <= 0):
        raise ValueError("--minutes is a positive time budget, for detection only (classification: --epochs)")
    params = {"task": task, "project": project.name, "hparams": hparams_from_args(args),
              **device_params(args)}
    _install_hooks()
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=1000, unit="‰", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def on_event(event: dict) -> None:
        if bar is None:
            return
        frac = event.get("fraction")
        if frac is not None:
            bar.n = int(round(float(frac) * 1000))
        if event.get("message"):
            bar.set_postfix_str(str(event["message"])[:80], refresh=False)
        bar.refresh()

    try:
        if args.runner == "ray":
            job = _run_on_ray(store, args, params, on_event)
        else:
            job = run_foreground(store, "train", params, project=project.name, on_event=on_event)
    finally:
        if bar is not None:
            bar.close()
    summary: dict[str, Any] = {"ok": job.state == JobState.SUCCEEDED, "job_id": job.id, "state": job.state.value}
    if job.state != JobState.SUCCEEDED:
        summary["error"] = job.error or job.message
        if job.error:
            print(f"error: {job.error}", file=sys.stderr)
        emit(summary)
        return 1
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    summary.update({"artefact_id": job.artefact_id, "artefact": str(folder),
                    "metrics": {k: _brief(v) for k, v in m.get("metrics", {}).items()},
                    "training": m.get("training")})
    emit(summary)
    return 0


def _run_on_ray(store, args: argparse.Namespace, params: dict, on_event):
    """Submit the job to the Ray cluster and follow it to its end (Ctrl-C cancels it)."""
    import time

    from core.data import settings
    from core.jobs.ray_runner import RayRunner

    address = args.ray_address or settings.ray_address(store)
    if not address:
        raise ValueError("--runner ray needs --ray-address URL (or the cluster address set in the studio)")
    runner = RayRunner(store, address, token=settings.ray_token_from_env())
    job_id = runner.submit("train", params)
    print(f"submitted job {job_id} to the Ray cluster at {address}", file=sys.stderr)
    seen = 0
    try:
        while True:
            for ev in runner.events(job_id, since=seen):
                seen = ev["seq"]
                if ev.get("type") == "progress":
                    on_event(ev)
            job = runner.get(job_id)
            if job.state.finished:
                return job
            time.sleep(0.5)
    except KeyboardInterrupt:
        runner.cancel(job_id)
        runner.wait(job_id, timeout=60)
        raise


def _brief(metrics: Any) -> Any:
    """Metrics without the bulky per-class/confusion parts (those stay in the manifest)."""
    if isinstance(metrics, dict):
        return {k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")}
    return metrics


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.data import artefacts
    from core.training.evaluation import evaluate_artefact

    _quiet_tf()
    store = store_from(args)
    folder = Path(args.model)
    if not (folder / artefacts.MANIFEST).exists():
        folder = artefacts.artefact_path(store.root, args.model)
    manifest = artefacts.load_manifest(folder)
    project = args.project or manifest.get("project")
    if not project:
        raise ValueError("Give --project: the model's manifest names none.")
    result = evaluate_artefact(store, folder, project, args.split)
    for kind in ("float", "int8"):
        r = result.get(kind) or {}
        if "accuracy" in r:
            print(f"{kind:>5}: accuracy {r['accuracy']:.4f} on {result.get('n_images')} images "
                  f"({args.split})", file=sys.stderr)
    emit({"ok": True, "model": str(folder), **result})
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from core.jobs import JobTable

    store = store_from(args)
    jobs = JobTable(store).list(project=args.project, limit=args.limit)
    for j in jobs:
        pct = f"{j.progress * 100:5.1f}%" if j.progress is not None else "     "
        print(f"{j.id}  {j.kind:<12} {j.state.value:<11} {pct}  {j.project or '-':<20} {j.message}",
              file=sys.stderr)
    emit({"ok": True, "jobs": [{"id": j.id, "kind": j.kind, "state": j.state.value, "project": j.project,
                                "progress": j.progress, "artefact_id": j.artefact_id, "error": j.error,
                                "created": j.created, "message": j.message} for j in jobs]})
    return 0
