"""int8 export: only 8-bit tensors (int32 constants allowed), uint8 in/out, non-int8 models refused."""

from __future__ import annotations

import numpy as np
import pytest

from core.training.int8 import ExportError, check_int8_only, convert_int8, inspect_tflite, quantization_params, run_tflite


def _small_model():
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inp, out)


def test_convert_int8_gives_only_8bit_tensors(tmp_path):
    model = _small_model()
    reps = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    info = convert_int8(model, reps, tmp_path / "m.tflite")
    assert {t["dtype"] for t in info["tensors"]} <= {"uint8", "int8", "int32"}
    assert all(t["constant"] for t in info["tensors"] if t["dtype"] == "int32")
    q = quantization_params(info)
    assert q["input"]["dtype"] == "uint8" and q["output"]["dtype"] == "uint8"
    assert q["input"]["scale"] == pytest.approx(1.0) and q["input"]["zero_point"] == 0  # raw bytes in
    out = run_tflite(tmp_path / "m.tflite", reps[:3])
    ref = model.predict(reps[:3].astype("float32"), verbose=0)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out, ref, atol=0.08)


def test_float_model_is_refused(tmp_path):
    import tensorflow as tf

    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(_small_model()).convert())
    assert "float32" in {t["dtype"] for t in inspect_tflite(path)["tensors"]}
    with pytest.raises(ExportError, match="not fully integer"):
        check_int8_only(path)


def test_empty_calibration_set_is_refused(tmp_path):
    with pytest.raises(ExportError, match="calibrate"):
        convert_int8(_small_model(), [], tmp_path / "m.tflite")
