"""Retraining commands: ``jobs resume``, ``jobs discard-checkpoint`` (registered under ``jobs`` by
cli/train.py) and the ``models`` group (lineage, dataset versions, evaluation, what to label next)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import add_common, emit, store_from


def register_jobs(jsub: argparse._SubParsersAction) -> None:
    """Add ``resume`` and ``discard-checkpoint`` to the ``jobs`` command."""
    q = jsub.add_parser("resume", help="resume an interrupted training job at its next epoch")
    add_common(q)
    q.add_argument("job_id")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_jobs_resume)
    q = jsub.add_parser("discard-checkpoint", help="delete an interrupted job's checkpoint")
    add_common(q)
    q.add_argument("job_id")
    q.set_defaults(func=cmd_jobs_discard)


def run_train_foreground(store, params: dict, progress: bool) -> int:
    """Run a train job in the foreground with a progress bar; print the summary; exit code."""
    from core.data import artefacts
    from cli.train import _brief, _install_hooks, _quiet_tf
    from core.jobs import JobState, run_foreground

    _quiet_tf()
    _install_hooks()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=1000, unit="‰", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def on_event(event: dict) -> None:
        if bar is None:
            return
        if event.get("fraction") is not None:
            bar.n = int(round(float(event["fraction"]) * 1000))
        if event.get("message"):
            bar.set_postfix_str(str(event["message"])[:80], refresh=False)
        bar.refresh()

    try:
        job = run_foreground(store, "train", params, project=params.get("project"), on_event=on_event)
    finally:
        if bar is not None:
            bar.close()
    summary: dict[str, Any] = {"ok": job.state == JobState.SUCCEEDED, "job_id": job.id, "state": job.state.value}
    if job.state != JobState.SUCCEEDED:
        summary["error"] = job.error or job.message
        print(f"error: {summary['error']}", file=sys.stderr)
        emit(summary)
        return 1
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    summary.update({"artefact_id": job.artefact_id, "artefact": str(folder),
                    "metrics": {k: _brief(v) for k, v in m.get("metrics", {}).items()},
                    "training": m.get("training")})
    emit(summary)
    return 0


def cmd_jobs_resume(args: argparse.Namespace) -> int:
    from core.training.resume import prepare_resume

    store = store_from(args)
    params = prepare_resume(store, args.job_id)  # ResumeError (a ValueError): a one-line message
    print(f"resuming job {args.job_id} after epoch {params['resume_epoch']}", file=sys.stderr)
    return run_train_foreground(store, params, progress=not args.no_progress)


def cmd_jobs_discard(args: argparse.Namespace) -> int:
    from core.training.resume import discard_checkpoint

    removed = discard_checkpoint(store_from(args), args.job_id)
    emit({"ok": True, "job_id": args.job_id, "removed": removed})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """The ``models`` command group."""
    p = sub.add_parser("models", help="trained models: lineage, dataset versions, evaluation, what to label")
    msub = p.add_subparsers(dest="models_command", required=True)
    q = msub.add_parser("list", help="a project's models with their parent and dataset changes since")
    add_common(q)
    q.add_argument("--project", required=True)
    q.set_defaults(func=cmd_models_list)
    q = msub.add_parser("changes", help="photos added / relabelled / removed since a model was trained")
    add_common(q)
    q.add_argument("model")
    q.set_defaults(func=cmd_models_changes)
    q = msub.add_parser("restore-dataset", help="restore the exact photos and boxes a model was trained on "
                                                "into a new project (and optionally export them)")
    add_common(q)
    q.add_argument("model")
    q.add_argument("--as", dest="name", required=True, help="name of the new project")
    q.add_argument("--export", help="also export it in this format (voc, coco, yolo, csv, folders)")
    q.add_argument("--out", help="where to export (folder or .zip)")
    q.set_defaults(func=cmd_models_restore)
    q = msub.add_parser("evaluate-current", help="evaluate a model on the project's current split")
    add_common(q)
    q.add_argument("model")
    q.add_argument("--split", default="val", choices=("train", "val", "test", "all"))
    q.set_defaults(func=cmd_models_evaluate)
    q = msub.add_parser("rank", help="photos to label next (model uncertainty) and likely label mistakes")
    add_common(q)
    q.add_argument("model")
    q.add_argument("--top", type=int, default=20)
    q.set_defaults(func=cmd_models_rank)


def _model(store, model_id: str) -> tuple[Any, dict]:
    from core.data import artefacts

    folder = artefacts.artefact_path(store.root, model_id)
    return folder, artefacts.load_manifest(folder)


def cmd_models_list(args: argparse.Namespace) -> int:
    from core.data import artefacts
    from core.data import versions

    store = store_from(args)
    project = store.get_project(args.project)
    rows = []
    for m in artefacts.list_artefacts(store.root, project.name):
        row = {"id": m.get("id"), "created": m.get("created"), "parent": (m.get("parent") or {}).get("id"),
               "labels": m.get("labels")}
        try:
            ch = versions.changes_since(versions.read_version(m["path"]), store, project)
            row.update({k: ch[k] for k in ("trained_on", "added", "relabelled", "removed", "resplit")},
                       summary=versions.describe(ch))
        except versions.VersionError as exc:
            row["summary"] = str(exc)
        print(f"{row['id']}  parent {row['parent'] or '-':<24} {row['summary']}", file=sys.stderr)
        rows.append(row)
    emit({"ok": True, "models": rows})
    return 0


def cmd_models_changes(args: argparse.Namespace) -> int:
    from core.data import versions

    store = store_from(args)
    folder, m = _model(store, args.model)
    project = store.get_project(m["project"])
    ch = versions.changes_since(versions.read_version(folder), store, project)
    print(versions.describe(ch), file=sys.stderr)
    emit({"ok": True, "model": args.model, "summary": versions.describe(ch),
          **{k: v for k, v in ch.items() if k != "ids"}, "ids": ch["ids"]})
    return 0


def cmd_models_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.data import versions

    store = store_from(args)
    folder, _ = _model(store, args.model)
    project = versions.restore(store, versions.read_version(folder), args.name)
    summary: dict[str, Any] = {"ok": True, "project": project.name, "dataset_hash": store.dataset_hash(project),
                               "images": store.count_images(project)}
    if args.export:
        from core.data.exporter import export_project

        if not args.out:
            raise ValueError("--export needs --out (a folder or a .zip path)")
        summary["export"] = export_project(store, project, args.export, Path(args.out))
    emit(summary)
    return 0


def cmd_models_evaluate(args: argparse.Namespace) -> int:
    from cli.train import _quiet_tf
    from core.training.lineage import evaluate_current

    _quiet_tf()
    store = store_from(args)
    _, m = _model(store, args.model)
    result = evaluate_current(store, args.model, store.get_project(m["project"]), args.split)
    emit({"ok": True, "model": args.model, **result})
    return 0


def cmd_models_rank(args: argparse.Namespace) -> int:
    from core.training.active_learning import rank_photos
    from cli.train import _quiet_tf

    _quiet_tf()
    store = store_from(args)
    _, m = _model(store, args.model)
    r = rank_photos(store, store.get_project(m["project"]), args.model)
    for title, key in (("next to label", "next"), ("likely mistakes", "mistakes")):
        print(f"{title}:", file=sys.stderr)
        for item in r[key][:args.top]:
            print(f"  {item['score']:.2f}  {item['filename']}  {'; '.join(item['reasons'][:2])}", file=sys.stderr)
    emit({"ok": True, "model": args.model, "next": r["next"][:args.top], "mistakes": r["mistakes"][:args.top]})
    return 0
