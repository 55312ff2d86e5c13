"""Full-integer TFLite export of the detector, ending in the ``TFLite_Detection_PostProcess`` op.

The op has no TensorFlow kernel: as in the TF OD API, an empty ``tf.function`` with
``experimental_implements="name: 'TFLite_Detection_PostProcess' attr {...}"`` stands in for it and
the TFLite converter fuses it into the custom op. Under Keras 3 this only works when the graph is
exported with ``keras.export.ExportArchive`` (and converted with ``allow_custom_ops=True``).

The exported signature ``serving_default`` takes ``images`` (uint8 ``[1, S, S, 3]``) and returns
``output_0`` count ``[1]``, ``output_1`` scores ``[1, D]``, ``output_2`` classes ``[1, D]`` and
``output_3`` boxes ``[1, D, 4]`` (normalised ``ymin, xmin, ymax, xmax``).

Everything before the post-process op is int8 (input uint8); the converter inserts one DEQUANTIZE
per op input (box encodings, scores), because the op reads float: the Edge TPU runs the graph up
to those, the CPU runs the DEQUANTIZEs and the post-process op -- as with Coral's own SSD models.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from core.training.int8 import tflite_interpreter
from core.training.detection import encoding
from core.training.detection.postprocess import PostprocessConfig

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
SIGNATURE = "serving_default"
OUTPUTS = {"count": "output_0", "scores": "output_1", "classes": "output_2", "boxes": "output_3"}


class ExportError(RuntimeError):
    """The exported model is not what the Edge TPU / the runtime expects."""


def postprocess_signature(num_classes: int, cfg: PostprocessConfig,
                          scales: tuple[float, ...] = encoding.SCALES) -> str:
    """The ``experimental_implements`` string describing the op and its attributes."""
    attrs = [
        f'name: "{POSTPROCESS_OP}"',
        f'attr {{ key: "max_detections" value {{ i: {int(cfg.max_detections)} }} }}',
        'attr { key: "max_classes_per_detection" value { i: 1 } }',
        'attr { key: "use_regular_nms" value { b: false } }',
        f'attr {{ key: "nms_score_threshold" value {{ f: {float(cfg.score_threshold):f} }} }}',
        f'attr {{ key: "nms_iou_threshold" value {{ f: {float(cfg.iou_threshold):f} }} }}',
        f'attr {{ key: "y_scale" value {{ f: {scales[0]:f} }} }}',
        f'attr {{ key: "x_scale" value {{ f: {scales[1]:f} }} }}',
        f'attr {{ key: "h_scale" value {{ f: {scales[2]:f} }} }}',
        f'attr {{ key: "w_scale" value {{ f: {scales[3]:f} }} }}',
        f'attr {{ key: "num_classes" value {{ i: {int(num_classes)} }} }}',
    ]
    return " ".join(attrs)


def export_int8(model: Any, anchors: np.ndarray, representative: Iterable[np.ndarray],
                out_path: str | Path, num_classes: int, cfg: PostprocessConfig,
                work_dir: str | Path | None = None,
                scales: tuple[float, ...] = encoding.SCALES) -> dict:
    """Convert the inference model (image -> [boxes, scores]) to ``out_path``; returns a summary
    with the input quantization and the verification (see :func:`verify_detector`).

    ``representative``: uint8 ``[S, S, 3]`` model inputs for calibration.
    """
    import keras
    import tensorflow as tf

    from core.training.device import float32_twin

    model = float32_twin(model)  # a mixed-precision model exports as its float32 twin (same structure)
    size = int(model.inputs[0].shape[1])
    reps = [np.asarray(r, np.uint8) for r in representative]
    if not reps:
        raise ExportError("int8 calibration needs at least one image")
    anchors_t = tf.constant(np.asarray(anchors, np.float32))

    @tf.function(experimental_implements=postprocess_signature(num_classes, cfg, scales))
    def detection_postprocess(box_encodings, class_predictions, anchors):  # noqa: ARG001
        # Placeholder body: the converter replaces the whole function by the TFLite op.
        return (tf.constant(0.0, name="boxes"), tf.constant(0.0, name="classes"),
                tf.constant(0.0, name="scores"), tf.constant(0.0, name="num_detections"))

    def serve(images):
        boxes, scores = model(images, training=False)
        det_boxes, det_classes, det_scores, count = detection_postprocess(boxes, scores, anchors_t)
        return {OUTPUTS["count"]: count, OUTPUTS["scores"]: det_scores,
                OUTPUTS["classes"]: det_classes, OUTPUTS["boxes"]: det_boxes}

    tmp = Path(tempfile.mkdtemp(prefix="det-export-", dir=str(work_dir) if work_dir else None))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE, serve, input_signature=[
            tf.TensorSpec([1, size, size, 3], tf.float32, name="images")])
        archive.write_out(str(tmp / "saved_model"), verbose=False)

        conv = tf.lite.TFLiteConverter.from_saved_model(str(tmp / "saved_model"))
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep_data():
            for r in reps:
                yield [r[None].astype(np.float32)]

        conv.representative_dataset = rep_data
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.allow_custom_ops = True
        data = conv.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out_path = Path(out_path)
    out_path.write_bytes(data)
    report = verify_detector(out_path)
    return report


def _interpreter(path: str | Path):
    it = tflite_interpreter(path)
    it.allocate_tensors()
    return it


def inspect_tflite(path: str | Path) -> dict:
    """Ops (in execution order) with their input/output dtypes, and the signature."""
    it = _interpreter(path)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = []
    for op in it._get_ops_details():  # noqa: SLF001 - the only op-level API of the interpreter
        ops.append({
            "index": op["index"], "op": op["op_name"],
            "inputs": [int(i) for i in op["inputs"] if i >= 0],
            "outputs": [int(i) for i in op["outputs"] if i >= 0],
        })
    inp = it.get_input_details()[0]
    return {"ops": ops, "tensors": tensors, "signatures": it.get_signature_list(),
            "input": {"dtype": np.dtype(inp["dtype"]).name, "shape": [int(v) for v in inp["shape"]],
                      "scale": float(inp["quantization"][0]),
                      "zero_point": int(inp["quantization"][1])}}


def verify_detector(path: str | Path) -> dict:
    """Check the int8 detector; raise :class:`ExportError` when it is wrong.

    - exactly one ``TFLite_Detection_PostProcess`` op, and it is the last op;
    - the input is uint8, and every tensor flowing into or out of the ops before the
      post-process op is int8/uint8, except int32 constants (biases, shapes) and the float
      outputs of the DEQUANTIZE ops that feed the post-process op directly;
    - the signature has ``output_0..3``.
    """
    info = inspect_tflite(path)
    ops, tensors = info["ops"], info["tensors"]
    pp = [o for o in ops if o["op"] == POSTPROCESS_OP]
    if len(pp) != 1:
        raise ExportError(f"expected exactly one {POSTPROCESS_OP} op, found {len(pp)}")
    pp_op = pp[0]
    pos = ops.index(pp_op)
    if pos != len(ops) - 1:
        raise ExportError(f"{POSTPROCESS_OP} is not the last op: {[o['op'] for o in ops[pos + 1:]]}")
    produced_by = {t: o for o in ops for t in o["outputs"]}
    pp_inputs = set(pp_op["inputs"])
    bad, dequantize = [], []
    for o in ops[:pos]:
        if o["op"] == "DEQUANTIZE":
            if not set(o["outputs"]) <= pp_inputs:
                bad.append(f"DEQUANTIZE #{o['index']} feeds something else than the post-process op")
            dequantize.append(o["index"])
        for t in o["inputs"] + o["outputs"]:
            dt = np.dtype(tensors[t]["dtype"]).name
            if dt in ("int8", "uint8"):
                continue
            if dt == "int32" and t not in produced_by:
                continue  # bias / shape constant
            if o["op"] == "DEQUANTIZE" and t in o["outputs"]:
                continue
            bad.append(f"{o['op']} #{o['index']}: tensor {tensors[t]['name']!r} is {dt}")
    if bad:
        raise ExportError("not fully integer before the post-process op: " + "; ".join(bad[:10]))
    if info["input"]["dtype"] != "uint8":
        raise ExportError(f"input is {info['input']['dtype']}, expected uint8")
    outs = set(info["signatures"].get(SIGNATURE, {}).get("outputs", []))
    if outs != set(OUTPUTS.values()):
        raise ExportError(f"signature outputs {sorted(outs)} != {sorted(OUTPUTS.values())}")
    # quantization of the two op inputs (before their DEQUANTIZE)
    quant = {}
    for name, idx in (("boxes", 0), ("scores", 1)):
        t = pp_op["inputs"][idx]
        src = produced_by.get(t)
        q_t = src["inputs"][0] if src and src["op"] == "DEQUANTIZE" else t
        q = tensors[q_t]["quantization"]
        quant[name] = {"dtype": np.dtype(tensors[q_t]["dtype"]).name, "scale": float(q[0]),
                       "zero_point": int(q[1])}
    return {
        "ops": [o["op"] for o in ops],
        "postprocess_ops": 1,
        "dequantize_ops": len(dequantize),
        "input": info["input"],
        "postprocess_inputs": quant,
        "signature_outputs": dict(OUTPUTS),
    }


class Int8Detector:
    """Runs the exported model with ``tf.lite.Interpreter``, reading outputs by signature name."""

    def __init__(self, path: str | Path):
        self.interpreter = tflite_interpreter(path, default_delegates=True)
        self.interpreter.allocate_tensors()
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.input_name = next(iter(self.runner.get_input_details()))

    def __call__(self, image: np.ndarray):
        """uint8 ``[S, S, 3]`` -> (boxes ``[D, 4]``, classes ``[D]``, scores ``[D]``)."""
        out = self.runner(**{self.input_name: np.asarray(image, np.uint8)[None]})
        n = int(round(float(np.asarray(out[OUTPUTS["count"]]).reshape(-1)[0])))
        boxes = np.asarray(out[OUTPUTS["boxes"]]).reshape(-1, 4)[:n]
        classes = np.asarray(out[OUTPUTS["classes"]]).reshape(-1)[:n].round().astype(np.int64)
        scores = np.asarray(out[OUTPUTS["scores"]]).reshape(-1)[:n]
        return boxes, classes, scores
