"""Training on a real GPU: runs automatically wherever TensorFlow sees one (``make venv GPU=1`` on a
machine with an NVIDIA GPU), skipped with the reason elsewhere."""

from __future__ import annotations

import pytest

from core.data import artefacts
from core.jobs import JobState, JobTable, run_foreground
from core.training import device
from core.training.detection.export import verify_detector
from tests.core.training.detection.helpers import add_raccoons

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

TINY_DETECTOR = {"image_size": 256, "epochs": 2, "batch_size": 4, "alpha": 0.35, "weights": "none",
                 "augment": False, "representative_samples": 4, "train_on": "all"}


@pytest.fixture
def gpu() -> device.GpuInfo:
    gpus = device.visible_gpus()
    if not gpus:
        build = device.tensorflow_build()
        pytest.skip(f"no GPU visible to TensorFlow here ({build['distribution']} {build['version']}, "
                    f"built with CUDA: {build['cuda']}); install with `make venv GPU=1` on a GPU machine")
    return gpus[0]


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "mixed_precision"])
def test_tiny_detector_trains_on_the_gpu_and_says_so(store, raccoon_dir, gpu, mixed):
    project = add_raccoons(store, raccoon_dir, count=6)
    job = run_foreground(store, "train", {"task": "detection", "project": project.name, "hparams": TINY_DETECTOR,
                                          "device": "gpu", "mixed_precision": mixed})
    assert job.state is JobState.SUCCEEDED, job.error
    rec = device.device_of(JobTable(store).events(job.id))
    assert rec["kind"] == "gpu" and rec["name"] == gpu.name and rec["tf_device"] == f"/GPU:{gpu.index}"
    assert rec["mixed_precision"] is mixed
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    assert m["device"]["kind"] == "gpu" and m["device"]["name"] == gpu.name
    verify_detector(folder / artefacts.INT8_MODEL)  # int8 throughout: mixed precision never reaches it


def test_auto_picks_the_gpu(gpu):
    choice = device.select("auto")
    assert choice.kind == "gpu" and choice.name == gpu.name
