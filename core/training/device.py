"""Which device trains a job: the choice (``auto`` | ``cpu`` | ``gpu``), its record, mixed precision, OOM.

``select(requested)`` asks TensorFlow which GPUs it sees and returns a :class:`DeviceChoice`
(``auto`` takes the first GPU when there is one, else the CPU; ``gpu`` without a visible GPU
raises :class:`NoGpuError` saying why, e.g. that this venv has the CPU-only TensorFlow build).
``placed(choice)`` runs the training on that device (``tf.device``) and, for a GPU with mixed
precision on, under Keras' ``mixed_float16`` policy (float16 compute, float32 variables).
The int8 export never sees a mixed-precision model: ``float32_twin`` rebuilds it in float32 with
the same weights, so the exported TFLite model has the same structure either way.

The record (``DeviceChoice.to_dict()``) names the CPU model (``/proc/cpuinfo``) or the GPU's name
from TensorFlow's device details; it goes into the job's events (``{"type": "device", ...}``) and
the model's manifest (``device``). ``python -m core.training.device`` prints what TensorFlow sees.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

REQUESTS = ("auto", "cpu", "gpu")
MIXED_POLICY = "mixed_float16"
EVENT_TYPE = "device"


class NoGpuError(ValueError):
    """A GPU was asked for and TensorFlow sees none."""


class GpuOutOfMemory(RuntimeError):
    """Training ran out of GPU memory (the message names the batch size to lower)."""


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as TensorFlow lists it."""

    index: int
    name: str  # e.g. "NVIDIA GeForce RTX 3090" (TensorFlow's device details), else the device id
    physical: str  # "/physical_device:GPU:0"
    compute_capability: tuple[int, int] | None = None


@dataclass(frozen=True)
class DeviceChoice:
    """The device a job trains on, and how it was chosen."""

    kind: str  # "cpu" | "gpu"
    name: str  # the CPU model or the GPU's name
    tf_device: str  # "/CPU:0" | "/GPU:<i>" (for tf.device)
    requested: str  # "auto" | "cpu" | "gpu"
    host: str = field(default_factory=socket.gethostname)
    mixed_precision: bool = False
    gpus_visible: int = 0
    note: str = ""  # e.g. why mixed precision was not used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        """One line for logs and pages: "NVIDIA … (GPU, mixed precision) on host"."""
        return describe(self.to_dict())


def normalise_request(value: str | None) -> str:
    """``auto`` for None/empty, else the lower-cased value; a clear ValueError for anything else."""
    v = (value or "auto").strip().lower()
    if v not in REQUESTS:
        raise ValueError(f"Unknown device {value!r}: use one of {', '.join(REQUESTS)}.")
    return v


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def installed_build() -> str | None:
    """Which TensorFlow distribution is installed (``tensorflow-cpu`` or ``tensorflow``), without importing it."""
    from importlib import metadata

    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return None


def nvidia_gpu_names(root: str = "/proc/driver/nvidia/gpus") -> list[str]:
    """The NVIDIA GPUs the kernel driver lists (cheap: no TensorFlow import; for pages)."""
    names = []
    for info in sorted(Path(root).glob("*/information")):
        try:
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    return names


def tensorflow_build() -> dict[str, Any]:
    """The installed TensorFlow: version, distribution (tensorflow-cpu or tensorflow) and CUDA support."""
    import tensorflow as tf

    return {"version": tf.__version__, "distribution": installed_build(),
            "cuda": bool(tf.test.is_built_with_cuda())}


def visible_gpus() -> list[GpuInfo]:
    """The GPUs TensorFlow sees, with their names from TensorFlow's device details."""
    import tensorflow as tf

    out = []
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            details = tf.config.experimental.get_device_details(dev) or {}
        except Exception:  # noqa: BLE001 - details are optional (some builds/drivers give none)
            details = {}
        cc = details.get("compute_capability")
        out.append(GpuInfo(i, str(details.get("device_name") or dev.name), dev.name,
                           tuple(cc) if cc else None))
    return out


def no_gpu_message(build: dict[str, Any] | None = None) -> str:
    """Why no GPU is visible, in words, with the way on."""
    base = "A GPU was requested (--device gpu), but no GPU is visible to TensorFlow on this machine"
    if build and (build.get("distribution") == "tensorflow-cpu" or build.get("cuda") is False):
        return (f"{base}: this environment has the CPU-only TensorFlow build ({build.get('distribution')} "
                f"{build.get('version')}). Install the GPU build with `make venv GPU=1` on a machine with an "
                "NVIDIA GPU, or train with --device auto or cpu.")
    return (f"{base} (no NVIDIA driver or CUDA device found; check `nvidia-smi` and CUDA_VISIBLE_DEVICES). "
            "Train with --device auto or cpu.")


def choose(requested: str | None, gpus: list[GpuInfo], *, mixed_precision: bool = False,
           build: dict[str, Any] | None = None, cpu_name: str | None = None) -> DeviceChoice:
    """The device for ``requested`` given the visible ``gpus`` (pure: no TensorFlow calls).

    ``auto``: the first GPU if any, else the CPU. ``gpu``: the first GPU, or NoGpuError.
    ``mixed_precision`` applies on a GPU only; on the CPU it is dropped and ``note`` says so.
    """
    req = normalise_request(requested)
    if req == "gpu" and not gpus:
        raise NoGpuError(no_gpu_message(build))
    if req != "cpu" and gpus:
        g = gpus[0]
        return DeviceChoice("gpu", g.name, f"/GPU:{g.index}", req, mixed_precision=bool(mixed_precision),
                            gpus_visible=len(gpus))
    note = "mixed precision is for GPUs: this run trains in float32 on the CPU" if mixed_precision else ""
    return DeviceChoice("cpu", cpu_name or cpu_model(), "/CPU:0", req, gpus_visible=len(gpus), note=note)


