"""Static Edge TPU check of a .tflite file: which ops the Edge TPU can run, and where the graph is cut.

The rules are those of coral.ai "TensorFlow models on the Edge TPU" (supported operations and their
known limitations; full-integer quantisation; constant tensor sizes; at most 3 dimensions larger than
one, only the innermost 3; the compiler cuts the graph once: the first unsupported op and everything
that depends on it run on the CPU) plus the op versions Edge TPU Compiler 16 can parse (newer
versions stop the compiler with "Didn't find op for builtin opcode 'X' version 'N'").

The file is read with the ``tflite`` flatbuffer schema package (imported lazily); nothing here
runs the model. The prediction is static: the real compiler can still refuse an op for reasons
that are not in the file (e.g. size limits), and ``compiler.py`` reports what it really did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
EDGETPU_OP = "edgetpu-custom-op"
COMPILER_VERSION = 16

# Supported operations (TFLite builtin names) -> short restriction note from the coral.ai table.
SUPPORTED_OPS: dict[str, str] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation; a constant input must be the only other input and all zeros",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weights format only; one-dimensional output",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "LSTM": "unidirectional only",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation function",
    "MEAN": "no reduction over the batch dimension; a z-reduction needs z a multiple of 4",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing in the batch dimension",
    "PAD": "no padding in the batch dimension",
    "PRELU": "alpha must be 1-dimensional",
    "QUANTIZE": "",
    "REDUCE_MAX": "cannot operate on the batch dimension",
    "REDUCE_MIN": "cannot operate on the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "certain reshapes of large tensors may not be mapped",
    "RESIZE_BILINEAR": "3-dimensional input/output; large sizes may stay on the CPU",
    "RESIZE_NEAREST_NEIGHBOR": "3-dimensional input/output; large sizes may stay on the CPU",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "1-D input with at most 16,000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "no splitting in the batch dimension",
    "SQUEEZE": "",
    "STRIDED_SLICE": "all strides 1, no ellipsis or new-axis mask",
    "SUB": "",
    "SUM": "cannot operate on the batch dimension",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}

# Newest op version Edge TPU Compiler 16 parses, for the ops where a newer one is known to be
# written by current TensorFlow and refused by the compiler (published compiler errors:
# CONV_2D v6 = grouped convolution, TRANSPOSE_CONV v4, EXP v2, QUANTIZE v3).
MAX_VERSION_COMPILER_16: dict[str, int] = {
    "CONV_2D": 5,
    "TRANSPOSE_CONV": 3,
    "EXP": 1,
    "QUANTIZE": 2,
}
VERSION_HINTS = {
    ("CONV_2D", 6): "a grouped convolution (Conv2D groups > 1); use groups=1 or depthwise + 1x1 convs",
    ("TRANSPOSE_CONV", 4): "a transposed convolution with a fused bias/activation from a newer converter",
    ("EXP", 2): "an int8 EXP (e.g. from a custom activation)",
    ("QUANTIZE", 3): "an int16 quantize",
}

INTEGER_TYPES = {"UINT8", "INT8"}
PARAM_TYPES = {"INT32", "INT64"}  # bias, shape, axis and padding constants
BATCH_REDUCERS = {"MEAN", "REDUCE_MAX", "REDUCE_MIN", "SUM"}


class PreflightError(ValueError):
    """The file is not a readable TFLite model."""


@dataclass
class TensorInfo:
    index: int
    name: str
    dtype: str
    shape: list[int]
    shape_signature: list[int]
    constant: bool
    quantization: dict[str, Any] | None = None  # {"scale": [...], "zero_point": [...], "axis": n}


@dataclass
class OpReport:
    index: int
    op: str
    version: int
    custom: bool
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    supported: bool = True
    reasons: list[str] = field(default_factory=list)
    # tpu | cpu-cut | cpu-after-cut | cpu-tail (post-process) | cpu-edge (input quantize)
    # | fatal (the op that makes the compiler refuse the file) | not-compiled (the rest of such a file)
    placement: str = "tpu"

    @property
    def on_tpu(self) -> bool:
        return self.placement == "tpu"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["on_tpu"] = self.on_tpu
        return d


@dataclass
class PreflightReport:
    model: str
    ops: list[OpReport]
    first_cpu_op: OpReport | None
    first_cpu_reason: str | None
    tpu_share: float  # predicted share of ops mapped to the Edge TPU (all ops)
    ops_on_tpu: int
    ops_on_cpu: int
    compilable: bool  # False when compiler 16 will refuse the whole file
    fatal: str | None = None
    has_postprocess: bool = False
    share_before_postprocess: float | None = None  # detection: share of the ops before the tail
    already_compiled: bool = False
    subgraphs: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One or two lines a person can act on."""
        if not self.compilable:
            return f"Edge TPU Compiler {COMPILER_VERSION} will refuse this model: {self.fatal}"
        lines = []
        if self.has_postprocess and self.share_before_postprocess is not None:
            lines.append(f"ops before the post-process op on TPU: {self.share_before_postprocess:.0%}"
                         f" (the {POSTPROCESS_OP} op runs on the CPU, as expected)")
        lines.append(f"predicted on Edge TPU: {self.ops_on_tpu} of {len(self.ops)} ops "
                     f"({self.tpu_share:.0%})")
        if self.first_cpu_op is not None:
            lines.append(f"first op cut to the CPU: #{self.first_cpu_op.index} {self.first_cpu_op.op} — "
                         f"{self.first_cpu_reason}; everything after it runs on the CPU")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        first = None
        if self.first_cpu_op is not None:
            first = {"index": self.first_cpu_op.index, "op": self.first_cpu_op.op,
                     "version": self.first_cpu_op.version, "reason": self.first_cpu_reason}
        return {
            "model": self.model, "compilable": self.compilable, "fatal": self.fatal,
            "tpu_share": round(self.tpu_share, 4), "ops_on_tpu": self.ops_on_tpu,
            "ops_on_cpu": self.ops_on_cpu, "total_ops": len(self.ops),
            "first_cpu_op": first, "has_postprocess": self.has_postprocess,
            "share_before_postprocess": (None if self.share_before_postprocess is None
                                         else round(self.share_before_postprocess, 4)),
            "already_compiled": self.already_compiled, "subgraphs": self.subgraphs,
            "notes": list(self.notes), "summary": self.summary,
            "compiler_version_rules": COMPILER_VERSION,
            "ops": [_op_row(o) for o in self.ops],
        }


