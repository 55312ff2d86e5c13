"""The import rules of the architecture, checked on every .py file of the project (ast, no imports run).

- the floors (docs/ARCHITECTURE.md): UI (app.py, pages/) and cli/ -> builder/ -> coral_runtime/ -> core/;
  an import never runs up a floor, lazy imports (inside a function) included, and the two top-floor
  entry points (UI and cli) never import each other;
- inside core: core.data imports no other room, core.jobs only core.data, core.training core.data and
  core.jobs; the rooms may all use core's own modules (config), which import no room;
- the project uses the new module names only (``core/_moved.py`` keeps the old ones for others);
- only app.py and pages/ import streamlit (tests may, to drive the app);
- only coral_runtime imports ai_edge_litert;
- coral_runtime never imports TensorFlow, Keras or streamlit (it ships in the robot image);
- pages and app.py never import TensorFlow or Keras;
- pages touch st.session_state only through pages/_shared/;
- the pages' helpers (pages/_shared/) import each other without a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import _moved

ROOT = Path(__file__).resolve().parents[1]
SKIP_ANYWHERE = {"node_modules", "__pycache__"}  # plus hidden folders (.venv, .git, …)
SKIP_TOP = {"venv", "data", "test-output", "build", "dist"}  # run-time output beside the code

#: floor of each of our top-level packages (higher = nearer the user); "ui" is app.py + pages/
FLOORS = {"ui": 4, "cli": 4, "builder": 3, "coral_runtime": 2, "core": 1}
#: the rooms of core and the rooms each may import ("" is core's own modules: config, _moved …)
ROOMS = {"": {""}, "data": {"", "data"}, "jobs": {"", "data", "jobs"},
         "training": {"", "data", "jobs", "training"}}


@dataclass(frozen=True)
class Imp:
    path: str  # posix, relative to the project root
    module: str  # absolute dotted name
    line: int
    top_level: bool  # at module level (runs on import), not inside a function


def _py_files(root: Path = ROOT) -> list[Path]:
    out = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        folders = rel.parts[:-1]
        if (folders and folders[0] in SKIP_TOP) or any(
                part in SKIP_ANYWHERE or part.startswith(".") for part in folders):
            continue
        out.append(p)
    return sorted(out)


def _package_of(rel: Path) -> list[str]:
    """The package a file belongs to (for a package's __init__.py: that package)."""
    return list(rel.parts[:-1])


def _imports(path: Path, root: Path = ROOT) -> list[Imp]:
    rel = path.relative_to(root)
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
                if module in ("core", "core.data", "core.jobs", "core.training") or module == "pages._shared":
                    # "from core.data import store": the names may be modules; record each one
                    for alias in child.names:
                        found.append(Imp(rel.as_posix(), f"{module}.{alias.name}", child.lineno, not in_function))
                else:
                    found.append(Imp(rel.as_posix(), module, child.lineno, not in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _all_imports(root: Path = ROOT) -> list[Imp]:
    return [imp for p in _py_files(root) for imp in _imports(p, root)]


def _root_of(module: str) -> str:
    return module.split(".", 1)[0]


def _unit_of_path(path: str) -> str | None:
    """The floor unit a project file belongs to (None: tests, bench, scripts — outside the floors)."""
    if path == "app.py" or path.startswith("pages/"):
        return "ui"
    top = path.split("/", 1)[0]
    return top if top in FLOORS and "/" in path else None


def _unit_of_module(module: str) -> str | None:
    root = _root_of(module)
    if root in ("app", "pages"):
        return "ui"
    return root if root in FLOORS else None


def _room_of_module(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ROOMS else ""


def _room_of_path(path: str) -> str:
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[1] in ROOMS else ""


def layer_violations(imports: list[Imp]) -> list[Imp]:
    """Imports that run against the floors (up, or across the top floor) or between core's rooms
    against their order."""
    bad = []
    for i in imports:
        src, dst = _unit_of_path(i.path), _unit_of_module(i.module)
        if src is None or dst is None:
            continue
        if FLOORS[dst] > FLOORS[src] or (FLOORS[dst] == FLOORS[src] and dst != src):
            bad.append(i)
        elif src == dst == "core" and _room_of_module(i.module) not in ROOMS[_room_of_path(i.path)]:
            bad.append(i)
    return bad


def import_cycles(imports: list[Imp], prefix: str) -> list[list[str]]:
    """Cycles among the modules under ``prefix`` (a dotted package), lazy imports included."""
    def mod_of(path: str) -> str:
        return path[:-3].replace("/", ".").removesuffix(".__init__")

    graph: dict[str, set[str]] = {}
    for i in imports:
        src = mod_of(i.path)
        if src.startswith(prefix + ".") and i.module.startswith(prefix + ".") and i.module != src:
            graph.setdefault(src, set()).add(i.module)
    cycles, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    return cycles


ALL_IMPORTS = _all_imports()


def _is_test(path: str) -> bool:
    return path.startswith("tests/")


def _is_ui(path: str) -> bool:
    return path == "app.py" or path.startswith("pages/")


def _fmt(bad: list[Imp]) -> str:
    return "\n".join(f"  {i.path}:{i.line} imports {i.module}" for i in bad)


def test_the_walk_sees_the_project():
    paths = {i.path for i in ALL_IMPORTS}
    assert {"core/data/store.py", "app.py", "cli/__main__.py", "builder/context.py"} <= paths
    assert any(p.startswith("pages/") for p in paths)


def test_imports_follow_the_floors_and_rooms():
    bad = layer_violations(ALL_IMPORTS)
    assert not bad, ("an import runs against the floors UI/cli -> builder -> coral_runtime -> core "
                     "(or core's rooms data <- jobs <- training):\n" + _fmt(bad))


def test_the_layer_rule_fails_on_a_reversed_import(tmp_path):
    """A synthetic tree: every arrow against the plan is reported, the allowed ones are not."""
    files = {
        "app.py": "from pages._shared import state\nimport builder.jobs\n",  # allowed
        "cli/main.py": "from builder import context\nfrom core.data import store\n",  # allowed
        "builder/x.py": "import coral_runtime.predictor\nfrom core.jobs import JobContext\n",  # allowed
        "coral_runtime/y.py": "from core.data import boxes\n",  # allowed
        "core/training/t.py": "from core.jobs import runner\nfrom core.data.store import Store\n",  # allowed
        "core/data/bad.py": "def f():\n    from builder import docker\n",  # core -> builder, lazily
        "coral_runtime/bad.py": "import builder.context\n",  # runtime -> builder
        "core/jobs/bad.py": "from core.training import int8\n",  # jobs room -> training room
        "core/data/bad2.py": "from ..jobs import table\n",  # relative, data room -> jobs room
        "builder/bad.py": "from cli import common\n",  # builder -> the top floor
        "pages/bad.py": "import cli.train\n",  # one top-floor entry point -> the other
        "tests/test_ok.py": "import cli\nimport pages\n",  # tests stand outside the floors
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    bad = layer_violations(_all_imports(tmp_path))
    assert sorted((i.path, i.module) for i in bad) == sorted([
        ("builder/bad.py", "cli"),
        ("core/data/bad.py", "builder"),
        ("core/data/bad2.py", "core.jobs.table"),
        ("core/jobs/bad.py", "core.training.int8"),
        ("coral_runtime/bad.py", "builder.context"),
        ("pages/bad.py", "cli.train"),
    ])
    # reversing one allowed arrow of the real project is caught too
    (tmp_path / "core" / "data" / "boxes.py").write_text("from coral_runtime import adapters\n")
    assert ("core/data/boxes.py", "coral_runtime") in {
        (i.path, i.module) for i in layer_violations(_all_imports(tmp_path))}


def test_the_project_uses_the_new_module_names():
    bad = [i for i in ALL_IMPORTS if _moved.new_name(i.module) and i.path != "core/_moved.py"]
    assert not bad, "these modules moved (see core/_moved.py):\n" + _fmt(bad)


def test_pages_helpers_have_no_import_cycle(tmp_path):
    assert import_cycles(ALL_IMPORTS, "pages._shared") == []
    (tmp_path / "pages" / "_shared").mkdir(parents=True)
    (tmp_path / "pages" / "_shared" / "a.py").write_text("from pages._shared import b\n")
    (tmp_path / "pages" / "_shared" / "b.py").write_text("def f():\n    from pages._shared import a\n")
    assert import_cycles(_all_imports(tmp_path), "pages._shared") == [["pages._shared.a", "pages._shared.b",
                                                                        "pages._shared.a"]]


def test_only_app_and_pages_import_streamlit():
    bad = [i for i in ALL_IMPORTS if _root_of(i.module).startswith("streamlit")
           and not _is_ui(i.path) and not _is_test(i.path)]
    assert not bad, "streamlit is for app.py and pages/ only:\n" + _fmt(bad)


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


def test_the_walker_resolves_relative_and_lazy_imports(tmp_path):
    """The walker itself: relative imports resolve, lazy imports are seen as lazy."""
    f = tmp_path / "cli" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("from . import common\nimport streamlit as st\n"
                 "def cmd():\n    from coral_runtime import devices\n")
    imps = _imports(f, tmp_path)
    assert [(i.module, i.top_level) for i in imps] == [
        ("cli", True), ("streamlit", True), ("coral_runtime", False)]
