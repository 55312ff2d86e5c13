"""Where a crashing Edge TPU runtime is reported: the robot server's /healthz, the Preview and Deploy
pages and ``studio coral devices`` — each with a real library built by gcc that exports
``tflite_plugin_create_delegate`` and segfaults (tests/coral_runtime/fake_libedgetpu.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.docker import http_json
from coral_runtime import probe, versions
from tests.builder.conftest import ROOT, model_server
from tests.coral_runtime import fake_libedgetpu as fake

pytestmark = pytest.mark.skipif(not fake.have_gcc(), reason="gcc is needed to build the stand-in libedgetpu")
CRASHED = "Edge TPU runtime crashed (signal 11"


@pytest.fixture(scope="module")
def crash_lib(tmp_path_factory) -> Path:
    return fake.build(tmp_path_factory.mktemp("crashlib"), "crash")


@pytest.fixture
def crashing(crash_lib, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment of a machine whose libedgetpu crashes (and no Debian libedgetpu package)."""
    status = tmp_path / "dpkg-status"
    status.write_text("", encoding="utf-8")
    env = {probe.ENV_LIB: str(crash_lib), versions.ENV_DPKG_STATUS: str(status)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def compiled_looking(tiny_artefact, tmp_path) -> Path:
    """The tiny artefact with a '*_edgetpu.tflite' (the int8 model under that name): the server tries the TPU."""
    model = tmp_path / "model"
    shutil.copytree(tiny_artefact, model)
    shutil.copy(model / "model_int8.tflite", model / "model_int8_edgetpu.tflite")
    m = json.loads((model / "manifest.json").read_text())
    m["files"]["edgetpu"] = "model_int8_edgetpu.tflite"
    (model / "manifest.json").write_text(json.dumps(m))
    return model


def test_server_healthz_reports_the_crash_and_serves_on_the_cpu(crashing, compiled_looking, raccoon_jpeg, tmp_path):
    with model_server(compiled_looking, tmp_path / "server.log", DEVICE="usb", **crashing) as srv:
        status, health = http_json("GET", srv["base"] + "/healthz")
        code, pred = http_json("POST", srv["base"] + "/v1/predict", raccoon_jpeg, "image/jpeg")
        assert srv["proc"].poll() is None  # the server is alive
    assert status == 200 and health["ok"] and health["device"] == "cpu"
    assert CRASHED in health["fallback_reason"] and "CPU used" in health["fallback_reason"]
    assert health["edgetpu"]["probe"]["signal"] == 11
    assert health["edgetpu"]["edgetpu_version"] == fake.CRASH_VERSION
    assert CRASHED in health["edgetpu"]["summary"]
    assert code == 200 and pred["classes"] and pred["device"] == "cpu"
    assert CRASHED in (tmp_path / "server.log").read_text()  # the start-up line says it too


def test_server_takes_usb_pci_and_numbered_devices(compiled_looking, tmp_path):
    for device in ("usb", "usb:1", "pci", "pci:0"):
        with model_server(compiled_looking, tmp_path / f"{device.replace(':', '_')}.log", DEVICE=device,
                          STUDIO_EDGETPU_LIB=str(tmp_path / "missing.so.1")) as srv:
            _, health = http_json("GET", srv["base"] + "/healthz")
        assert health["edgetpu"]["probe"]["device"] == device and health["device"] == "cpu"


def test_preview_page_shows_the_crash(crashing, env_with_model):
    at = AppTest.from_file(str(ROOT / "pages" / "preview.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    line = next(c.value for c in at.caption if c.value.startswith("Edge TPU runtime here:"))
    assert CRASHED in line and "CPU used" in line and "ai-edge-litert" in line


def test_deploy_page_shows_the_crash(crashing, env_with_model, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    at = AppTest.from_file(str(ROOT / "pages" / "deploy.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    line = next(c.value for c in at.caption if "On this computer:" in c.value)
    assert CRASHED in line and "libedgetpu1-std 16.0tf2.19.1-1" in line and "ai-edge-litert 1.2.0" in line


def test_cli_coral_devices_reports_versions_and_the_crash(crashing):
    proc = subprocess.run([sys.executable, "-m", "cli", "coral", "devices", "--device", "usb:0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["probe"]["signal"] == 11 and summary["edgetpu_version"] == fake.CRASH_VERSION
    assert summary["runtime"]["name"] == "ai-edge-litert"
    assert any(ln.startswith("probe:") and CRASHED in ln for ln in lines)
    assert f"version:     {fake.CRASH_VERSION}" in lines
    assert "runtime saw: usb /sys/bus/usb/devices/2-1, pci /dev/apex_0" in lines
    assert any(ln.startswith("robot image: libedgetpu1-std 16.0tf2.19.1-1") for ln in lines)


@pytest.fixture
def env_with_model(data_dir, monkeypatch, compiled_looking):
    from core.data import artefacts

    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    shutil.copytree(compiled_looking, artefacts.models_dir(data_dir) / "20261125-000000-tiny01")
    return data_dir
