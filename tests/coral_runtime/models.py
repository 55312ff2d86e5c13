"""Tiny TFLite models for the coral_runtime tests, built with TensorFlow (tests only).

Each builder returns the .tflite bytes; ``write_*`` helpers put them in a folder.
Everything is small (a few ms per conversion step on 2 shared cores) except the
MobileNetV2, which takes ~10-20 s: build it once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(0)


def _tf():
    import tensorflow as tf

    return tf


def _rep(shape, n=8, low=0.0, high=255.0):
    def gen():
        for _ in range(n):
            yield [RNG.uniform(low, high, size=(1, *shape)).astype("float32")]

    return gen


def convert_int8(model, input_shape, *, uint8_io: bool = True, batch: int = 1,
                 representative: np.ndarray | None = None) -> bytes:
    """Full-integer conversion (the project's contract: uint8 in/out, int8 inside); calibrated on
    ``representative`` images when given, else on uniform noise (enough for structure tests)."""
    tf = _tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def gen():
        if representative is not None:
            for x in representative:
                yield [np.asarray(x, np.float32)[None]]
            return
        for _ in range(8):
            yield [RNG.uniform(0, 255, size=(batch, *input_shape)).astype("float32")]

    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if uint8_io:
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
    return conv.convert()


def convert_float(model) -> bytes:
    tf = _tf()
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def mobilenet_v2_classifier(num_classes: int = 3, size: int = 96) -> bytes:
    """Our own classification graph: Rescaling to [-1, 1] + MobileNetV2(alpha=0.35) + softmax head."""
    import keras

    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35,
                                          include_top=False, weights=None)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return convert_int8(keras.Model(inp, out), (size, size, 3))


def small_classifier(num_classes: int = 3, size: int = 32, *, seed: int = 0) -> "keras.Model":
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out)


def float_model(size: int = 16) -> bytes:
    """No quantisation at all: every tensor is float32."""
    return convert_float(small_classifier(size=size))


def five_dim_model() -> bytes:
    """A batch of 2: the QUANTIZE/CONV_2D tensors are [2, 8, 8, C] (4 dims > 1)."""
    import keras

    inp = keras.Input((8, 8, 3), batch_size=2)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2)(x)
    return convert_int8(keras.Model(inp, out), (8, 8, 3), batch=2)


def early_unsupported_model() -> bytes:
    """CONV_2D -> LEAKY_RELU (not an Edge TPU op) -> CONV_2D -> ... : the cut is the LeakyReLU."""
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)
    x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    return convert_int8(keras.Model(inp, out), (16, 16, 3))


def grouped_conv_model() -> bytes:
    """A grouped convolution (groups=2): the converter writes CONV_2D version 6."""
    import keras

    inp = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", groups=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2)(x)
    return convert_int8(keras.Model(inp, out), (8, 8, 4))


# -- detection with the TFLite_Detection_PostProcess custom op ------------------
def _postprocess_signature(num_classes: int, max_det: int) -> str:
    attrs = {
        "max_detections": ("i", max_det), "max_classes_per_detection": ("i", 1),
        "detections_per_class": ("i", max_det), "num_classes": ("i", num_classes),
        "use_regular_nms": ("b", "false"), "nms_score_threshold": ("f", 0.05),
        "nms_iou_threshold": ("f", 0.5), "y_scale": ("f", 10.0), "x_scale": ("f", 10.0),
        "h_scale": ("f", 5.0), "w_scale": ("f", 5.0),
    }
    parts = ['name: "TFLite_Detection_PostProcess"']
    for k, (t, v) in attrs.items():
        parts.append(f'attr {{ key: "{k}" value {{ {t}: {v} }} }}')
    return " ".join(parts)


def tiny_detector(tmp: Path, num_classes: int = 2, size: int = 32, max_det: int = 5) -> bytes:
    """A tiny SSD-like head + the fused TFLite_Detection_PostProcess op (ExportArchive path)."""
    tf = _tf()
    import keras

    grid = size // 8
    anchors_n = grid * grid
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    boxes = keras.layers.Reshape((anchors_n, 4))(keras.layers.Conv2D(4, 1)(x))
    logits = keras.layers.Conv2D(num_classes + 1, 1)(x)
    scores = keras.layers.Reshape((anchors_n, num_classes + 1))(keras.layers.Activation("sigmoid")(logits))
    head = keras.Model(inp, [boxes, scores])

    cy, cx = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
    anchors = np.stack([cy.ravel(), cx.ravel(), np.full(anchors_n, 0.3), np.full(anchors_n, 0.3)],
                       axis=1).astype("float32")
    anchors_t = tf.constant(anchors)

    @tf.function(experimental_implements=_postprocess_signature(num_classes, max_det))
    def postprocess(box_encodings, class_predictions, anchors_in):
        b = tf.zeros([1, max_det, 4], tf.float32) + tf.reduce_sum(box_encodings) * 0.0 \
            + tf.reduce_sum(anchors_in) * 0.0
        c = tf.zeros([1, max_det], tf.float32) + tf.reduce_sum(class_predictions) * 0.0
        s = tf.zeros([1, max_det], tf.float32)
        n = tf.constant([float(max_det)], tf.float32)
        return b, c, s, n

    def serve(images):
        b, s = head(images)
        return postprocess(b, s, anchors_t)

    archive = keras.export.ExportArchive()
    archive.track(head)
    archive.add_endpoint("serve", serve,
                         input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)])
    sm = tmp / "det_saved_model"
    archive.write_out(str(sm), verbose=False)

    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _rep((size, size, 3))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.allow_custom_ops = True
    return conv.convert()


def write_artefact(folder: Path, tflite: bytes, *, task: str, labels: list[str], input_size: int,
                   resize: str = "stretch", extra: dict | None = None) -> Path:
    """A model artefact folder as INTERFACES.md describes (manifest + model_int8 + labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_int8.tflite").write_bytes(tflite)
    (folder / "labels.txt").write_text("".join(f"{n}\n" for n in labels), encoding="utf-8")
    manifest = {
        "schema_version": 1, "id": folder.name, "task": task, "project": "test",
        "labels": labels, "input_size": [input_size, input_size], "resize": resize,
        "created": 0.0, "files": {"int8": "model_int8.tflite", "labels": "labels.txt"},
    }
    if task == "detection":
        manifest["detection"] = {"score_threshold": 0.3, "iou_threshold": 0.5, "max_detections": 5}
    manifest.update(extra or {})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_images(n_per_class: int = 8, size: int = 48, seed: int = 0):
    """Noisy solid-colour photos: (label, PIL image) pairs — a task a tiny net learns in seconds."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for label, rgb in COLOURS.items():
        for _ in range(n_per_class):
            arr = np.clip(np.array(rgb)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255)
            out.append((label, Image.fromarray(arr.astype(np.uint8))))
    return out


def trained_colour_classifier(size: int = 32, epochs: int = 25) -> bytes:
    """A really trained tiny classifier (red/green/blue), converted to full int8 (~5 s)."""
    import keras

    data = colour_images()
    labels = list(COLOURS)
    x = np.stack([np.asarray(im.resize((size, size)), np.float32) for _, im in data])
    y = np.array([labels.index(lbl) for lbl, _ in data])
    model = small_classifier(len(labels), size)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    return convert_int8(model, (size, size, 3), representative=x)


def strided_slice_model() -> bytes:
    """A stride-2 slice (x[:, ::2]) after a conv: STRIDED_SLICE with strides != 1."""
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Lambda(lambda t: t[:, ::2, :, :])(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2)(x)
    return convert_int8(keras.Model(inp, out), (16, 16, 3))


def softmax_2d_model() -> bytes:
    """A softmax over a [1, 4, 6] tensor (per-row): SOFTMAX must be 1-D on the Edge TPU. (Batch 1
    is fixed, else the Reshape needs a SHAPE op, which preflight rightly reports first.)"""
    import keras

    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(24)(x)
    x = keras.layers.Reshape((4, 6))(x)
    out = keras.layers.Softmax(axis=-1)(x)
    return convert_int8(keras.Model(inp, out), (8, 8, 3))
