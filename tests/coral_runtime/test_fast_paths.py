"""The predictor's fast paths give what the general paths give: resize straight into a reused buffer,
identity / table-driven input quantisation, vectorised detection decoding, per-thread buffers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.boxes import Box
from coral_runtime import adapters as A
from coral_runtime.predictor import Predictor
from tests.coral_runtime import models as M


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _reference_resize(image: Image.Image, size: tuple[int, int], mode: str) -> np.ndarray:
    """The pre-buffer implementation: resize, then paste top-left on a zero canvas."""
    in_h, in_w = size
    img = image.convert("RGB")
    w, h = img.size
    if mode == "stretch":
        return np.asarray(img.resize((in_w, in_h), Image.Resampling.BILINEAR, reducing_gap=A.REDUCING_GAP))
    s = min(in_w / w, in_h / h)
    nw, nh = min(in_w, max(1, int(round(w * s)))), min(in_h, max(1, int(round(h * s))))
    canvas = np.zeros((in_h, in_w, 3), np.uint8)
    canvas[:nh, :nw] = np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=A.REDUCING_GAP))
    return canvas


@pytest.mark.parametrize("mode", A.RESIZE_MODES)
def test_resize_into_a_reused_buffer_equals_the_fresh_resize(mode):
    buf = np.full((40, 56, 3), 77, np.uint8)  # stale content must not leak into the padding
    for w, h in ((640, 480), (100, 300), (56, 40), (37, 91), (1000, 20)):
        img = _noise(w, h, seed=w)
        tr = A.resize_into(img, buf, mode)
        assert np.array_equal(buf, _reference_resize(img, (40, 56), mode)), (w, h)
        arr, tr2 = A.resize_image(img, (40, 56), mode)
        assert np.array_equal(arr, buf) and tr == tr2


def test_resize_into_converts_non_rgb_and_rejects_wrong_buffers():
    grey = Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8), "L")
    buf = np.empty((24, 32, 3), np.uint8)
    A.resize_into(grey, buf, "letterbox")
    assert np.array_equal(buf, _reference_resize(grey, (24, 32), "letterbox"))
    with pytest.raises(ValueError):
        A.resize_into(grey, np.empty((24, 32, 3), np.float32))
    with pytest.raises(ValueError):
        A.resize_into(grey, buf, "crop")


def test_identity_quantisation_is_recognised():
    assert A.is_identity_quantization(np.uint8, (0.9999998807907104, 0))  # what the studio's export gives
    assert A.is_identity_quantization(np.uint8, (0.0, 0))  # unquantised uint8
    # pixels are real values in the studio's contract: these scales need arithmetic
    assert not A.is_identity_quantization(np.uint8, (1 / 255, 0))
    assert not A.is_identity_quantization(np.uint8, (1 / 127.5, 128))
    assert not A.is_identity_quantization(np.int8, (1.0, -128))
    assert A.input_lut(np.uint8, (1.0, 0)) is None and A.input_lut(np.float32, (0.0, 0)) is None


@pytest.mark.parametrize("dtype,quant", [(np.int8, (1.0, -128)), (np.uint8, (2.0, 10)), (np.int8, (0.75, -3)),
                                         (np.uint8, (1 / 255, 0)), (np.int8, (3.3, 5)), (np.uint8, (0.5, 0))])
def test_table_quantisation_equals_the_arithmetic(dtype, quant):
    px = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    px[0, :3, 0] = [0, 128, 255]
    lut = A.input_lut(dtype, quant)
    assert lut is not None and lut.shape == (256,) and lut.dtype == np.dtype(dtype)
    fast = A.quantize_input(px, dtype, quant)
    general = A.quantize_input(px.astype(np.int16), dtype, quant)  # non-uint8 pixels take the float path
    assert fast.dtype == general.dtype == np.dtype(dtype) and np.array_equal(fast, general)
    info = np.iinfo(dtype)
    exact = np.clip(np.round(np.arange(256) / quant[0] + quant[1]), info.min, info.max)
    assert np.abs(lut.astype(np.int32) - exact).max() <= 1  # float32 vs float64 rounding: within 1 LSB


def _reference_detect(outputs, roles, tr, labels, threshold=0.0, max_detections=None):
    """The per-detection loop (Transform.to_original per box) the vectorised decoder replaced."""
    boxes = np.asarray(outputs[roles["boxes"]], np.float32).reshape(-1, 4)
    classes = np.asarray(outputs[roles["classes"]], np.float32).reshape(-1)
    scores = np.asarray(outputs[roles["scores"]], np.float32).reshape(-1)
    count = max(0, min(int(np.asarray(outputs[roles["count"]]).reshape(-1)[0]), len(scores), len(boxes)))
    out = []
    for i in range(count):
        if scores[i] < threshold:
            continue
        cid = int(classes[i])
        box = tr.to_original(*(float(v) for v in boxes[i]))
        out.append(A.Detection(labels[cid] if 0 <= cid < len(labels) else str(cid), float(scores[i]), box, cid))
    out.sort(key=lambda d: d.score, reverse=True)
    return out[:max_detections] if max_detections else out


@pytest.mark.parametrize("mode", A.RESIZE_MODES)
def test_vectorised_detection_decoding_equals_the_loop(mode):
    rng = np.random.default_rng(3)
    roles = {"boxes": "b", "classes": "c", "scores": "s", "count": "n"}
    for trial in range(40):
        n = int(rng.integers(1, 25))
        _, _, tr = A.fit(int(rng.integers(20, 2000)), int(rng.integers(20, 2000)), (320, 320), mode)
        scores = rng.choice([0.2, 0.5, 0.9], n).astype(np.float32) if trial % 2 else rng.random(n, np.float32)
        outputs = {"b": rng.uniform(-0.3, 1.3, (1, n, 4)).astype(np.float32),  # swapped and outside boxes
                   "c": rng.integers(0, 4, (1, n)).astype(np.float32),  # class 3 has no label
                   "s": scores[None], "n": np.array([float(rng.integers(0, n + 3))], np.float32)}
        for thr, top in ((0.0, None), (0.5, None), (0.3, 3), (1.1, None)):
            got = A.detect(outputs, roles, tr, ["a", "b", "c"], threshold=thr, max_detections=top)
            assert got == _reference_detect(outputs, roles, tr, ["a", "b", "c"], thr, top)
            for d in got:
                assert isinstance(d.box, Box) and d.box.is_inside(tr.width, tr.height)


# -- through the Predictor, on real tiny models ------------------------------------------------------
def _int8_input_classifier() -> bytes:
    """A tiny classifier whose input is int8 (scale ~1, zero point -128): the table path."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(M.small_classifier(size=32))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.default_rng(i).uniform(0, 255, (1, 32, 32, 3))
                                            .astype(np.float32)] for i in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory, small_cls_int8, detector_int8) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fast_paths")
    labels = ["cat", "dog", "eel"]
    return {
        "uint8": M.write_artefact(root / "u8", small_cls_int8.read_bytes(), task="classification",
                                  labels=labels, input_size=32),
        "int8": M.write_artefact(root / "i8", _int8_input_classifier(), task="classification",
                                 labels=labels, input_size=32),
        "float": M.write_artefact(root / "f32", M.float_model(size=16), task="classification",
                                  labels=labels, input_size=16),
        "det": M.write_artefact(root / "det", detector_int8.read_bytes(), task="detection",
                                labels=["raccoon", "cat"], input_size=32, resize="letterbox"),
    }


