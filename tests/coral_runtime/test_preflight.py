"""Preflight on real converted models: our MobileNetV2 passes; each broken rule names the op and why."""

from __future__ import annotations

import json

import pytest

from coral_runtime.preflight import PreflightError, preflight
from tests.coral_runtime import models as M


def _write(tmp_path, name, data):
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(data)
    return p


def test_our_mobilenet_v2_maps_fully(mobilenet_int8):
    r = preflight(mobilenet_int8)
    ops = {o.op for o in r.ops}
    assert {"QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert r.compilable and r.first_cpu_op is None
    assert r.tpu_share == 1.0 and r.ops_on_cpu == 0
    # per-op detail: dtypes, shapes and quantisation are read from the file
    conv = next(o for o in r.ops if o.op == "CONV_2D")
    assert conv.version == 3
    assert conv.inputs[0].dtype == "INT8" and conv.inputs[0].shape == [1, 96, 96, 3]
    assert conv.inputs[0].quantization and len(conv.inputs[0].quantization["scale"]) == 1
    assert r.ops[0].inputs[0].dtype == "UINT8"
    d = r.to_dict()
    json.dumps(d)  # serialisable for the manifest
    assert d["tpu_share"] == 1.0 and d["first_cpu_op"] is None and d["total_ops"] == len(r.ops)


def test_float_model_is_cut_at_the_first_op(tmp_path):
    r = preflight(_write(tmp_path, "float", M.float_model()))
    assert r.first_cpu_op is not None and r.first_cpu_op.index == 0
    assert "FLOAT32" in r.first_cpu_reason and "full-integer" in r.first_cpu_reason
    assert r.tpu_share == 0.0
    assert all(o.placement in ("cpu-cut", "cpu-after-cut") for o in r.ops)


def test_two_non_unit_outer_dims_are_refused(tmp_path):
    r = preflight(_write(tmp_path, "batch2", M.five_dim_model()))
    first = r.first_cpu_op
    assert first is not None and first.op == "QUANTIZE" and first.index == 0
    assert "[2, 8, 8, 3]" in r.first_cpu_reason and "innermost 3" in r.first_cpu_reason
    assert r.ops_on_tpu == 0


def test_unsupported_op_early_cuts_everything_after_it(tmp_path):
    r = preflight(_write(tmp_path, "leaky", M.early_unsupported_model()))
    assert r.first_cpu_op.op == "LEAKY_RELU" and r.first_cpu_op.index == 2
    assert "not an operation the Edge TPU supports" in r.first_cpu_reason
    placements = [o.placement for o in r.ops]
    assert placements[:2] == ["tpu", "tpu"]
    assert placements[2] == "cpu-cut"
    assert set(placements[3:]) == {"cpu-after-cut"}  # supported ops after the cut still run on the CPU
    assert r.tpu_share == pytest.approx(2 / len(r.ops))
    assert "LEAKY_RELU" in r.summary and "everything after it runs on the CPU" in r.summary


def test_grouped_convolution_is_conv2d_v6_and_refused(tmp_path):
    r = preflight(_write(tmp_path, "grouped", M.grouped_conv_model()))
    assert not r.compilable
    bad = r.first_cpu_op
    assert bad.op == "CONV_2D" and bad.version == 6 and bad.placement == "fatal"
    assert "grouped convolution" in r.first_cpu_reason
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in r.fatal
    assert r.tpu_share == 0.0


def test_detection_postprocess_is_the_expected_cpu_tail(detector_int8):
    r = preflight(detector_int8)
    assert r.has_postprocess and r.compilable
    assert r.ops[-1].op == "TFLite_Detection_PostProcess" and r.ops[-1].placement == "cpu-tail"
    assert r.share_before_postprocess == 1.0
    assert r.first_cpu_op is None
    assert "ops before the post-process op on TPU: 100%" in r.summary
    assert r.to_dict()["share_before_postprocess"] == 1.0


def test_not_a_model(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(PreflightError):
        preflight(p)


def test_strided_slice_with_stride_2_is_cut(tmp_path):
    r = preflight(_write(tmp_path, "ss", M.strided_slice_model()))
    assert r.first_cpu_op is not None and r.first_cpu_op.op == "STRIDED_SLICE"
    assert "must all be 1" in r.first_cpu_reason
    assert [o.placement for o in r.ops[:r.first_cpu_op.index]] == ["tpu"] * r.first_cpu_op.index


def test_softmax_over_a_2d_tensor_is_cut(tmp_path):
    r = preflight(_write(tmp_path, "sm", M.softmax_2d_model()))
    assert r.first_cpu_op is not None and r.first_cpu_op.op == "SOFTMAX"
    assert "must be 1-D" in r.first_cpu_reason
