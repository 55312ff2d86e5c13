"""The old module names (before core's rooms) still import, as the very same modules, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from core import _moved

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("old,new", [("core.store", "core.data.store"), ("core.formats.voc", "core.data.formats.voc"),
                                     ("core.export", "core.training.int8"), ("core.ray_runner", "core.jobs.ray_runner"),
                                     ("core.evaluate", "core.training.evaluation")])
def test_old_names_are_the_new_modules(old, new):
    assert _moved.new_name(old) == new
    assert importlib.import_module(old) is importlib.import_module(new)


def test_unknown_and_current_names_are_left_alone():
    assert _moved.new_name("core.data.store") is None
    assert _moved.new_name("core.storefront") is None
    assert _moved.new_name("core.jobs") is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("core.no_such_module")


def test_an_old_import_warns_in_a_fresh_process():
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n    from core.store import Store\nexcept DeprecationWarning as w:\n    print('warned:', w)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "warned: core.store moved to core.data.store", r.stderr
