"""Shipping coral_runtime into a build context: its files, and the core modules it imports
(found by reading the imports, lazy ones included; only those modules and their packages'
``__init__`` files ship, so the robot image gets no TensorFlow, store or trainer)."""

from __future__ import annotations

import ast
import re
import shutil
import time
from pathlib import Path

from builder.errors import ContextError

# Modules always shipped with coral_runtime (plus whatever it imports from core).
CORE_MODULES = ("data.boxes", "data.annotations", "data.artefacts")
# The coral_runtime modules the model server cannot run without: the Predictor, and the image decode
# it shares with the studio's in-app predictor (same bytes -> same answer).
SERVER_RUNTIME_MODULES = ("predictor.py", "decode.py")


# -- shipping coral_runtime ----------------------------------------------------------------
def source_root() -> Path:
    """The studio's source tree (the folder holding core/ and coral_runtime/)."""
    return Path(__file__).resolve().parents[1]


# names: a parenthesised list (may span lines) or the rest of the line
_FROM_CORE = re.compile(r"^\s*from\s+core((?:\.\w+)*)\s+import\s+(?:\(([^)]*)\)|([^\n#]*))", re.M)
_IMPORT_CORE = re.compile(r"^\s*import\s+core((?:\.\w+)+)", re.M)


def _core_imports_by_text(text: str) -> set[str]:
    """The same as the AST walk, from import lines (the fallback when ast.parse is unavailable)."""
    found = {sub[1:] for sub in _IMPORT_CORE.findall(text)}
    for sub, listed, line in _FROM_CORE.findall(text):
        prefix = sub[1:] + "." if sub else ""
        for part in (listed or line).replace("\n", ",").split(","):
            words = part.split()  # "boxes as b" -> the name is the first word
            if words and words[0].isidentifier():
                found.add(prefix + words[0])
    return found


def _parse(text: str, filename: str) -> ast.AST | None:
    # CPython 3.11 < 3.11.8 can raise "SystemError: AST constructor recursion depth mismatch" when
    # two threads parse at once (a build job next to Streamlit's script thread): retry, then fall back.
    for attempt in range(3):
        try:
            return ast.parse(text, filename=filename)
        except SystemError:
            time.sleep(0.05 * (attempt + 1))
    return None


def _core_imports(py_file: Path) -> set[str]:
    """Dotted names under core a file imports, lazy imports included.

    ``import core.data.boxes`` -> ``data.boxes``; ``from core.data import boxes`` -> ``data.boxes``;
    ``from core.data.boxes import Box`` -> ``data.boxes.Box`` (``resolve_core_module`` finds the
    module in such a name).
    """
    text = py_file.read_text(encoding="utf-8")
    try:
        tree = _parse(text, str(py_file))
    except SyntaxError as exc:
        raise ContextError(f"cannot ship {py_file}: {exc}") from None
    if tree is None:
        return _core_imports_by_text(text)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "core" and len(parts) > 1:
                    found.add(".".join(parts[1:]))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "core":
                continue
            prefix = ".".join(parts[1:] + [""]) if len(parts) > 1 else ""
            found.update(prefix + a.name for a in node.names)
    return found


def resolve_core_module(src_root: Path, name: str) -> list[Path]:
    """The files Python runs to import ``core.<name>``: each package's ``__init__.py`` on the way
    and the module itself (a name that ends in an attribute, ``data.boxes.Box``, is cut back to its
    module). Raises ContextError when no module matches."""
    parts = name.split(".")
    while parts:
        base = src_root / "core" / Path(*parts)
        target = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if target.is_file():
            inits = [src_root / "core" / Path(*parts[:i]) / "__init__.py" for i in range(len(parts))]
            return [f for f in inits if f.is_file()] + [target]
        parts.pop()
    raise ContextError(f"coral_runtime imports core.{name}, which does not exist")


def _py_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts and "tests" not in p.parts)


def ship_runtime(dest: Path, src_root: Path | None = None) -> list[str]:
    """Copy coral_runtime/ and the core modules it imports (transitively) into ``dest``.

    Returns the copied paths relative to ``dest``. Raises ContextError when coral_runtime lacks a
    module the server needs (``SERVER_RUNTIME_MODULES``: the Predictor and the shared image decode).
    """
    src_root = Path(src_root) if src_root else source_root()
    runtime = src_root / "coral_runtime"
    for name in SERVER_RUNTIME_MODULES:
        if not (runtime / name).exists():
            raise ContextError(f"coral_runtime/{name} is missing: the model server needs it "
                               "(Predictor.predict_bytes and the image decode it shares with the studio)")
    copied: list[str] = []
    todo: list[Path] = []
    for f in _py_files(runtime):
        rel = f.relative_to(src_root)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest / rel)
        copied.append(str(rel))
        todo.append(f)
    wanted = set(CORE_MODULES)
    done: set[str] = set()
    while todo or wanted - done:
        for f in todo:
            wanted |= _core_imports(f)
        todo = []
        for name in sorted(wanted - done):
            done.add(name)
            for f in resolve_core_module(src_root, name):
                rel = f.relative_to(src_root)
                if str(rel) in copied:
                    continue
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest / rel)
                copied.append(str(rel))
                todo.append(f)
    return sorted(set(copied))