def _op_row(o: OpReport) -> dict[str, Any]:
    """A compact table row (the full tensor details stay in OpReport)."""
    def t(ts):
        return [{"dtype": x.dtype, "shape": x.shape, **({"quant": _short_q(x.quantization)}
                                                          if x.quantization else {})}
                for x in ts if not x.constant]
    return {"index": o.index, "op": o.op, "version": o.version, "placement": o.placement,
            "supported": o.supported, "reasons": o.reasons, "inputs": t(o.inputs), "outputs": t(o.outputs)}


def _short_q(q: dict[str, Any]) -> dict[str, Any]:
    s, z = q["scale"], q["zero_point"]
    if len(s) == 1:
        return {"scale": s[0], "zero_point": z[0] if z else 0}
    return {"per_channel": len(s), "axis": q.get("axis", 0)}


# -- reading -------------------------------------------------------------------
def _schema():
    try:
        import tflite  # the flatbuffer schema package
        from tflite.utils import BUILTIN_OPCODE2NAME
    except ImportError as exc:  # pragma: no cover - installed with the studio
        raise PreflightError("the 'tflite' schema package is needed to read models") from exc
    return tflite, BUILTIN_OPCODE2NAME


def _type_names(tflite) -> dict[int, str]:
    return {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor(model, sg, idx: int, tnames: dict[int, str]) -> TensorInfo:
    t = sg.Tensors(idx)
    shape = [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else []
    sig = [int(x) for x in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else list(shape)
    buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    constant = bool(buf is not None and (buf.DataLength() > 0 or _buf_offset(buf) > 0))
    quant = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        quant = {"scale": [float(x) for x in q.ScaleAsNumpy()],
                 "zero_point": [int(x) for x in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [],
                 "axis": int(q.QuantizedDimension())}
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor_{idx}"
    return TensorInfo(idx, name, tnames.get(t.Type(), str(t.Type())), shape, sig, constant, quant)


def _buf_offset(buf) -> int:
    try:
        return int(buf.Offset())
    except AttributeError:
        return 0


def _const_values(model, sg, idx: int):
    """Values of a constant int tensor (axes, paddings, strides), or None."""
    import numpy as np

    t = sg.Tensors(idx)
    buf = model.Buffers(t.Buffer())
    if buf is None or buf.DataLength() == 0:
        return None
    raw = buf.DataAsNumpy().tobytes()
    dt = {2: np.int32, 4: np.int64, 3: np.uint8, 9: np.int8}.get(t.Type())
    if dt is None:
        return None
    return np.frombuffer(raw, dtype=dt)


def _options(op, cls):
    tab = op.BuiltinOptions()
    if tab is None:
        return None
    o = cls()
    o.Init(tab.Bytes, tab.Pos)
    return o


# -- rules ---------------------------------------------------------------------
def _dims_problem(t: TensorInfo) -> str | None:
    if len(t.shape) > 3 and any(d != 1 for d in t.shape[:-3]):
        return (f"tensor '{t.name}' has shape {t.shape}: the Edge TPU allows at most 3 dimensions larger "
                f"than 1, and only the innermost 3")
    return None


def _check_op(rep: OpReport, op, model, sg, tflite) -> None:
    name = rep.op
    reasons = rep.reasons
    if rep.custom:
        if name == EDGETPU_OP:
            return
        reasons.append(f"custom op '{name}' is not an Edge TPU operation")
        return
    if name not in SUPPORTED_OPS:
        reasons.append(f"{name} is not an operation the Edge TPU supports")
    maxv = MAX_VERSION_COMPILER_16.get(name)
    if maxv is not None and rep.version > maxv:
        hint = VERSION_HINTS.get((name, rep.version), "written by a newer TensorFlow converter")
        reasons.append(f"{name} version {rep.version} is newer than Edge TPU Compiler {COMPILER_VERSION} "
                       f"can parse (max {maxv}): {hint}")
    for t in rep.inputs + rep.outputs:
        if t.constant:
            if t.dtype not in INTEGER_TYPES | PARAM_TYPES:
                reasons.append(f"constant '{t.name}' is {t.dtype}: the Edge TPU needs full-integer "
                               f"(int8/uint8) weights")
                break
            continue
        if t.dtype not in INTEGER_TYPES:
            reasons.append(f"tensor '{t.name}' is {t.dtype}: the Edge TPU runs only full-integer "
                           f"(uint8/int8) quantized tensors")
            break
    for t in rep.inputs + rep.outputs:
        if t.constant:
            continue
        p = _dims_problem(t)
        if p:
            reasons.append(p)
            break
    for t in rep.inputs + rep.outputs:
        if not t.constant and any(d < 0 for d in t.shape_signature[1:]):
            reasons.append(f"tensor '{t.name}' has a dynamic size {t.shape_signature}: "
                           f"tensor sizes must be constant")
            break
    if name in SUPPORTED_OPS:
        _restrictions(rep, op, model, sg, tflite)


def _act_none(op, cls) -> bool:
    o = _options(op, cls)
    return o is None or o.FusedActivationFunction() == 0


def _restrictions(rep: OpReport, op, model, sg, tflite) -> None:
    name, reasons = rep.op, rep.reasons
    ins = [i for i in range(op.InputsLength())]
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and not _act_none(op, tflite.Pool2DOptions):
        reasons.append(f"{name} with a fused activation function is not supported")
    if name == "CONCATENATION":
        if not _act_none(op, tflite.ConcatenationOptions):
            reasons.append("CONCATENATION with a fused activation function is not supported")
        consts = [t for t in rep.inputs if t.constant]
        if consts:
            vals = [_const_values(model, sg, t.index) for t in consts]
            zero = all(v is not None and not v.any() for v in vals)
            if len(rep.inputs) != 2 or not zero:
                reasons.append("CONCATENATION with a constant input needs exactly 2 inputs and an "
                               "all-zero constant")
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = _options(op, cls)
        if o is not None and o.DilationHFactor() != o.DilationWFactor():
            reasons.append(f"{name} dilation differs in x ({o.DilationWFactor()}) and y "
                           f"({o.DilationHFactor()})")
    if name == "FULLY_CONNECTED":
        o = _options(op, tflite.FullyConnectedOptions)
        if o is not None and o.WeightsFormat() != 0:
            reasons.append("FULLY_CONNECTED weights must use the default format")
        out = rep.outputs[0] if rep.outputs else None
        if out is not None and sum(1 for d in out.shape if d != 1) > 1:
            reasons.append(f"FULLY_CONNECTED output {out.shape} must be one-dimensional")
    if name == "SOFTMAX" and rep.inputs:
        t = rep.inputs[0]
        n = 1
        for d in t.shape:
            n *= d
        if sum(1 for d in t.shape if d != 1) > 1 or n > 16000:
            reasons.append(f"SOFTMAX input {t.shape} must be 1-D with at most 16,000 elements")
    if name in BATCH_REDUCERS | {"PACK", "SPLIT", "PAD"} and rep.inputs:
        data = rep.inputs[0] if name != "SPLIT" else (rep.inputs[1] if len(rep.inputs) > 1 else rep.inputs[0])
        rank = len(data.shape)
        batch = rank >= 1 and data.shape[0] >= 1
        axes = None
        if name in BATCH_REDUCERS and len(ins) > 1:
            axes = _const_values(model, sg, op.Inputs(1))
        elif name == "SPLIT":
            axes = _const_values(model, sg, op.Inputs(0))
        elif name == "PACK":
            o = _options(op, tflite.PackOptions)
            axes = [o.Axis()] if o is not None else None
        if axes is not None and batch and rank > 0:
            norm = {int(a) % rank for a in axes} if name != "PACK" else {int(a) for a in axes}
            if 0 in norm:
                reasons.append(f"{name} over the batch dimension is not supported")
            elif name == "MEAN" and norm == {rank - 1} and data.shape[-1] % 4:
                reasons.append(f"MEAN over the z dimension needs z a multiple of 4 (z={data.shape[-1]})")
        if name == "PAD" and len(ins) > 1:
            pads = _const_values(model, sg, op.Inputs(1))
            if pads is not None and len(pads) >= 2 and (pads[0] or pads[1]):
                reasons.append("PAD in the batch dimension is not supported")
    if name == "STRIDED_SLICE":
        o = _options(op, tflite.StridedSliceOptions)
        strides = _const_values(model, sg, op.Inputs(3)) if len(ins) > 3 else None
        if strides is not None and any(int(s) != 1 for s in strides):
            reasons.append(f"STRIDED_SLICE strides {list(map(int, strides))} must all be 1")
        if o is not None and (o.EllipsisMask() or o.NewAxisMask()):
            reasons.append("STRIDED_SLICE with an ellipsis or new-axis mask is not supported")
    if name == "PRELU" and len(rep.inputs) > 1:
        a = rep.inputs[1]
        if sum(1 for d in a.shape if d != 1) > 1:
            reasons.append(f"PRELU alpha {a.shape} must be 1-dimensional (Keras: shared_axes=[1, 2])")


# -- placement -----------------------------------------------------------------
def _place(ops: list[OpReport], graph_inputs: set[int], graph_outputs: set[int]) -> None:
    """Predict where each op runs: the first unsupported op and everything that depends on it go to
    the CPU; an int→float DEQUANTIZE that only feeds the graph outputs or the post-process op, the
    post-process op itself, and a float→int QUANTIZE of a graph input are edge ops that don't cut."""
    consumers: dict[int, list[OpReport]] = {}
    for o in ops:
        for t in o.inputs:
            consumers.setdefault(t.index, []).append(o)

    def feeds_only_tail(o: OpReport) -> bool:
        for t in o.outputs:
            users = consumers.get(t.index, [])
            if t.index not in graph_outputs and not users:
                return False
            if any(u.op != POSTPROCESS_OP for u in users):
                return False
        return True

    for o in ops:
        if o.op == POSTPROCESS_OP and all(t.index in graph_outputs for t in o.outputs):
            o.placement = "cpu-tail"
        elif o.op == "DEQUANTIZE" and feeds_only_tail(o):
            o.placement = "cpu-tail"
        elif (o.op == "QUANTIZE" and o.inputs and o.inputs[0].index in graph_inputs
              and o.inputs[0].dtype not in INTEGER_TYPES and not o.reasons[1:]):
            o.placement = "cpu-edge"
            o.reasons = []  # the input quantizer runs on the CPU without cutting the graph

    cpu_tensors: set[int] = set()
    for o in ops:
        if o.placement in ("cpu-tail", "cpu-edge"):
            continue
        if o.reasons:
            o.supported = False
        depends = any(t.index in cpu_tensors for t in o.inputs if not t.constant)
        if not o.supported:
            o.placement = "cpu-cut" if not depends else "cpu-after-cut"
        elif depends:
            o.placement = "cpu-after-cut"
        if o.placement != "tpu":
            cpu_tensors.update(t.index for t in o.outputs)


def preflight(tflite_path: str | Path) -> PreflightReport:
    """Read a .tflite and predict how Edge TPU Compiler 16 maps it (see the module docstring)."""
    tflite, opnames = _schema()
    path = Path(tflite_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PreflightError(f"cannot read {path}: {exc}") from exc
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise PreflightError(f"{path.name} is not a TFLite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        nsub = model.SubgraphsLength()
        sg = model.Subgraphs(0)
    except Exception as exc:  # noqa: BLE001 - a corrupt flatbuffer raises anything
        raise PreflightError(f"{path.name} could not be parsed: {exc}") from exc
    tnames = _type_names(tflite)
    ops: list[OpReport] = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = opnames.get(code, f"BUILTIN_{code}")
        custom = name == "CUSTOM"
        if custom:
            cc = oc.CustomCode()
            name = cc.decode("utf-8", "replace") if cc else "CUSTOM"
        ins = [_tensor(model, sg, int(j), tnames) for j in op.InputsAsNumpy() if j >= 0] \
            if op.InputsLength() else []
        outs = [_tensor(model, sg, int(j), tnames) for j in op.OutputsAsNumpy() if j >= 0] \
            if op.OutputsLength() else []
        rep = OpReport(i, name, int(oc.Version()), custom, ins, outs)
        _check_op(rep, op, model, sg, tflite)
        ops.append(rep)

    graph_in = {int(x) for x in sg.InputsAsNumpy()} if sg.InputsLength() else set()
    graph_out = {int(x) for x in sg.OutputsAsNumpy()} if sg.OutputsLength() else set()
    _place(ops, graph_in, graph_out)

    notes: list[str] = []
    fatal = None
    version_ops = [o for o in ops if any("can parse" in r for r in o.reasons)]
    if version_ops:
        v = version_ops[0]
        fatal = (f"#{v.index} {v.op} version {v.version} — the compiler stops with \"Didn't find op for "
                 f"builtin opcode '{v.op}' version '{v.version}'\" ({next(r for r in v.reasons if 'can parse' in r)})")
        for o in ops:
            o.placement = "fatal" if o is v else "not-compiled"
    if nsub > 1:
        notes.append(f"the model has {nsub} subgraphs (control flow): only the main one is checked; "
                     "the compiler reports 'More than one subgraph is not supported' for the others")
    already = any(o.op == EDGETPU_OP for o in ops)
    if already:
        notes.append("this model is already compiled for the Edge TPU (it contains edgetpu-custom-op)")

    on_tpu = sum(1 for o in ops if o.on_tpu)
    first = next((o for o in ops if o.placement in ("cpu-cut", "fatal")), None)
    reason = "; ".join(first.reasons) if first is not None else None
    tail = [o for o in ops if o.placement == "cpu-tail"]
    has_pp = any(o.op == POSTPROCESS_OP for o in ops)
    before = len(ops) - len(tail)
    share_pp = (on_tpu / before if before else 0.0) if has_pp else None
    if has_pp and tail:
        deq = sum(1 for o in tail if o.op == "DEQUANTIZE")
        if deq:
            notes.append(f"{deq} DEQUANTIZE op(s) feeding the post-process op run on the CPU with it")
    return PreflightReport(
        model=str(path), ops=ops, first_cpu_op=first, first_cpu_reason=reason,
        tpu_share=(on_tpu / len(ops)) if ops else 0.0, ops_on_tpu=on_tpu, ops_on_cpu=len(ops) - on_tpu,
        compilable=fatal is None, fatal=fatal, has_postprocess=has_pp, share_before_postprocess=share_pp,
        already_compiled=already, subgraphs=nsub, notes=notes,
    )
