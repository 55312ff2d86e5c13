"""The import rules of the architecture, checked on every .py file of the project (ast, no imports run).

- only app.py and pages/ import streamlit (tests may, to drive the app);
- core/ never imports coral_runtime or builder, except the CLI (core/__main__.py, core/cli/*.py),
  and there only lazily, inside a function;
- only coral_runtime imports ai_edge_litert;
- coral_runtime never imports TensorFlow, Keras or streamlit (it ships in the robot image);
- pages and app.py never import TensorFlow or Keras;
- pages touch st.session_state only through pages/_shared/.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_ANYWHERE = {"node_modules", "__pycache__"}  # plus hidden folders (.venv, .git, …)
SKIP_TOP = {"venv", "data", "test-output", "build", "dist"}  # run-time output beside the code


@dataclass(frozen=True)
class Imp:
    path: str  # posix, relative to the project root
    module: str  # absolute dotted name
    line: int
    top_level: bool  # at module level (runs on import), not inside a function


def _py_files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        folders = rel.parts[:-1]
        if (folders and folders[0] in SKIP_TOP) or any(
                part in SKIP_ANYWHERE or part.startswith(".") for part in folders):
            continue
        out.append(p)
    return sorted(out)


def _package_of(rel: Path) -> list[str]:
    """The package a file belongs to (for a package's __init__.py: that package)."""
    return list(rel.parts[:-1])


def _imports(path: Path) -> list[Imp]:
    rel = path.relative_to(ROOT)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
    found: list[Imp] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Imp(rel.as_posix(), alias.name, child.lineno, not in_function))
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the file's package
                    base = _package_of(rel)[: len(_package_of(rel)) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                found.append(Imp(rel.as_posix(), module, child.lineno, not in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _root_of(module: str) -> str:
    return module.split(".", 1)[0]


ALL_IMPORTS = [imp for p in _py_files() for imp in _imports(p)]


def _is_test(path: str) -> bool:
    return path.startswith("tests/")


def _is_ui(path: str) -> bool:
    return path == "app.py" or path.startswith("pages/")


def _fmt(bad: list[Imp]) -> str:
    return "\n".join(f"  {i.path}:{i.line} imports {i.module}" for i in bad)


def test_the_walk_sees_the_project():
    paths = {i.path for i in ALL_IMPORTS}
    assert "core/store.py" in paths and "app.py" in paths
    assert any(p.startswith("pages/") for p in paths)


def test_only_app_and_pages_import_streamlit():
    bad = [i for i in ALL_IMPORTS if _root_of(i.module).startswith("streamlit")
           and not _is_ui(i.path) and not _is_test(i.path)]
    assert not bad, "streamlit is for app.py and pages/ only:\n" + _fmt(bad)


def test_core_never_imports_the_runtime_or_the_builder():
    bad = []
    for i in ALL_IMPORTS:
        if not i.path.startswith("core/") or _root_of(i.module) not in ("coral_runtime", "builder"):
            continue
        cli = i.path == "core/__main__.py" or i.path.startswith("core/cli/")
        if not cli or i.top_level:
            bad.append(i)
    assert not bad, ("core/ must not import coral_runtime/builder (the CLI may, inside a command "
                     "function):\n" + _fmt(bad))


def test_runtime_and_builder_import_only_core_of_ours():
    """coral_runtime imports core only; builder imports core and coral_runtime — the runtime it ships
    into the robot image, and runs in-process to check the image's answers in the smoke test."""
    allowed = {"coral_runtime/": {"core", "coral_runtime"}, "builder/": {"core", "coral_runtime", "builder"}}
    ours = {"core", "coral_runtime", "builder", "pages", "app"}
    bad = [i for i in ALL_IMPORTS for prefix, ok in allowed.items()
           if i.path.startswith(prefix) and _root_of(i.module) in ours and _root_of(i.module) not in ok]
    assert not bad, "coral_runtime imports core only; builder imports core and coral_runtime:\n" + _fmt(bad)


def test_only_coral_runtime_imports_litert():
    bad = [i for i in ALL_IMPORTS if _root_of(i.module) == "ai_edge_litert"
           and not i.path.startswith("coral_runtime/") and not _is_test(i.path)]
    assert not bad, "only coral_runtime imports ai_edge_litert:\n" + _fmt(bad)


@pytest.mark.parametrize("forbidden", ["tensorflow", "keras", "streamlit", "tf_keras"])
def test_coral_runtime_stays_small(forbidden):
    bad = [i for i in ALL_IMPORTS if i.path.startswith("coral_runtime/") and _root_of(i.module) == forbidden]
    assert not bad, f"coral_runtime ships in the robot image and must not import {forbidden}:\n" + _fmt(bad)


def test_pages_never_import_tensorflow():
    bad = [i for i in ALL_IMPORTS if _is_ui(i.path) and _root_of(i.module) in ("tensorflow", "keras", "tf_keras")]
    assert not bad, "pages are widgets + calls into core; TensorFlow stays in core:\n" + _fmt(bad)


def _session_state_uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and n.attr == "session_state"]


def test_session_state_only_in_pages_shared():
    bad = []
    for p in _py_files():
        rel = p.relative_to(ROOT).as_posix()
        if not _is_ui(rel) or rel.startswith("pages/_shared/"):
            continue
        bad += [f"  {rel}:{line}" for line in _session_state_uses(p)]
    assert not bad, "pages use st.session_state only through pages/_shared/:\n" + "\n".join(bad)


def test_the_rules_catch_violations(tmp_path, monkeypatch):
    """The walker itself: relative imports resolve, lazy imports are seen as lazy."""
    f = tmp_path / "core" / "cli" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("from . import common\nimport streamlit as st\n"
                 "def cmd():\n    from coral_runtime import devices\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    imps = _imports(f)
    assert [(i.module, i.top_level) for i in imps] == [
        ("core.cli", True), ("streamlit", True), ("coral_runtime", False)]
