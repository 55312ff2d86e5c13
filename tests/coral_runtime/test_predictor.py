"""Predictor on real tiny artefact folders (CPU path), the post-publish hook, the CLI, import rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import artefacts
from coral_runtime.predictor import Predictor
from tests.coral_runtime import models as M

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cls_artefact(small_cls_int8, tmp_path) -> Path:
    return M.write_artefact(tmp_path / "models" / "cls1", small_cls_int8.read_bytes(), task="classification",
                            labels=["cat", "dog", "eel"], input_size=32)


@pytest.fixture
def det_artefact(detector_int8, tmp_path) -> Path:
    return M.write_artefact(tmp_path / "models" / "det1", detector_int8.read_bytes(), task="detection",
                            labels=["raccoon", "cat"], input_size=32, resize="letterbox")


def _img(w=120, h=80, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_classification_prediction(cls_artefact):
    p = Predictor(cls_artefact, device="cpu")
    r = p.predict(_img(), top_k=3)
    assert r.task == "classification" and r.device == "cpu" and r.fallback_reason is None
    assert [c.label for c in r.classes] and {c.label for c in r.classes} <= {"cat", "dog", "eel"}
    assert len(r.classes) == 3 and sum(c.score for c in r.classes) == pytest.approx(1.0, abs=0.05)
    assert r.classes == sorted(r.classes, key=lambda c: -c.score)
    assert r.latency_ms >= r.invoke_ms > 0
    json.dumps(r.to_dict())


def test_detection_prediction_in_original_pixels(det_artefact):
    p = Predictor(det_artefact, device="auto")
    r = p.predict(_img(300, 150), threshold=0.0)
    assert r.task == "detection" and r.detections
    for d in r.detections:
        assert d.label in ("raccoon", "cat") and d.box.is_inside(300, 150)
    assert r.image_size == (300, 150)
    # a threshold above every score keeps nothing
    assert p.predict(_img(300, 150), threshold=1.01).detections == []


def test_auto_with_an_edgetpu_file_falls_back_visibly(det_artefact):
    shutil.copy(det_artefact / artefacts.INT8_MODEL, det_artefact / artefacts.EDGETPU_MODEL)
    p = Predictor(det_artefact, device="auto")
    assert p.device == "cpu"
    assert "Edge TPU unavailable" in p.fallback_reason and "model_int8.tflite" in p.fallback_reason
    assert p.predict(_img()).fallback_reason == p.fallback_reason


def test_tpu_requested_but_not_compiled(cls_artefact):
    p = Predictor(cls_artefact, device="usb:0")
    assert p.device == "cpu" and "not compiled" in p.fallback_reason


def test_post_publish_hook_writes_preflight(cls_artefact, monkeypatch):
    from coral_runtime import hooks

    monkeypatch.setenv("PATH", "/nonexistent")  # no compiler: preflight only
    monkeypatch.setattr(artefacts, "_POST_PUBLISH_HOOKS", [])  # keep the registry of other tests clean
    hooks.install()
    assert hooks.post_publish in artefacts._POST_PUBLISH_HOOKS
    artefacts.run_post_publish_hooks(cls_artefact, log=pytest.fail)
    m = artefacts.load_manifest(cls_artefact)
    assert m["preflight"]["tpu_share"] == 1.0 and m["preflight"]["first_cpu_op"] is None
    assert "compiler" not in m


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_cli_preflight_predict_compile(cls_artefact, tmp_path):
    r = _cli("preflight", str(cls_artefact / "model_int8.tflite"), "--ops")
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["ok"] and last["tpu_share"] == 1.0
    img = tmp_path / "x.png"
    _img().save(img)
    r = _cli("predict", "--model", str(cls_artefact), str(img), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["device"] == "cpu" and last["results"][0]["classes"]
    r = _cli("compile", str(cls_artefact), env={"PATH": str(Path(sys.executable).parent)})
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 2 and not last["ok"] and "edgetpu-compiler" in last["error"]
    assert last["docker"]["run"][:2] == ["docker", "run"]


def test_coral_runtime_imports_no_tensorflow_or_streamlit():
    code = ("import sys, coral_runtime.preflight, coral_runtime.compiler, coral_runtime.devices, "
            "coral_runtime.interpreter, coral_runtime.adapters, coral_runtime.predictor, coral_runtime.hooks; "
            "bad = [m for m in ('tensorflow', 'streamlit', 'keras') if m in sys.modules]; "
            "core = sorted(m for m in sys.modules if m.startswith('core.')); print(bad, core)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    bad, core = r.stdout.strip().split("] ", 1)
    assert bad == "["
    assert set(eval(core)) <= {"core._moved", "core.data", "core.data.boxes", "core.data.annotations",  # noqa: S307
                               "core.data.artefacts"}


def test_post_publish_hook_compiles_when_the_compiler_exists(cls_artefact, tmp_path, monkeypatch):
    """The compile path of the hook, with a stand-in ``edgetpu_compiler`` that behaves like the real
    one (writes OUT/<stem>_edgetpu.tflite + .log and prints its summary; the text is the published
    output of google-coral/edgetpu#572). The real compiler is exercised by the ``compiler`` test."""
    from coral_runtime import hooks

    summary = (Path(__file__).parent / "data" / "stdout_all_mapped_v16.txt").read_text()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "edgetpu_compiler"
    exe.write_text(
        "#!/bin/sh\n"
        "# args: -s -o OUT [-t N] MODEL\n"
        'out=""; model=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -t|-m) shift 2;; -*) shift;; '
        '*) model="$1"; shift;; esac; done\n'
        'stem=$(basename "$model" .tflite)\n'
        'cp "$model" "$out/${stem}_edgetpu.tflite"\n'
        'printf "Operator                       Count      Status\\n\\nCONV_2D                        3          '
        'Mapped to Edge TPU\\n" > "$out/${stem}_edgetpu.log"\n'
        f"cat <<'TXT'\n{summary}TXT\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    m = hooks.post_publish(cls_artefact)
    assert m["preflight"]["tpu_share"] == 1.0
    assert m["compiler"]["ok"] and m["compiler"]["version"] == "16.0.384591198"
    assert m["compiler"]["operations"][0]["operator"] == "CONV_2D"
    assert m["files"]["edgetpu"] == artefacts.EDGETPU_MODEL
    assert (cls_artefact / artefacts.EDGETPU_MODEL).exists()
    # the Predictor now picks the compiled model, and falls back visibly (no libedgetpu here)
    p = Predictor(cls_artefact, device="auto")
    assert p.device == "cpu" and "Edge TPU unavailable" in p.fallback_reason
