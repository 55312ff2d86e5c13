"""Object detection: an SSDLite-style detector on MobileNetV2, trained from the store and exported
as a full-integer TFLite model ending in the ``TFLite_Detection_PostProcess`` op.

Modules (TensorFlow is imported lazily inside the functions that need it, except in the modules
that are all about TF: augment, data, model, loss, export, trainer):

    anchors     anchor grid (cy, cx, h, w normalised to the square model input)
    encoding    box encode / decode with the TF OD API scales (10, 10, 5, 5)
    matching    IoU matrix and target assignment
    model       the Keras 3 detector (Edge TPU mappable up to the post-process op)
    loss        sigmoid focal loss + Huber box loss
    augment     box-aware crop / zoom-out / flip / colour jitter with tf.image
    data        tf.data pipeline from the store
    postprocess decode + fast NMS in numpy, the same as the TFLite op
    export      int8 TFLite with the post-process op, and its verification
    evaluate    COCO mAP with pycocotools for the float and the int8 model
    trainer     train_detection(ctx, project, hp) -> artefact id
"""

from __future__ import annotations


def train_detection(ctx, project, hp):  # noqa: ANN001 - thin lazy wrapper
    """Train, export, evaluate and publish a detector; returns the artefact id (see trainer.py)."""
    from core.training.detection.trainer import train_detection as _train

    return _train(ctx, project, hp)


def evaluate_detection(store, project, artefact_dir, split="test"):  # noqa: ANN001
    """mAP of an artefact's float and int8 models on a split (see evaluate.py)."""
    from core.training.detection.evaluate import evaluate_detection as _eval

    return _eval(store, project, artefact_dir, split)
