"""``python -m cli dataset import|export|stats|split``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import add_common, emit, store_from
from cli.issues import issue_rows, issues_table

FORMAT_CHOICES = ("auto", "voc", "coco", "yolo", "csv", "folders", "images")


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="import, export, split and inspect datasets")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)

    p = dsub.add_parser("import", help="import images and annotations (folders, zips or files)")
    add_common(p)
    p.add_argument("--project", required=True)
    p.add_argument("--task", choices=("detection", "classification"),
                   help="task of a new project (default: detection; required to disambiguate folders)")
    p.add_argument("--format", default="auto", choices=FORMAT_CHOICES)
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_import)

    p = dsub.add_parser("export", help="export a project to a folder or .zip")
    add_common(p)
    p.add_argument("--project", required=True)
    p.add_argument("--format", required=True, choices=("voc", "coco", "yolo", "csv", "folders"))
    p.add_argument("--out", required=True, help="a folder, or a file ending in .zip")
    p.set_defaults(func=cmd_export)

    p = dsub.add_parser("stats", help="counts per class and split")
    add_common(p)
    p.add_argument("--project", required=True)
    p.set_defaults(func=cmd_stats)

    p = dsub.add_parser("split", help="re-assign train/val/test (stratified, seeded)")
    add_common(p)
    p.add_argument("--project", required=True)
    p.add_argument("--ratios", default="0.8,0.1,0.1", help="train,val,test (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--all", action="store_true", help="also re-split images placed by hand")
    p.set_defaults(func=cmd_split)


def _progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction * 100:5.1f}%] {message:<60}", end="", file=sys.stderr, flush=True)
    if fraction >= 1.0:
        print(file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    from core.data.importer import import_paths

    store = store_from(args)
    task = args.task or ("classification" if args.format == "folders" else "detection")
    project = store.get_or_create_project(args.project, task)
    fmt = None if args.format == "auto" else args.format
    report = import_paths(store, project, args.paths, fmt=fmt, progress=_progress)
    if report.issues:
        print(f"{len(report.issues)} issue(s):\n{issues_table(report.issues)}", file=sys.stderr)
    summary = {"project": project.name, "task": project.task.value, **report.to_dict()}
    summary["issues"] = issue_rows(report.issues)
    summary["stats"] = store.stats(project)
    emit(summary)
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from core.data.exporter import export_project

    store = store_from(args)
    project = store.get_project(args.project)
    emit(export_project(store, project, args.format, Path(args.out)))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    store = store_from(args)
    emit(store.stats(store.get_project(args.project)))
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    store = store_from(args)
    project = store.get_project(args.project)
    ratios = tuple(float(x) for x in args.ratios.split(","))
    if len(ratios) != 3:
        raise ValueError("--ratios needs three numbers: train,val,test")
    counts = store.assign_splits(project, ratios, seed=args.seed, include_locked=args.all)  # type: ignore[arg-type]
    emit({"project": project.name, "assigned": counts, "per_split": store.stats(project)["per_split"]})
    return 0
