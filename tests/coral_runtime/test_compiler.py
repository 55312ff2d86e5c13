"""Compiler integration: command line, output/log parsing on published real outputs, failure advice.

Fixtures in data/ are verbatim compiler outputs quoted from (see data/SOURCES.md):
- https://raw.githubusercontent.com/rajansaini691/retinanet-model-tflite/master/tiny_yolo_edgetpu.log
- https://github.com/jiri-kula/EfficientDet (model_edgetpu.log)
- https://github.com/google-coral/edgetpu/issues/427
- https://github.com/google-coral/edgetpu/issues/60
- https://github.com/google-coral/edgetpu/issues/572
- https://github.com/google-coral/libedgetpu/issues/71
- https://github.com/google-coral/edgetpu/issues/845
- https://github.com/google-coral/edgetpu/issues/631
- https://github.com/google-coral/edgetpu/issues/358
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coral_runtime import compiler as C

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_command_line_as_documented(tmp_path):
    cmd = C.compiler_command("m.tflite", tmp_path, min_runtime_version=13, multiple_subgraphs=True,
                             timeout_sec=120)
    assert cmd == ["edgetpu_compiler", "-s", "-o", str(tmp_path), "-m", "13", "-a", "-t", "120", "m.tflite"]
    assert C.compiler_command("m.tflite", "out") == ["edgetpu_compiler", "-s", "-o", "out", "m.tflite"]


def test_log_table_tiny_yolo_v14():
    # https://raw.githubusercontent.com/rajansaini691/retinanet-model-tflite/master/tiny_yolo_edgetpu.log
    rows = C.parse_log(read("tiny_yolo_edgetpu.log"))
    assert len(rows) == 8
    assert (rows[0].operator, rows[0].count, rows[0].status) == (
        "CONCATENATION", 1, "More than one subgraph is not supported")
    assert rows[2].status == "Operation version not supported" and not rows[2].mapped
    assert rows[5].status.startswith("Operation is otherwise supported, but not mapped")
    assert sum(r.count for r in rows if r.mapped) == 6 + 11 + 2


def test_log_table_efficientdet_v16():
    # https://github.com/jiri-kula/EfficientDet (model_edgetpu.log)
    rows = C.parse_log(read("efficientdet_edgetpu.log"))
    assert len(rows) == 16
    deq = [r for r in rows if not r.mapped]
    assert [(r.operator, r.count, r.status) for r in deq] == [
        ("DEQUANTIZE", 3, "Operation is working on an unsupported data type")]


def test_stdout_with_cpu_ops_v15():
    # https://github.com/google-coral/edgetpu/issues/427
    r = C.parse_output(read("stdout_partial_cpu_v15.txt"))
    assert r.ok and r.version == "15.0.340273435" and r.compile_ms == 1379
    assert r.input_model == "model.tflite" and r.output_model == "model_edgetpu.tflite"
    assert r.on_chip_memory_used == "1.92MiB" and r.off_chip_memory_used == "3.23MiB"
    assert (r.total_ops, r.ops_on_tpu, r.ops_on_cpu) == (136, 135, 1)
    assert r.log_file == "model_edgetpu.log"
    # the stored copy of the thread ends after these four rows (the published table goes on with a CUSTOM
    # row and more), so only the order of its first rows is asserted
    assert [o.operator for o in r.operations][:4] == ["RESHAPE", "CONCATENATION", "MAX_POOL_2D", "ADD"]


def test_stdout_subgraphs_v2_1():
    # https://github.com/google-coral/edgetpu/issues/60
    r = C.parse_output(read("stdout_subgraphs_v2_1.txt"))
    assert r.ok and r.version == "2.1.302470888" and r.compile_ms == 12264
    assert (r.ops_on_tpu, r.ops_on_cpu) == (83, 10)
    assert r.operations[0].status == "More than one subgraph is not supported"


def test_stdout_all_mapped_v16_has_no_split_lines():
    # https://github.com/google-coral/edgetpu/issues/572
    r = C.parse_output(read("stdout_all_mapped_v16.txt"))
    assert r.ok and r.version == "16.0.384591198" and r.compile_ms == 542
    assert r.on_chip_memory_used == "604.50KiB"
    assert (r.total_ops, r.ops_on_tpu, r.ops_on_cpu) == (50, 50, 0)


@pytest.mark.parametrize("name, op, version", [
    ("stdout_exp_v2.txt", "EXP", "2"),                        # google-coral/libedgetpu#71
    ("stdout_transpose_conv_v4.txt", "TRANSPOSE_CONV", "4"),  # google-coral/edgetpu#845
    ("stdout_conv2d_v6.txt", "CONV_2D", "6"),                 # google-coral/edgetpu#631
])
def test_op_version_failures_give_advice(name, op, version):
    r = C.parse_output(read(name))
    assert not r.ok
    assert f"Didn't find op for builtin opcode '{op}' version '{version}'" in r.error
    assert f"{op} version {version}" in r.advice and "preflight" in r.advice


def test_internal_compiler_error():
    # https://github.com/google-coral/edgetpu/issues/358
    r = C.parse_output(read("stdout_internal_error.txt"))
    assert not r.ok and r.version == "15.0.340273435"
    assert "Internal compiler error" in r.error
    assert "crashed" in r.advice


def test_missing_compiler_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert C.find_compiler() is None
    with pytest.raises(C.CompilerError, match="apt-get install edgetpu-compiler"):
        C.compile_model(tmp_path / "m.tflite", tmp_path / "out")


def _fake_compiler(tmp_path: Path, body: str) -> Path:
    """A stand-in executable that prints a published output (tests the subprocess path only)."""
    exe = tmp_path / "bin" / "edgetpu_compiler"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_compile_model_runs_the_command_and_reads_failure(tmp_path):
    out = DATA / "stdout_exp_v2.txt"
    exe = _fake_compiler(tmp_path, f"cat '{out}'\nexit 1\n")
    model = tmp_path / "model_2.tflite"
    model.write_bytes(b"x")
    r = C.compile_model(model, tmp_path / "out", timeout=10, compiler=str(exe))
    assert not r.ok and r.returncode == 1
    assert r.command[:4] == [str(exe), "-s", "-o", str(tmp_path / "out")]
    assert "EXP version 2" in r.advice


def test_docker_path_is_written(tmp_path):
    df = C.write_docker_context(tmp_path / "ctx")
    text = df.read_text()
    assert "apt-get install -y --no-install-recommends edgetpu-compiler" in text
    assert "coral-edgetpu-stable main" in text
    cmds = C.docker_commands(tmp_path / "m.tflite", tmp_path / "out")
    assert cmds["run"][:3] == ["docker", "run", "--rm"] and cmds["run"][-1] == "/in/m.tflite"


@pytest.mark.compiler
@pytest.mark.skipif(C.find_compiler() is None,
                    reason="edgetpu_compiler is not on PATH (x86-64 Debian only, from Coral's apt repository)")
def test_real_compiler_maps_our_mobilenet(mobilenet_int8, tmp_path):
    r = C.compile_model(mobilenet_int8, tmp_path, timeout=300)
    assert r.ok, r.stdout
    assert Path(r.output_model).exists() and r.ops_on_cpu == 0
