"""Crash isolation, retry and the stock-pair refusal, with real shared libraries built by gcc
(tests/coral_runtime/fake_libedgetpu.py) loaded through LiteRT's real ``load_delegate``."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from coral_runtime import probe, versions
from coral_runtime.interpreter import make_interpreter, normalize_device
from tests.coral_runtime import fake_libedgetpu as fake

pytestmark = pytest.mark.skipif(not fake.have_gcc(), reason="gcc is needed to build the stand-in libedgetpu")


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake_libedgetpu")
    return {"crash": fake.build(d, "crash"), "flaky": fake.build(d, "flaky")}


@pytest.fixture
def tpu_model(small_cls_int8, tmp_path):
    """A '*_edgetpu.tflite' (a plain int8 model under that name) with its CPU sibling."""
    shutil.copy(small_cls_int8, tmp_path / "model_int8.tflite")
    shutil.copy(small_cls_int8, tmp_path / "model_int8_edgetpu.tflite")
    return tmp_path / "model_int8_edgetpu.tflite"


@pytest.fixture
def no_dpkg(tmp_path, monkeypatch):
    """No libedgetpu Debian package installed (an empty dpkg status file)."""
    status = tmp_path / "status"
    status.write_text("", encoding="utf-8")
    monkeypatch.setenv(versions.ENV_DPKG_STATUS, str(status))
    return status


def test_a_crashing_runtime_kills_only_the_probe(libs, tpu_model, monkeypatch, no_dpkg):
    monkeypatch.setenv(probe.ENV_LIB, str(libs["crash"]))
    it = make_interpreter(tpu_model, "usb", retry_wait=0.1)
    # this process is alive, and the model runs on the CPU with the reason
    assert it.device == "cpu" and it.model_path.name == "model_int8.tflite"
    assert "Edge TPU runtime crashed (signal 11" in it.fallback_reason and "CPU used" in it.fallback_reason
    assert it.run(np.zeros((32, 32, 3), np.uint8))
    last = probe.last_probe()
    assert last.signal == 11 and last.crashed and last.stage == "devices"
    assert last.attempts == 1  # a crash is not retried
    # what the child read before it died is kept: the version string and the devices
    assert last.edgetpu_version == fake.CRASH_VERSION
    assert [d["type"] for d in last.devices] == ["usb", "pci"]


def test_the_same_library_loaded_in_process_would_kill_the_process(libs):
    """The control: without the probe, loading this library really dies (in a child we watch)."""
    import subprocess
    import sys

    code = ("from ai_edge_litert.interpreter import load_delegate; "
            f"load_delegate({str(libs['crash'])!r}, {{'device': 'usb'}})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -11


def test_a_failed_first_load_is_retried_once(libs, tpu_model, monkeypatch, tmp_path, no_dpkg):
    marker = tmp_path / "enumerated"
    monkeypatch.setenv(probe.ENV_LIB, str(libs["flaky"]))
    monkeypatch.setenv("FAKE_EDGETPU_MARKER", str(marker))
    it = make_interpreter(tpu_model, "usb:0", retry_wait=0.2)
    assert marker.exists()  # the first call failed (and left the marker) ...
    last = probe.last_probe()
    assert last.ok and last.attempts == 2  # ... the retry in the probe succeeded
    assert it.device == "usb:0" and it.on_edgetpu and it.fallback_reason is None
    assert it.model_path.name == "model_int8_edgetpu.tflite"
    cpu = make_interpreter(tpu_model.with_name("model_int8.tflite"), "cpu")
    x = np.full((32, 32, 3), 100, np.uint8)
    assert [v.tolist() for v in it.run(x).values()] == [v.tolist() for v in cpu.run(x).values()]


def test_without_the_retry_the_first_failure_would_stand(libs, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_EDGETPU_MARKER", str(tmp_path / "m"))
    first = probe._probe_once(str(libs["flaky"]), "usb", None, 30)  # noqa: SLF001
    assert not first.ok and not first.crashed and "ValueError" in first.error and first.stage == "delegate"


def test_stock_16_with_a_newer_runtime_is_refused_before_loading(libs, tpu_model, monkeypatch, tmp_path):
    status = tmp_path / "status"
    status.write_text("Package: libedgetpu1-std\nStatus: install ok installed\nArchitecture: amd64\n"
                      "Version: 16.0\nDescription: Support library for Edge TPU\n\n"
                      "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n", encoding="utf-8")
    monkeypatch.setenv(versions.ENV_DPKG_STATUS, str(status))
    monkeypatch.setenv(probe.ENV_LIB, str(libs["flaky"]))  # a library that would load fine
    monkeypatch.setenv("FAKE_EDGETPU_MARKER", str(tmp_path / "marker"))
    before = probe.last_probe()
    it = make_interpreter(tpu_model, "usb", retry_wait=0.1)
    assert it.device == "cpu"
    assert "libedgetpu1-std 16.0 is Coral's stock Edge TPU runtime" in it.fallback_reason
    assert "ai-edge-litert" in it.fallback_reason
    assert probe.last_probe() is before  # refused without even probing
    assert not (tmp_path / "marker").exists()


def test_deb_versions_name_their_tensorflow(tmp_path):
    assert versions.deb_tf_version("16.0tf2.19.1-1") == "2.19.1"
    assert versions.deb_tf_version("16.0tf2.17.1-1") == "2.17.1"
    assert versions.deb_tf_version("16.0") == versions.STOCK_TF
    assert versions.deb_tf_version("16.0-2") == versions.STOCK_TF
    assert versions.deb_tf_version("weird") is None
    rt_new = {"name": "ai-edge-litert", "version": "1.2.0", "tf": "2.19"}
    rt_old = {"name": "tflite-runtime", "version": "2.5.0.post1", "tf": "2.5"}
    status = tmp_path / "status"
    status.write_text("Package: libedgetpu1-max\nStatus: install ok installed\nVersion: 16.0tf2.19.1-1\n",
                      encoding="utf-8")
    assert versions.stock_runtime_problem(status, rt_new) is None
    assert versions.pair_warning(status, rt_new) is None
    assert "TensorFlow 2.19.1" in versions.pair_warning(status, {"name": "ai-edge-litert", "version": "1.3.0",
                                                                  "tf": "2.20"})
    studio = {"name": "ai-edge-litert", "version": "2.3.0", "tf": "2.20+"}  # the studio's own runtime
    assert "TensorFlow 2.19.1" in versions.pair_warning(status, studio)
    status.write_text("Package: libedgetpu1-std\nStatus: install ok installed\nVersion: 16.0\n", encoding="utf-8")
    assert versions.stock_runtime_problem(status, rt_old) is None  # the old pair belongs together
    assert versions.stock_runtime_problem(status, rt_new)


@pytest.mark.parametrize("device", ["usb", "usb:0", "usb:3", "pci", "pci:1", ":0", "auto", "cpu"])
def test_device_strings(device):
    assert normalize_device(device) == device


@pytest.mark.parametrize("device", ["usb:x", "tpu", "pci:-1", "usb:0:1"])
def test_bad_device_strings(device):
    with pytest.raises(ValueError, match="unknown device"):
        normalize_device(device)


def test_probe_without_any_runtime_says_why(tmp_path):
    res = probe.probe("usb", lib=str(tmp_path / "nothing.so.1"), retry_wait=0)
    assert not res.ok and not res.crashed and res.stage == "dlopen" and res.attempts == 1
    assert "OSError" in res.error and "CPU used" in res.message


def test_describe_lists_runtime_and_probe(libs, monkeypatch, no_dpkg, tmp_path):
    monkeypatch.setenv(probe.ENV_LIB, str(libs["crash"]))
    probe.probe("usb", retry_wait=0)
    info = versions.describe()
    assert info["runtime"]["name"] == "ai-edge-litert" and info["runtime"]["version"]
    assert info["edgetpu_version"] == fake.CRASH_VERSION
    assert info["probe"]["signal"] == 11
    line = versions.summary_line(info)
    assert "ai-edge-litert" in line and "Edge TPU runtime crashed (signal 11" in line
    os.environ.pop("FAKE_EDGETPU_MARKER", None)


def _found_tpus():
    from coral_runtime.devices import list_edge_tpus

    return list_edge_tpus()


@pytest.mark.edgetpu
@pytest.mark.skipif(not _found_tpus(), reason="no Coral Edge TPU found (sysfs 1a6e:089a / 18d1:9302, /dev/apex_*)")
def test_a_real_edge_tpu_opens_in_the_probe_and_reports_versions():
    """Where a Coral is attached: the installed libedgetpu opens in the child for every device found,
    reports its version string and devices, and the pair is not the refused stock one."""
    for tpu in _found_tpus():
        res = probe.probe(tpu.device)
        assert res.ok, res.message
        assert res.edgetpu_version and res.devices
    info = versions.describe()
    assert info["problem"] is None, info["problem"]
    assert info["edgetpu_version"]
