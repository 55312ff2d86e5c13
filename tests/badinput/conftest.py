"""The bad-input suite's tally: every case records whether it was handled and what good files it lost;
the terminal summary prints the line, and the session fails when it is not all handled / 0 lost."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Outcome:
    case: str
    handled: bool
    lost: list[str]


OUTCOMES: list[Outcome] = []


@pytest.fixture
def tally():
    """Record one case's outcome (``tally(case_id, handled, lost_files)``)."""
    def record(case: str, handled: bool, lost: list[str]) -> None:
        OUTCOMES.append(Outcome(case, handled, lost))
    return record


def summary_line() -> str:
    tried = len(OUTCOMES)
    handled = sum(o.handled for o in OUTCOMES)
    lost = sum(len(o.lost) for o in OUTCOMES)
    return f"{tried} bad inputs tried, {handled} handled with a reason, {lost} lost good files"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not OUTCOMES:
        return
    terminalreporter.section("bad-input suite")
    terminalreporter.write_line(summary_line())
    for o in OUTCOMES:
        if not o.handled or o.lost:
            terminalreporter.write_line(f"  {o.case}: handled={o.handled} lost={o.lost}")


def pytest_sessionfinish(session, exitstatus):
    if OUTCOMES and (any(not o.handled for o in OUTCOMES) or any(o.lost for o in OUTCOMES)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
