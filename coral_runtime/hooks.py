"""After an artefact is published: Edge TPU preflight into the manifest, and compile when possible.

``install()`` registers ``post_publish`` with ``core.data.artefacts.register_post_publish_hook``; entry
points (the runner in ``pages/_shared/jobs.py``, the CLI train command) call it once.
"""

from __future__ import annotations

from pathlib import Path

from core.data import artefacts
from coral_runtime import compiler as compiler_mod
from coral_runtime.preflight import preflight

COMPILE_TIMEOUT_S = 300.0


def post_publish(folder: Path, *, compile_timeout: float = COMPILE_TIMEOUT_S) -> dict:
    """Write ``manifest["preflight"]``; with ``edgetpu_compiler`` on PATH also compile and write
    ``manifest["compiler"]`` and ``model_int8_edgetpu.tflite``. Returns the updated manifest."""
    folder = Path(folder)
    m = artefacts.load_manifest(folder)
    int8 = folder / (m.get("files") or {}).get("int8", artefacts.INT8_MODEL)
    if not int8.exists():
        raise FileNotFoundError(f"{folder.name} has no {int8.name} to check")
    report = preflight(int8)
    m = artefacts.update_manifest(folder, preflight=report.to_dict())
    if compiler_mod.find_compiler() is None:
        return m
    try:
        res = compiler_mod.compile_model(int8, folder, timeout=compile_timeout)
    except compiler_mod.CompilerError as exc:
        res = exc.result or compiler_mod.CompileResult(ok=False, error=str(exc))
    files = dict(m.get("files") or {})
    if res.ok and res.output_model:
        produced = Path(res.output_model)
        if produced.name != artefacts.EDGETPU_MODEL:
            produced.replace(folder / artefacts.EDGETPU_MODEL)
        files["edgetpu"] = artefacts.EDGETPU_MODEL
    return artefacts.update_manifest(folder, compiler=compiler_mod.summarize(res), files=files)


def install() -> None:
    """Register the post-publish hook (idempotent)."""
    artefacts.register_post_publish_hook(post_publish)