def _general_path(p: Predictor, image: Image.Image, threshold: float = 0.0) -> tuple[list, np.ndarray]:
    """The unoptimised pipeline: fresh resize, arithmetic quantisation, RuntimeInterpreter.run."""
    it = p.interpreter
    pixels, tr = A.resize_image(image, p.input_size, p.resize)
    tensor = A.quantize_input(pixels.astype(np.int16), it.input_dtype, it.input_quantization) \
        if it.input_dtype != np.float32 else pixels.astype(np.float32)
    outs = it.run(tensor)
    if p.task == "classification":
        name = it.output_names()[int(it.outputs[0]["index"])]
        return A.classify(outs[name], it.outputs[0], p.labels, top_k=3), tensor
    return _reference_detect(outs, p.roles, tr, p.labels, threshold, p.max_detections), tensor


@pytest.mark.parametrize("kind", ["uint8", "int8", "float", "det"])
def test_predict_equals_the_general_path(artefacts, kind):
    p = Predictor(artefacts[kind], device="cpu")
    it = p.interpreter
    if kind == "uint8":
        assert p._identity_input and p._input_lut is None  # noqa: SLF001 - the path under test
    if kind == "int8":
        assert it.input_dtype == np.int8 and p._input_lut is not None  # noqa: SLF001
    for w, h, seed in ((640, 480, 0), (300, 150, 1), (64, 200, 2), (640, 480, 3)):  # buffer reused
        img = _noise(w, h, seed)
        want, tensor = _general_path(p, img)
        fast, tr = p.preprocess(img)
        assert fast.dtype == tensor.dtype and np.array_equal(fast, tensor)
        got = p.predict(img, threshold=0.0, top_k=3 if p.task == "classification" else None)
        assert (got.classes if p.task == "classification" else got.detections) == want
        assert got.image_size == (w, h) and tr.width == w


def test_concurrent_predictions_keep_their_own_buffers(artefacts):
    p = Predictor(artefacts["uint8"], device="cpu")
    images = [_noise(200 + 40 * i, 120 + 30 * i, seed=i) for i in range(4)]
    expected = [p.predict(im, top_k=3).classes for im in images]
    errors: list[str] = []

    def worker(k: int) -> None:
        for _ in range(25):
            for i, im in enumerate(images[k:] + images[:k]):
                j = (i + k) % len(images)
                if p.predict(im, top_k=3).classes != expected[j]:
                    errors.append(f"thread {k} image {j}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fast_resize_stays_close_to_the_fair_resize(raccoon_dir):
    photos = sorted((raccoon_dir / "images").glob("*.jpg"))[:6]
    assert photos
    diffs = []
    for path in photos:
        frame = Image.open(path).convert("RGB").resize((640, 480), Image.Resampling.BILINEAR)
        for size, mode in (((224, 224), "stretch"), ((320, 320), "letterbox")):
            fair, tr = A.resize_image(frame, size, mode)
            fast, tr_fast = A.resize_image(frame, size, mode, reducing_gap=A.FAST_REDUCING_GAP)
            assert tr == tr_fast  # the geometry (and so every box) is the same
            diffs.append(np.abs(fair.astype(np.int16) - fast).ravel())
    d = np.concatenate(diffs)
    assert 0 < d.mean() < 2.5 and np.percentile(d, 99) <= 20
