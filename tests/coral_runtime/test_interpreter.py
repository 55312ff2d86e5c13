"""Interpreter: CPU runs, the Edge TPU fallback with its visible reason (libedgetpu is really missing
here), the lock, signature-based detection outputs; and real hardware when one is plugged in."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from coral_runtime.devices import list_edge_tpus
from coral_runtime.interpreter import (RuntimeUnavailable, cpu_sibling, make_interpreter,
                                       normalize_device)


def _libedgetpu_missing() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libedgetpu.so.1")
        return False
    except OSError:
        return True


def test_cpu_run_with_lock(small_cls_int8):
    it = make_interpreter(small_cls_int8, "cpu")
    assert it.device == "cpu" and it.fallback_reason is None and it.input_size == (32, 32)
    x = np.zeros((32, 32, 3), np.uint8)
    outs = it.run(x)
    assert len(outs) == 1
    (scores,) = outs.values()
    assert scores.shape == (1, 3) and scores.dtype == np.uint8
    errors = []

    def worker():
        try:
            for _ in range(20):
                it.run(x)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(not _libedgetpu_missing(), reason="libedgetpu is installed here")
def test_edgetpu_model_falls_back_to_the_cpu_sibling(small_cls_int8, tmp_path):
    shutil.copy(small_cls_int8, tmp_path / "model_int8.tflite")
    shutil.copy(small_cls_int8, tmp_path / "model_int8_edgetpu.tflite")
    it = make_interpreter(tmp_path / "model_int8_edgetpu.tflite", "usb:0")
    assert it.device == "cpu" and it.requested_device == "usb:0"
    assert it.model_path.name == "model_int8.tflite"
    assert "libedgetpu.so.1" in it.fallback_reason and "OSError" in it.fallback_reason
    assert "running model_int8.tflite on the CPU" in it.fallback_reason
    assert it.run(np.zeros((32, 32, 3), np.uint8))


def test_edgetpu_model_without_cpu_sibling_cannot_run(small_cls_int8, tmp_path):
    only = tmp_path / "model_int8_edgetpu.tflite"
    shutil.copy(small_cls_int8, only)

    def no_tpu(device):
        raise ValueError("Failed to load delegate from libedgetpu.so.1")

    with pytest.raises(RuntimeUnavailable, match="can only run on an Edge TPU"):
        make_interpreter(only, "auto", delegate_loader=no_tpu)


def test_uncompiled_model_on_a_tpu_device_says_why(small_cls_int8):
    it = make_interpreter(small_cls_int8, "pci:0")
    assert it.device == "cpu" and "not compiled for the Edge TPU" in it.fallback_reason
    assert make_interpreter(small_cls_int8, "auto").fallback_reason is None


def test_device_strings():
    assert normalize_device(None) == "auto" and normalize_device(":1") == ":1"
    assert normalize_device("USB:0") == "usb:0" and normalize_device("pci") == "pci"
    with pytest.raises(ValueError):
        normalize_device("gpu:0")
    assert cpu_sibling("/m/model_int8_edgetpu.tflite").name == "model_int8.tflite"


def test_detection_outputs_by_role(detector_int8):
    it = make_interpreter(detector_int8, "cpu")
    roles = it.detection_roles()
    assert set(roles) == {"boxes", "classes", "scores", "count"}
    outs = it.run(np.full((32, 32, 3), 128, np.uint8))
    assert outs[roles["boxes"]].shape[-1] == 4
    assert outs[roles["count"]].shape == (1,)
    assert outs[roles["scores"]].shape == outs[roles["classes"]].shape


@pytest.mark.edgetpu
def test_real_edge_tpu(small_cls_int8, tmp_path):
    tpus = list_edge_tpus()
    if not tpus:
        pytest.skip("no Coral Edge TPU found (sysfs 1a6e:089a / 18d1:9302, /dev/apex_*)")
    if _libedgetpu_missing():
        pytest.skip(f"{tpus[0].label} found but the Edge TPU runtime (libedgetpu1-std) is not installed")
    # an uncompiled model still loads through the delegate: proves runtime + device work end to end
    model = tmp_path / "model_int8_edgetpu.tflite"
    shutil.copy(small_cls_int8, model)
    it = make_interpreter(model, tpus[0].device)
    assert it.device == tpus[0].device and it.fallback_reason is None
    assert it.run(np.zeros((32, 32, 3), np.uint8))
