"""The detector's shape contract, and the trainer's refusals (cheap: no training)."""

from __future__ import annotations

import pytest

from core.training.detection.anchors import AnchorSpec, feature_sizes
from core.training.detection.model import build_detector, check_image_size


def test_detector_outputs_match_the_anchor_grid_at_300():
    import keras

    det = build_detector(2, 300, alpha=0.35, weights=None, anchors_per_location=4, bn_momentum=0.9)
    n = AnchorSpec(feature_sizes(300)).num_anchors
    assert det.feature_sizes == (19, 10, 5, 3, 2, 1)
    assert tuple(det.model.outputs[0].shape) == (None, n, 4)
    assert tuple(det.model.outputs[1].shape) == (None, n, 2)
    assert tuple(det.train_model.outputs[1].shape) == (None, n, 2)
    names = [type(layer).__name__ for layer in det.model.layers]
    assert names[1] == "Rescaling"  # raw 0..255 input is scaled inside the model
    bns = [layer for layer in det.model.get_layer("mobilenetv2_features").layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(b.momentum == 0.9 for b in bns)
    # only Edge TPU friendly activations
    acts = {getattr(layer, "activation", None).__name__ for layer in det.model.layers
            if getattr(layer, "activation", None) is not None}
    assert acts <= {"linear", "sigmoid"}


def test_image_size_check():
    for ok in (256, 300, 320, 160, 192):
        check_image_size(ok)
    for bad in (250, 64, 1000):
        with pytest.raises(ValueError):
            check_image_size(bad)


def test_training_without_boxes_fails_cleanly(store):
    from core.data import artefacts
    from core.data.annotations import Annotation
    from core.jobs import JobState
    from core.data.store import NewImage
    from tests.core.training.detection.helpers import run_detection_job

    project = store.create_project("empty", "detection")
    store.add_class(project, "thing")
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 9, 9)).save(buf, "PNG")
    store.add_images(project, [NewImage(buf.getvalue(), "a.png", 32, 24, [Annotation("thing")])])
    job = run_detection_job(store, project, {"epochs": 1, "weights": "none"})
    assert job.state == JobState.FAILED
    assert "No training images with boxes" in (job.error or "")
    assert artefacts.list_artefacts(store.root) == []
    assert not list(artefacts.models_dir(store.root).glob(".partial-*"))
