"""Device per job (core.training.device): the choice, its record in the job and the manifest, the
"no GPU is visible" and out-of-memory messages, and the float32 export of a mixed-precision model.
All of it runs on the CPU; tests/core/training/test_device_gpu.py trains on a GPU where there is one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import artefacts
from core.jobs import JobState, run_foreground
from core.training import device, jobs as train_jobs
from core.training.report import summary_rows
from tests.core.training.helpers import add_digits

ROOT = Path(__file__).resolve().parents[3]
TINY = {"image_size": 64, "epochs": 1, "batch_size": 8, "alpha": 0.35, "weights": "none", "augment": False,
        "representative_samples": 4, "early_stopping_patience": 0}
GPU = device.GpuInfo(0, "NVIDIA Test GPU", "/physical_device:GPU:0", (8, 6))
CPU_BUILD = {"version": "2.21.0", "distribution": "tensorflow-cpu", "cuda": False}


@pytest.fixture
def cpu_only():
    """Skips where TensorFlow sees a GPU: the "no GPU is visible" failure cannot happen there."""
    if device.visible_gpus():
        pytest.skip("a GPU is visible to TensorFlow here: the 'no GPU is visible' failure cannot happen")


# -- the choice (pure) ---------------------------------------------------------------------------
def test_auto_takes_the_first_gpu_and_the_cpu_without_one():
    on_gpu = device.choose("auto", [GPU, device.GpuInfo(1, "Other", "/physical_device:GPU:1")])
    assert (on_gpu.kind, on_gpu.name, on_gpu.tf_device, on_gpu.gpus_visible) == ("gpu", "NVIDIA Test GPU",
                                                                                 "/GPU:0", 2)
    on_cpu = device.choose(None, [], cpu_name="Test CPU")
    assert (on_cpu.kind, on_cpu.name, on_cpu.tf_device, on_cpu.requested) == ("cpu", "Test CPU", "/CPU:0", "auto")


def test_cpu_request_stays_on_the_cpu_even_with_a_gpu():
    c = device.choose("CPU", [GPU], cpu_name="Test CPU")
    assert (c.kind, c.requested, c.gpus_visible) == ("cpu", "cpu", 1)


def test_gpu_request_without_gpu_says_no_gpu_is_visible_and_why():
    with pytest.raises(device.NoGpuError, match="no GPU is visible") as e:
        device.choose("gpu", [], build=CPU_BUILD)
    assert "tensorflow-cpu" in str(e.value) and "make venv GPU=1" in str(e.value)
    with pytest.raises(device.NoGpuError, match="nvidia-smi"):
        device.choose("gpu", [], build={"version": "2.21.0", "distribution": "tensorflow", "cuda": True})


def test_unknown_device_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="auto, cpu, gpu"):
        device.choose("tpu", [])


def test_mixed_precision_is_for_gpus_only():
    assert device.choose("gpu", [GPU], mixed_precision=True).mixed_precision
    c = device.choose("auto", [], mixed_precision=True, cpu_name="Test CPU")
    assert not c.mixed_precision and "float32 on the CPU" in c.note


def test_this_machine_agrees_with_tensorflows_device_list():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    assert len(device.visible_gpus()) == len(gpus)
    auto = device.select("auto")
    assert auto.kind == ("gpu" if gpus else "cpu")
    if not gpus:
        assert auto.name == device.cpu_model() and auto.name not in ("", "CPU")
        with pytest.raises(device.NoGpuError, match="no GPU is visible"):
            device.select("gpu")


# -- records ----------------------------------------------------------------------------------------
def test_device_of_events_merges_the_ray_node_and_describes_it():
    events = [{"type": "progress", "seq": 1}, {"type": "device", "seq": 2, "time": 1.0, "kind": "gpu",
                                               "name": "NVIDIA Test GPU", "host": "box", "mixed_precision": True},
              {"type": "ray-node", "node_ip": "10.0.0.5", "node_id": "abc"}]
    rec = device.device_of(events)
    assert rec["kind"] == "gpu" and rec["node"] == "10.0.0.5" and "seq" not in rec
    assert device.describe(rec) == "NVIDIA Test GPU (GPU, mixed precision) on box · Ray node 10.0.0.5"
    assert device.device_of([{"type": "progress"}]) is None


def test_nvidia_names_come_from_the_driver_list(tmp_path):
    (tmp_path / "0000:01:00.0").mkdir()
    (tmp_path / "0000:01:00.0" / "information").write_text("Model: \t NVIDIA RTX A4000\nIRQ: 42\n")
    assert device.nvidia_gpu_names(str(tmp_path)) == ["NVIDIA RTX A4000"]
    assert device.nvidia_gpu_names(str(tmp_path / "none")) == []


# -- out of memory -----------------------------------------------------------------------------------
def test_a_real_tensorflow_oom_is_recognised():
    import tensorflow as tf

    with pytest.raises(tf.errors.ResourceExhaustedError) as e:
        tf.zeros([2**42], tf.float32)  # 16 TiB: TensorFlow's allocator refuses
    assert device.is_out_of_memory(e.value)
    try:
        raise RuntimeError("fit failed") from e.value
    except RuntimeError as wrapped:
        assert device.is_out_of_memory(wrapped)
    assert not device.is_out_of_memory(ValueError("shapes do not match"))
    msg = device.oom_message(device.choose("gpu", [GPU]), 32)
    assert "batch size 32" in msg and "NVIDIA Test GPU" in msg and "(e.g. 16)" in msg


@pytest.mark.slow
def test_oom_during_training_fails_the_job_naming_the_batch_size(store, digits_dir, monkeypatch):
    project = add_digits(store, digits_dir, per_class=4)

    def trainer_that_exhausts_memory(ctx, project, task, hp):
        import tensorflow as tf

        return tf.zeros([hp.batch_size * 2**40], tf.float32)  # a real ResourceExhaustedError

    monkeypatch.setattr(train_jobs, "_run_trainer", trainer_that_exhausts_memory)
    job = run_foreground(store, "train", {"task": "classification", "project": project.name,
                                          "hparams": {**TINY, "batch_size": 16}, "device": "cpu"})
    assert job.state is JobState.FAILED
    assert "ran out of memory" in job.error and "batch size 16" in job.error
    assert "Traceback" not in job.error and "OOM when allocating" not in job.message


# -- through a real job -----------------------------------------------------------------------------
@pytest.mark.slow
def test_job_and_manifest_record_the_device(store, digits_dir):
    project = add_digits(store, digits_dir, per_class=8)
    job = run_foreground(store, "train", {"task": "classification", "project": project.name, "hparams": TINY,
                                          "device": "cpu", "mixed_precision": True})
    assert job.state is JobState.SUCCEEDED, job.error
    from core.jobs import JobTable

    events = JobTable(store).events(job.id)
    rec = device.device_of(events)
    assert rec["kind"] == "cpu" and rec["name"] == device.cpu_model() and rec["requested"] == "cpu"
    assert rec["mixed_precision"] is False and "float32 on the CPU" in rec["note"]
    m = artefacts.load_manifest(artefacts.artefact_path(store.root, job.artefact_id))
    assert m["device"]["kind"] == "cpu" and m["device"]["name"] == device.cpu_model()
    rows = {r["field"]: r["value"] for r in summary_rows(m)}
    assert rows["Trained on"].startswith(f"{device.cpu_model()} (CPU)")
    assert any("training on" in line and "(CPU)" in line for line in JobTable(store).logs(job.id))


def test_gpu_request_on_a_cpu_only_machine_fails_clearly(store, digits_dir, cpu_only):
    project = add_digits(store, digits_dir, per_class=4)
    job = run_foreground(store, "train", {"task": "classification", "project": project.name, "hparams": TINY,
                                          "device": "gpu"})
    assert job.state is JobState.FAILED
    assert job.error.startswith("A GPU was requested (--device gpu), but no GPU is visible to TensorFlow")
    assert "Traceback" not in job.error
    assert not artefacts.list_artefacts(store.root)


def test_cli_device_gpu_says_no_gpu_is_visible(data_dir, store, digits_dir, cpu_only):
    add_digits(store, digits_dir, per_class=4)
    proc = subprocess.run([sys.executable, "-m", "cli", "--data-dir", str(data_dir), "train", "--project",
                           "digits", "--device", "gpu", "--epochs", "1", "--image-size", "64", "--weights", "none",
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert "no GPU is visible" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] is False and "no GPU is visible" in summary["error"]


def test_cli_options_map_to_device_params():
    from cli.train import device_params

    class Args:
        device, mixed_precision, runner, ray_node = "gpu", True, "local", "cpu"

    assert device_params(Args()) == {"device": "gpu", "mixed_precision": True}
    Args.device, Args.runner, Args.ray_node = "auto", "ray", "gpu"
    assert device_params(Args()) == {"mixed_precision": True, "ray_node": "gpu"}  # the node decides


# -- mixed precision never reaches the int8 export ----------------------------------------------------
def _tiny_classifier():
    from core.training.classification import build_model
    from core.training.hparams import ClassificationHParams

    return build_model(3, ClassificationHParams(image_size=64, alpha=0.35, weights="none"))


def _structure(info: dict) -> dict:
    return {"ops": info["ops"], "inputs": [(t["shape"], t["dtype"]) for t in info["inputs"]],
            "outputs": [(t["shape"], t["dtype"]) for t in info["outputs"]],
            "tensors": [(t["dtype"], t["constant"]) for t in info["tensors"]]}


@pytest.mark.slow
def test_mixed_precision_model_exports_the_same_int8_structure(tmp_path):
    import keras

    from core.training.int8 import convert_int8, inspect_tflite

    keras.utils.set_random_seed(0)
    with device.precision_policy(device.MIXED_POLICY):
        mixed = _tiny_classifier()
    assert device.uses_mixed_precision(mixed) and keras.mixed_precision.dtype_policy().name == "float32"
    plain = _tiny_classifier()
    plain.set_weights(mixed.get_weights())  # float32 variables under mixed precision: the same weights
    twin = device.float32_twin(mixed)
    assert not device.uses_mixed_precision(twin) and device.float32_twin(plain) is plain
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(plain(x)), atol=1e-6)

    reps = list(np.random.default_rng(1).uniform(0, 255, (4, 64, 64, 3)).astype("float32"))
    convert_int8(mixed, reps, tmp_path / "mixed.tflite")
    convert_int8(plain, reps, tmp_path / "plain.tflite")
    a, b = inspect_tflite(tmp_path / "mixed.tflite"), inspect_tflite(tmp_path / "plain.tflite")
    assert _structure(a) == _structure(b)
    assert "CAST" not in a["ops"] and all(t["dtype"] != "float16" for t in a["tensors"])
