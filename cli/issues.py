"""The import report's issues for the terminal: JSON rows and a readable table on stderr."""

from __future__ import annotations

import shutil
import textwrap
from typing import Iterable

from core.data.formats.base import Issue

HEADERS = ("file", "problem", "action")


def issue_rows(issues: Iterable[Issue]) -> list[dict[str, str]]:
    """One ``{file, problem, action}`` dict per issue (the JSON summary's ``issues``)."""
    return [{"file": i.item, "problem": i.reason, "action": i.action} for i in issues]


def issues_table(issues: Iterable[Issue], width: int | None = None) -> str:
    """A plain-text table (file | problem | action); long problems wrap inside their column."""
    rows = [(i.item, i.reason, i.action) for i in issues]
    if not rows:
        return ""
    width = width or shutil.get_terminal_size((120, 24)).columns
    w_file = min(max(len(HEADERS[0]), *(len(r[0]) for r in rows)), 40)
    w_act = max(len(HEADERS[2]), *(len(r[2]) for r in rows))
    w_prob = max(30, width - w_file - w_act - 6)
    lines = [f"{HEADERS[0]:<{w_file}} | {HEADERS[1]:<{w_prob}} | {HEADERS[2]}",
             f"{'-' * w_file}-+-{'-' * w_prob}-+-{'-' * w_act}"]
    for item, reason, action in rows:
        files = textwrap.wrap(item, w_file, break_long_words=True) or [""]
        probs = textwrap.wrap(reason, w_prob) or [""]
        for n in range(max(len(files), len(probs))):
            f = files[n] if n < len(files) else ""
            p = probs[n] if n < len(probs) else ""
            a = action if n == 0 else ""
            lines.append(f"{f:<{w_file}} | {p:<{w_prob}} | {a}".rstrip())
    return "\n".join(lines)
