"""Headless CLI: ``studio <command> …`` (or ``python -m cli <command> …``); every command prints a
JSON summary last.

Subcommands live in ``cli/<group>.py`` modules, each exposing ``register(subparsers)``. The CLI
is an entry point on the top floor, like ``app.py``: it may import builder, coral_runtime and core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

GROUPS = ("dataset", "train", "coral", "coral_devices", "build", "retrain")


def build_parser() -> argparse.ArgumentParser:
    from core.jobs import register_kind_module

    register_kind_module("build-image", "builder.jobs")
    parser = argparse.ArgumentParser(prog="studio", description="Edge TPU Retraining Studio")
    parser.add_argument("--data-dir", help="data directory (default $STUDIO_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        try:
            mod = importlib.import_module(f"cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cli.{group}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(json.dumps({"ok": False, "error": "interrupted"}))
        return 130
    except Exception as exc:  # a clear one-line error, never a traceback, for known failures
        from cli.common import is_user_error

        if not is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2


def run() -> None:
    """The ``studio`` console command (pyproject.toml's [project.scripts])."""
    sys.exit(main())


if __name__ == "__main__":
    run()
