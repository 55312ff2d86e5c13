"""Full-integer TFLite export for the Edge TPU, and inspection of a .tflite's tensors.

The Edge TPU runs only models whose every tensor is 8-bit: :func:`convert_int8` converts a
Keras 3 model with a representative dataset (``TFLITE_BUILTINS_INT8``, uint8 input and
output) and :func:`check_int8_only` refuses anything else. TensorFlow is imported lazily;
.tflite files are read with ``tf.lite.Interpreter`` (never ai_edge_litert in core).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Iterable

import numpy as np

INT8_DTYPES = ("uint8", "int8")


class ExportError(RuntimeError):
    """The model could not be converted to an Edge TPU compatible int8 TFLite model."""


def tflite_interpreter(path: str | Path, num_threads: int | None = None, *, default_delegates: bool = False):
    """A ``tf.lite.Interpreter`` for ``path`` (not allocated), without TF's deprecation warning.
    Without ``default_delegates`` it runs TFLite's reference builtin kernels (no XNNPACK), as the
    checks of exported models do."""
    import warnings

    import tensorflow as tf

    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")

    kwargs: dict[str, Any] = {"model_path": str(path)}
    if num_threads:
        kwargs["num_threads"] = num_threads
    if not default_delegates:
        try:
            from tensorflow.lite.python.interpreter import OpResolverType

            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        except ImportError:  # pragma: no cover - older TF
            pass
    return tf.lite.Interpreter(**kwargs)


def _quant(detail: dict) -> dict[str, Any]:
    scale, zp = detail.get("quantization", (0.0, 0))
    return {"scale": float(scale), "zero_point": int(zp), "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(s) for s in detail["shape"]], "name": detail.get("name", "")}


def inspect_tflite(path: str | Path) -> dict[str, Any]:
    """Inputs/outputs (shape, dtype, scale, zero point), every tensor's dtype, and the ops of a .tflite.

    Each tensor entry has ``constant`` (True when no op produces it and it is not a model input).
    """
    it = tflite_interpreter(path)
    tensors = it.get_tensor_details()
    ops = it._get_ops_details()  # noqa: SLF001 - the public API has no op list
    produced = {int(t) for op in ops for t in op["outputs"]}
    inputs = it.get_input_details()
    outputs = it.get_output_details()
    input_idx = {d["index"] for d in inputs}
    return {
        "inputs": [_quant(d) for d in inputs],
        "outputs": [_quant(d) for d in outputs],
        "tensors": [{"index": int(t["index"]), "name": t["name"], "dtype": np.dtype(t["dtype"]).name,
                     "constant": t["index"] not in produced and t["index"] not in input_idx}
                    for t in tensors],
        "ops": [op["op_name"] for op in ops],
    }


def non_int8_tensors(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Tensors that break full-integer quantisation: anything not uint8/int8, except constant int32
    tensors (biases, axes, shapes)."""
    bad = []
    for t in info["tensors"]:
        if t["dtype"] in INT8_DTYPES:
            continue
        if t["dtype"] == "int32" and t["constant"]:
            continue
        bad.append(t)
    return bad


def check_int8_only(path: str | Path) -> dict[str, Any]:
    """Raise :class:`ExportError` unless every tensor of the model is uint8/int8 (int32 constants allowed)
    and input/output are uint8; returns :func:`inspect_tflite`'s report."""
    info = inspect_tflite(path)
    bad = non_int8_tensors(info)
    if bad:
        shown = ", ".join(f"{t['name'] or t['index']} ({t['dtype']})" for t in bad[:8])
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        raise ExportError(
            f"The converted model is not fully integer: {len(bad)} tensor(s) are not 8-bit: {shown}{more}. "
            "The Edge TPU cannot run it.")
    for d in info["inputs"] + info["outputs"]:
        if d["dtype"] != "uint8":
            raise ExportError(f"Model input/output {d['name']!r} is {d['dtype']}, expected uint8.")
    return info


def quantization_params(info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``quantization`` block from :func:`inspect_tflite`'s report (first input/output)."""
    def strip(d):
        return {"scale": d["scale"], "zero_point": d["zero_point"], "dtype": d["dtype"], "shape": d["shape"]}

    out = {"input": strip(info["inputs"][0]), "output": strip(info["outputs"][0])}
    if len(info["outputs"]) > 1:
        out["outputs"] = [strip(d) | {"name": d["name"]} for d in info["outputs"]]
    return out


def convert_int8(model, representative: np.ndarray | Iterable[np.ndarray], out_path: str | Path,
                 ) -> dict[str, Any]:
    """Convert a Keras 3 model to a full-integer .tflite at ``out_path`` and verify it.

    ``representative``: uint8/float images in the model's input range (0..255), one per
    calibration step. Input and output are uint8. Returns ``inspect_tflite``'s report;
    raises :class:`ExportError` when conversion fails or the result is not 8-bit throughout.
    """
    import tensorflow as tf

    from core.training.device import float32_twin

    model = float32_twin(model)  # a mixed-precision model exports as its float32 twin (same structure)
    reps = list(representative)
    if not reps:
        raise ExportError("No images to calibrate int8 quantisation (the training split is empty).")
    # one full-range image pins the input quantisation to scale 1, zero point 0: raw 0..255 bytes in
    shape = np.asarray(reps[0]).shape
    ramp = np.linspace(0, 255, num=int(np.prod(shape)), dtype=np.float32).reshape(shape)
    reps.append(ramp)

    def rep_data():
        for img in reps:
            yield [np.asarray(img, dtype=np.float32)[None, ...]]

    try:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = rep_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        with contextlib.redirect_stdout(io.StringIO()):  # keras' export prints every captured tensor
            blob = converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        raise ExportError(f"int8 conversion failed: {str(exc).strip().splitlines()[0][:500]}") from exc
    out_path = Path(out_path)
    out_path.write_bytes(blob)
    return check_int8_only(out_path)


def run_tflite(path: str | Path, images: np.ndarray, num_threads: int | None = 2) -> np.ndarray:
    """Run a single-input/single-output .tflite on uint8 images (N, H, W, 3); returns dequantised
    outputs (N, …) as float32."""
    it = tflite_interpreter(path, num_threads=num_threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    scale, zp = out["quantization"]
    results = []
    for img in images:
        x = np.asarray(img)[None, ...]
        if inp["dtype"] == np.uint8:
            x = x.astype(np.uint8)
        elif inp["dtype"] == np.int8:
            x = (x.astype(np.int16) - 128).astype(np.int8)
        else:
            x = x.astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(out["index"])[0]
        if scale:
            y = (y.astype(np.float32) - zp) * scale
        results.append(np.asarray(y, dtype=np.float32))
    return np.stack(results) if results else np.zeros((0,), np.float32)
