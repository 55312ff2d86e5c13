"""Every bad input beside good files: handled with a reason, and no good file lost.

Each case imports the good raccoon dataset of its format together with one bad thing (see
``cases.py``); the tally prints "N bad inputs tried, N handled with a reason, 0 lost good files".
"""

from __future__ import annotations

import pytest

from core.config import Limits
from core.data.importer import import_uploads
from tests.badinput.cases import CASES, Case, good, zip_of


def _uploads(case: Case) -> tuple[list[tuple[str, bytes]], dict[str, int], str]:
    g = good(case.fmt)
    bad = case.bad(g)
    if case.archive:
        return [("good.zip", zip_of(g.files)), *bad.items()], dict(g.boxes), g.task
    if case.loose:
        return [*g.files.items(), *bad.items()], dict(g.boxes), g.task
    return [("dataset.zip", zip_of(g.files | bad))], {**g.boxes, **case.extra_good}, g.task


def _named(case: Case, report) -> bool:
    """The report names the bad thing with a reason and an expected action (or refuses its archive)."""
    if case.archive and report.refused and case.item in report.refused:
        return True
    return any(case.item in i.item and i.reason.strip() and i.action in case.actions for i in report.issues)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_handled_and_no_good_file_is_lost(case: Case, store, tally):
    uploads, want, task = _uploads(case)
    project = store.create_project("p", task)
    handled, lost = False, list(want)
    try:
        report = import_uploads(store, project, uploads, limits=Limits(**case.limits))
        handled = _named(case, report)
        got = {}
        for rec in store.list_images(project):
            got.setdefault(rec.filename, len(rec.boxes))
        lost = [f for f, n in want.items() if got.get(f, -1) < n]
    finally:
        tally(case.id, handled, lost)
    assert handled, [(i.item, i.action, i.reason) for i in report.issues] + [report.refused]
    assert lost == []


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo", "csv", "folders"])
def test_good_datasets_alone_import_cleanly(fmt, store):
    """The control: without the bad file every good photo and box comes in, with nothing to report."""
    g = good(fmt)
    project = store.create_project("p", g.task)
    report = import_uploads(store, project, [("dataset.zip", zip_of(g.files))])
    assert report.ok and report.format == fmt and report.issues == []
    assert report.images_added == len(g.boxes) and report.boxes_added == sum(g.boxes.values())
