"""Headless CLI: ``python -m core <command> …``; every command prints a JSON summary last.

Subcommands live in ``core/cli/<group>.py`` modules, each exposing
``register(subparsers)``. The CLI is an entry point like ``app.py``: its
subcommands may import ``coral_runtime`` and ``builder`` lazily (the rest of
``core`` never does).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

GROUPS = ("dataset", "train", "coral", "build", "retrain")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Edge TPU Retraining Studio")
    parser.add_argument("--data-dir", help="data directory (default $STUDIO_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        try:
            mod = importlib.import_module(f"core.cli.{group}")
        except ModuleNotFoundError as exc:
            if exc.name == f"core.cli.{group}":
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
        from core.cli.common import is_user_error

        if not is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2


if __name__ == "__main__":
    sys.exit(main())
