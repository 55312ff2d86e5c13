"""Build contexts without Docker: files, labels, Dockerfiles of both profiles, README, zip."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from builder import context as bc


@pytest.fixture
def fake_wheelhouse(tmp_path: Path) -> Path:
    wh = tmp_path / "wh"
    wh.mkdir()
    (wh / "numpy-0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"not really a wheel")
    return wh


def _ctx(tmp_path, artefact, profile="offline", wheelhouse=None, **kw) -> bc.BuildContext:
    spec = bc.BuildSpec(model_dir=artefact, tag=kw.pop("tag", "studio-test/ctx:1"), profile=profile,
                        base_image=kw.pop("base_image", "studio/bookworm-python:latest"), **kw)
    return bc.make_context(spec, tmp_path / f"ctx-{profile}", wheelhouse=wheelhouse)


def test_offline_context_has_server_runtime_model_and_wheels(tmp_path, tiny_artefact, fake_wheelhouse):
    ctx = _ctx(tmp_path, tiny_artefact, wheelhouse=fake_wheelhouse)
    p = ctx.path
    for rel in ("Dockerfile", "README.md", "requirements.txt", "app/server.py", "app/coral_runtime/predictor.py",
                "app/coral_runtime/decode.py", "app/coral_runtime/adapters.py", "app/coral_runtime/interpreter.py", "app/core/__init__.py",
                "app/core/data/__init__.py", "app/core/data/boxes.py",
                "app/core/data/annotations.py", "app/core/data/artefacts.py", "model/manifest.json",
                "model/model_int8.tflite", "model/labels.txt", "wheelhouse/requirements.txt"):
        assert (p / rel).is_file(), rel
    # the float model never ships; coral_runtime is shipped as it is, not rewritten
    assert not (p / "model" / "model_float.keras").exists()
    for name in ("predictor.py", "decode.py"):  # the server decodes with the studio's own decode module
        src = bc.source_root() / "coral_runtime" / name
        assert (p / "app/coral_runtime" / name).read_bytes() == src.read_bytes(), name
    assert (p / "app/server.py").read_bytes() == (bc.source_root() / "builder/templates/server.py").read_bytes()
    # no TensorFlow or streamlit module is shipped
    assert not list(p.rglob("training")) and not (p / "app/core/data/store.py").exists()
    wh = (p / "wheelhouse" / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in wh} == {"ai-edge-litert", "numpy", "pillow"}
    assert ctx.network_mode == "none"


def test_offline_dockerfile_needs_no_network(tmp_path, tiny_artefact, fake_wheelhouse):
    ctx = _ctx(tmp_path, tiny_artefact, wheelhouse=fake_wheelhouse)
    text = ctx.dockerfile.read_text()
    assert "ARG BASE_IMAGE=studio/bookworm-python:latest" in text
    assert "FROM ${BASE_IMAGE}" in text
    assert "--no-index" in text and "--find-links=/tmp/wheelhouse" in text
    assert "apt-get" not in text and "http" not in text.replace("http://127.0.0.1", "")


def test_labels_oci_model_and_ohmni(tmp_path, tiny_artefact, fake_wheelhouse):
    ctx = _ctx(tmp_path, tiny_artefact, wheelhouse=fake_wheelhouse)
    labels = ctx.labels
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.version",
                "org.opencontainers.image.created", "org.opencontainers.image.description"):
        assert labels[key]
    assert labels["org.edgetpu-studio.model.name"] == "Raccoons"
    assert labels["org.edgetpu-studio.model.task"] == "classification"
    assert labels["org.edgetpu-studio.model.dataset-hash"] == "d" * 16
    assert json.loads(labels["org.edgetpu-studio.model.metrics"]) == {"accuracy": 0.875}
    assert labels["com.ohmnilabs.app.name"] == "studio_raccoons_classification"
    assert labels["com.ohmnilabs.app.version"] == "20261125-000000-tiny01"
    text = ctx.dockerfile.read_text()
    for key in labels:
        assert f"{key}=" in text


def test_label_values_are_quoted_safely():
    out = bc.render_labels({"a": 'say "hi" $HOME \\ back\nslash'})
    assert out.endswith('a="say \\"hi\\" \\$HOME \\\\ back slash"')


def test_coral_dockerfile_packages_labels_and_run_instructions(tmp_path, tiny_artefact, fake_wheelhouse):
    """The coral profile without a .deb here (offline): the Dockerfile downloads the pinned URL at
    build time and checks the pinned sha256 (tests/builder/test_runtime_pins.py covers the rest)."""
    from builder import runtime_pins as rp

    shutil.copy(fake_wheelhouse / "numpy-0-cp311-cp311-manylinux_2_28_x86_64.whl", tmp_path / "x.whl")
    (fake_wheelhouse / rp.RUNTIME_WHEEL.filename).write_bytes(b"not the pinned wheel")
    with pytest.raises(rp.ChecksumMismatch, match="ai-edge-litert wheel"):
        _ctx(tmp_path, tiny_artefact, profile="coral", base_image="debian-py:bookworm", wheelhouse=fake_wheelhouse,
             coral_state_dir=str(tmp_path / "state"), allow_download=False)
    assert not (tmp_path / "state" / "cache").exists()


def test_bad_inputs_are_refused(tmp_path, tiny_artefact, fake_wheelhouse):
    with pytest.raises(bc.ContextError):
        bc.BuildSpec(model_dir=tiny_artefact, tag="bad tag; rm -rf /")
    with pytest.raises(bc.ContextError):
        bc.BuildSpec(model_dir=tiny_artefact, profile="gpu")
    with pytest.raises(bc.ContextError):
        bc.BuildSpec(model_dir=tiny_artefact, base_image="x\nRUN evil")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_artefact, broken)
    (broken / "model_int8.tflite").unlink()
    with pytest.raises(bc.ContextError, match="missing"):
        _ctx(tmp_path, broken, wheelhouse=fake_wheelhouse)


def test_default_tag_and_zip(tmp_path, tiny_artefact, fake_wheelhouse):
    ctx = _ctx(tmp_path, tiny_artefact, wheelhouse=fake_wheelhouse, tag="")
    assert ctx.spec.tag == "studio/raccoons-classification:20261125-000000-tiny01"
    z = bc.zip_context(ctx.path, tmp_path / "out" / "context.zip")
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
    assert {"Dockerfile", "README.md", "app/server.py", "model/model_int8.tflite"} <= names
    assert not any("__pycache__" in n for n in names)


def test_ship_runtime_needs_the_predictor_and_the_decode(tmp_path):
    fake = tmp_path / "src"
    (fake / "coral_runtime").mkdir(parents=True)
    (fake / "coral_runtime" / "__init__.py").write_text("")
    with pytest.raises(bc.ContextError, match="predictor"):
        bc.ship_runtime(tmp_path / "dest", src_root=fake)
    (fake / "coral_runtime" / "predictor.py").write_text("")
    with pytest.raises(bc.ContextError, match="decode"):
        bc.ship_runtime(tmp_path / "dest", src_root=fake)


def test_ship_runtime_follows_core_imports(tmp_path):
    """Only the modules imported (transitively) and the packages' __init__ files on their way ship."""
    fake = tmp_path / "src"
    (fake / "coral_runtime").mkdir(parents=True)
    (fake / "core" / "data").mkdir(parents=True)
    (fake / "core" / "more").mkdir()
    (fake / "coral_runtime" / "__init__.py").write_text("")
    (fake / "coral_runtime" / "predictor.py").write_text("from core.data import extra\n")
    (fake / "coral_runtime" / "decode.py").write_text("")
    for name in ("__init__", "boxes", "annotations", "artefacts", "store"):
        (fake / "core" / "data" / f"{name}.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "data" / "extra.py").write_text("def f():\n    import core.more.sub\n")
    (fake / "core" / "more" / "__init__.py").write_text("from core.data.boxes import Box\n")
    (fake / "core" / "more" / "sub.py").write_text("")
    (fake / "core" / "more" / "unused.py").write_text("")
    got = bc.ship_runtime(tmp_path / "dest", src_root=fake)
    core_files = {g for g in got if g.startswith("core/")}
    assert core_files == {"core/__init__.py", "core/data/__init__.py", "core/data/boxes.py",
                          "core/data/annotations.py", "core/data/artefacts.py", "core/data/extra.py",
                          "core/more/__init__.py", "core/more/sub.py"}
    assert (tmp_path / "dest" / "core" / "more" / "sub.py").is_file()
    (fake / "core" / "data" / "extra.py").write_text("import core.gone\n")
    with pytest.raises(bc.ContextError, match="core.gone"):
        bc.ship_runtime(tmp_path / "dest2", src_root=fake)


def test_import_scan_by_text_matches_the_ast_walk():
    """The fallback scanner (used when ast.parse hits CPython 3.11's thread bug) finds the same modules."""
    for f in bc._py_files(bc.source_root() / "coral_runtime"):
        text = f.read_text(encoding="utf-8")
        assert bc._core_imports_by_text(text) == bc._core_imports(f), f
    sample = "from core import (boxes,\n    annotations)\nimport core.extra as x\nfrom core.more.sub import y\n"
    assert bc._core_imports_by_text(sample) == {"boxes", "annotations", "extra", "more.sub.y"}
    # a one-line import ends at its line: the next import's names are not core's
    sample = ("from core.data import artefacts\nfrom coral_runtime import adapters, frames\n"
              "from core.data import boxes as b, split\n")
    assert bc._core_imports_by_text(sample) == {"data.artefacts", "data.boxes", "data.split"}
