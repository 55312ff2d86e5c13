"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.data.store import Store


USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError, LookupError)


def is_user_error(exc: BaseException) -> bool:
    """Errors that are the input's fault and deserve a message, not a traceback."""
    from core.data.store import StoreError

    return isinstance(exc, (StoreError, *USER_ERRORS))


def store_from(args: argparse.Namespace) -> Store:
    return Store(getattr(args, "data_dir", None))


def emit(summary: dict[str, Any]) -> None:
    """Print the command's JSON summary as the last line of output."""
    print(json.dumps(summary, default=str, sort_keys=True), flush=True)


def add_common(p: argparse.ArgumentParser) -> None:
    """Options every subcommand accepts (also after the subcommand name)."""
    p.add_argument("--data-dir", default=argparse.SUPPRESS,
                   help="data directory (default $STUDIO_DATA_DIR or ./data)")