def select(requested: str | None, mixed_precision: bool = False) -> DeviceChoice:
    """``choose`` with the GPUs TensorFlow sees here."""
    gpus = visible_gpus()
    build = tensorflow_build() if not gpus else None
    return choose(requested, gpus, mixed_precision=mixed_precision, build=build)


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` inside, restored after."""
    import keras

    before = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(before)


@contextmanager
def placed(choice: DeviceChoice) -> Iterator[None]:
    """Run the body on ``choice``'s device (and under mixed precision when the choice says so)."""
    import tensorflow as tf

    with tf.device(choice.tf_device):
        if choice.kind == "gpu" and choice.mixed_precision:
            with precision_policy(MIXED_POLICY):
                yield
        else:
            yield


# -- out of memory ------------------------------------------------------------------------------
def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is TensorFlow running out of device memory."""
    seen = 0
    while exc is not None and seen < 5:
        if type(exc).__name__ == "ResourceExhaustedError":
            return True
        text = str(exc)
        if "OOM when allocating" in text or "out of memory" in text.lower():
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def oom_message(choice: DeviceChoice, batch_size: int) -> str:
    """The message for a training that ran out of (GPU) memory at ``batch_size``."""
    where = f"the GPU ({choice.name})" if choice.kind == "gpu" else "memory"
    smaller = max(1, int(batch_size) // 2)
    return (f"Training ran out of {where} memory with batch size {int(batch_size)}. Train again with a smaller "
            f"batch size (e.g. {smaller}), a smaller image size or model width"
            + (", or with mixed precision on" if choice.kind == "gpu" and not choice.mixed_precision else "")
            + ".")


# -- the export path: always float32 ------------------------------------------------------------
def _is_mixed(policy: Any) -> bool:
    name = getattr(policy, "name", policy)
    return isinstance(name, str) and name.startswith("mixed")


def uses_mixed_precision(model: Any) -> bool:
    """Whether any layer of ``model`` (nested models included) computes under a mixed policy."""
    stack = [model]
    while stack:
        m = stack.pop()
        if _is_mixed(getattr(m, "dtype_policy", None)):
            return True
        stack.extend(getattr(m, "layers", []) or [])
    return False


def _float32_config(obj: Any) -> Any:
    if isinstance(obj, dict):
        if obj.get("class_name") == "DTypePolicy" and _is_mixed((obj.get("config") or {}).get("name")):
            return "float32"
        return {k: _float32_config(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    if isinstance(obj, str) and _is_mixed(obj):
        return "float32"
    return obj


def float32_twin(model: Any) -> Any:
    """``model`` itself when it is float32; else the same architecture built in float32 with its
    weights (mixed precision keeps float32 variables, so they carry over exactly)."""
    if not uses_mixed_precision(model):
        return model
    config = _float32_config(model.get_config())
    with precision_policy("float32"):
        twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


# -- records ----------------------------------------------------------------------------------
def record(ctx: Any, choice: DeviceChoice) -> None:
    """Write the choice into the job's events (``ctx.event``) and log it."""
    emit: Callable[[dict], None] | None = getattr(ctx, "event", None)
    if emit is not None:
        emit({"type": EVENT_TYPE, **choice.to_dict()})
    ctx.log(f"training on {choice.label()} (device requested: {choice.requested})"
            + (f"; {choice.note}" if choice.note else ""))


def device_of(events: Iterable[dict]) -> dict | None:
    """The device record among a job's events (the last one wins), merged with a Ray node event."""
    found: dict | None = None
    node: dict = {}
    for ev in events:
        if ev.get("type") == EVENT_TYPE:
            found = {k: v for k, v in ev.items() if k not in ("type", "seq", "time")}
        elif ev.get("type") == "ray-node" and ev.get("node_ip"):
            node = {"node": ev["node_ip"], "node_id": ev.get("node_id")}
    if found is None:
        return None
    return {**found, **node}


def describe(rec: dict | None) -> str:
    """A device record in words: "NVIDIA A100 (GPU, mixed precision) on host · Ray node 10.0.0.5"."""
    if not rec:
        return "unknown (recorded before devices were)"
    kind = str(rec.get("kind", "?")).upper()
    extra = ", mixed precision" if rec.get("mixed_precision") else ""
    text = f"{rec.get('name') or kind} ({kind}{extra})"
    if rec.get("host"):
        text += f" on {rec['host']}"
    if rec.get("node"):
        text += f" · Ray node {rec['node']}"
    return text


def report() -> dict[str, Any]:
    """What TensorFlow sees here and what ``auto`` would pick (for ``make devices``)."""
    gpus = visible_gpus()
    return {"tensorflow": tensorflow_build(), "cpu": cpu_model(),
            "gpus": [asdict(g) for g in gpus], "auto": choose("auto", gpus).to_dict()}


if __name__ == "__main__":
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    info = report()
    print(json.dumps(info, indent=2))
    print(f"--device auto trains on: {describe(info['auto'])}", file=sys.stderr)
