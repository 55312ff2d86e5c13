"""Retraining commands: ``jobs resume``, ``jobs discard-checkpoint`` (registered under ``jobs`` by
core/cli/train.py) and the ``models`` group (lineage, dataset versions, evaluation, what to label next)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli.common import add_common, emit, store_from


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


def run_train_job(store, params: dict, progress: bool) -> int:
    """Run a train job in the foreground with a progress bar; print the summary; exit code."""
    from core import artefacts
    from core.cli.train import _brief, _install_hooks, _quiet_tf
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
    return run_train_job(store, params, progress=not args.no_progress)


def cmd_jobs_discard(args: argparse.Namespace) -> int:
    from core.training.resume import discard_checkpoint

    removed = discard_checkpoint(store_from(args), args.job_id)
    emit({"ok": True, "job_id": args.job_id, "removed": removed})
    return 0
