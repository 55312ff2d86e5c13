"""The Train page's device choice (CPU / GPU, mixed precision, the Ray node type) and how a job's device
is shown. Reads no TensorFlow: what the job really used is in its records (``core.training.device``)."""

from __future__ import annotations

from core.jobs import Job
from core.training import device

DEVICES = {
    "auto": "Automatic — a GPU when TensorFlow sees one, else the CPU",
    "cpu": "CPU",
    "gpu": "GPU (fails clearly when none is visible)",
}
RAY_NODES = {"cpu": "CPU node", "gpu": "GPU node"}


def machine_hint() -> str:
    """What this machine offers, in one line (cheap: the NVIDIA driver's list and the installed build)."""
    gpus = device.nvidia_gpu_names()
    build = device.installed_build()
    if not gpus:
        return "No NVIDIA GPU found on this machine: *Automatic* trains on the CPU."
    names = ", ".join(gpus)
    if build == "tensorflow-cpu":
        return (f"This machine has {names}, but the studio runs the CPU-only TensorFlow: start it with "
                "`make run GPU=1` to train on the GPU.")
    return f"GPU on this machine: {names}."


def last_choice(jobs: list[Job], project: str) -> dict:
    """The device settings of the project's newest training (``jobs`` newest first)."""
    for j in jobs:
        p = j.params or {}
        if j.kind == "train" and j.project == project:
            return {"device": p.get("device") if p.get("device") in DEVICES else "auto",
                    "mixed_precision": bool(p.get("mixed_precision")),
                    "ray_node": p.get("ray_node") if p.get("ray_node") in RAY_NODES else "cpu"}
    return {"device": "auto", "mixed_precision": False, "ray_node": "cpu"}


def job_params(choice: str, mixed_precision: bool, on_ray: bool, ray_node: str) -> dict:
    """The device part of a training job's params. On Ray the node type decides the device
    (``core.jobs.ray_node.job_params``) unless CPU or GPU was chosen explicitly."""
    params: dict = {"device": choice, "mixed_precision": bool(mixed_precision)}
    if on_ray:
        params["ray_node"] = ray_node
        if choice == "auto":
            params.pop("device")
    return params


def trained_on(events: list[dict]) -> str | None:
    """Where a job trains (or trained), in words, from its events; None before it has chosen."""
    rec = device.device_of(events)
    return device.describe(rec) if rec else None
