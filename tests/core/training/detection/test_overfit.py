"""End to end: train on 8 raccoon images until the detector overfits them, export int8 with the
TFLite_Detection_PostProcess op, and check what the issue asks for.

If a detector cannot overfit 8 images, the anchors, the encoding, the loss or the decoding is wrong:
the float model must reach mAP@0.5 >= 0.9 on those images and the int8 model >= 0.85. Cheap on
purpose: 160x160 input, alpha 0.35, from scratch, no augmentation, one batch per epoch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import artefacts
from core.jobs import JobState
from tests.core.training.detection.helpers import add_raccoons, run_detection_job

pytestmark = pytest.mark.slow

HPARAMS = {"image_size": 160, "alpha": 0.35, "weights": "none", "train_on": "all", "epochs": 80,
           "batch_size": 8, "learning_rate": 4e-3, "augment": False, "representative_samples": 8,
           "score_threshold": 0.3, "iou_threshold": 0.5, "max_detections": 10, "seed": 0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, raccoon_dir):
    from core.data.store import Store

    store = Store(tmp_path_factory.mktemp("det-overfit") / "data")
    project = add_raccoons(store, raccoon_dir, count=8)
    job = run_detection_job(store, project, HPARAMS)
    assert job.state == JobState.SUCCEEDED, job.error
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    return store, project, folder, artefacts.load_manifest(folder)


def test_overfits_eight_images_float_and_int8(trained, output_dir):
    _, _, _, m = trained
    f, q = m["metrics"]["float"], m["metrics"]["int8"]
    summary = {k: (f[k], q[k]) for k in ("mAP50", "mAP", "num_detections")}
    (output_dir / "detection_overfit.json").write_text(json.dumps(
        {"float_int8": summary, "training": m["training"], "loss": m["history"]["loss"]}, indent=1))
    assert f["mAP50"] >= 0.9, summary
    assert q["mAP50"] >= 0.85, summary
    assert m["history"]["loss"][-1] < m["history"]["loss"][0] / 5


def test_manifest_describes_the_detector(trained):
    _, project, folder, m = trained
    assert m["task"] == "detection" and m["labels"] == ["raccoon"] and m["project"] == project.name
    assert m["input_size"] == [160, 160] and m["resize"] == "stretch"
    det = m["detection"]
    assert (det["score_threshold"], det["iou_threshold"], det["max_detections"]) == (0.3, 0.5, 10)
    assert det["anchors"] == (100 + 25 + 9 + 4 + 1) * 4
    assert det["outputs"] == {"count": "output_0", "scores": "output_1", "classes": "output_2",
                              "boxes": "output_3"}
    assert m["quantization"]["input"] == {"scale": pytest.approx(1.0, abs=1e-3), "zero_point": 0,
                                          "dtype": "uint8"}
    for key in ("float", "int8", "labels"):
        assert (folder / m["files"][key]).is_file()
    assert (folder / "labels.txt").read_text() == "raccoon\n"
    assert {"mAP", "mAP50", "per_class_AP", "pr_curve"} <= set(m["metrics"]["float"])
    json.dumps(m)  # plain JSON


def test_int8_model_has_one_postprocess_op_and_is_integer_before_it(trained):
    from core.training.detection.export import POSTPROCESS_OP, verify_detector

    _, _, folder, _ = trained
    report = verify_detector(folder / artefacts.INT8_MODEL)  # raises when anything is off
    assert report["ops"].count(POSTPROCESS_OP) == 1 and report["ops"][-1] == POSTPROCESS_OP
    assert report["input"]["dtype"] == "uint8"
    assert set(report["ops"]) <= {"QUANTIZE", "MUL", "ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE",
                                  "CONCATENATION", "LOGISTIC", "PAD", "DEQUANTIZE", POSTPROCESS_OP}
    assert report["dequantize_ops"] == 2


def test_int8_boxes_read_by_signature_match_the_float_model(trained):
    import keras

    from core.training.detection.anchors import AnchorSpec, generate_anchors
    from core.training.detection.data import ImageCache, examples_from_records, model_input
    from core.training.detection.evaluate import predict_float
    from core.training.detection.export import Int8Detector
    from core.training.detection.matching import iou_matrix
    from core.training.detection.postprocess import PostprocessConfig

    store, project, folder, m = trained
    model = keras.saving.load_model(folder / artefacts.FLOAT_MODEL, compile=False)
    anchors = generate_anchors(AnchorSpec.from_dict(m["detection"]["anchor_spec"]))
    cfg = PostprocessConfig(0.5, 0.5, 10)
    exs = examples_from_records(store.list_images(project), m["labels"])[:4]
    cache = ImageCache(store, 320)
    inputs = [model_input(cache.load(e.image_id), 160) for e in exs]
    floats = predict_float(model, inputs, anchors, cfg)
    int8 = Int8Detector(folder / artefacts.INT8_MODEL)
    matched = 0
    for x, fd in zip(inputs, floats):
        boxes, classes, scores = int8(x)
        assert boxes.shape[1] == 4 and len(boxes) == len(classes) == len(scores)
        assert np.all((scores >= 0.3) & (scores <= 1.0))  # output_1 really is the scores
        assert set(classes.tolist()) <= {0}  # output_2 really is the class index
        assert len(fd) >= 1
        ious = iou_matrix(fd.boxes, boxes)
        for i in range(len(fd)):
            assert ious.shape[1] and ious[i].max() >= 0.9, (fd.boxes[i], boxes)
            matched += 1
    assert matched >= 4


def test_evaluate_detection_reproduces_the_manifest_metrics(trained):
    from core.training.detection import evaluate_detection

    store, project, folder, m = trained
    ev = evaluate_detection(store, project, folder, "all")
    assert ev["float"]["mAP50"] == pytest.approx(m["metrics"]["float"]["mAP50"], abs=1e-6)
    assert ev["int8"]["mAP50"] == pytest.approx(m["metrics"]["int8"]["mAP50"], abs=1e-6)
