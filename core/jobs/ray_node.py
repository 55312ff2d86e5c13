"""What a training job asks of a Ray cluster: a CPU or a GPU node, and the GPU build of TensorFlow there.

A job's params may say ``ray_node: "gpu"``; it is then submitted with ``entrypoint_num_gpus=1``
(Ray starts it only on a node with a free GPU and sets ``CUDA_VISIBLE_DEVICES`` for it) and its
runtime environment installs ``tensorflow[and-cuda]`` at this studio's TensorFlow version on that
node (Ray's ``pip`` runtime env: a virtualenv on top of the node's Python, cached per node).
``ray_node: "cpu"`` (the default) asks for no GPU and trains with ``device: "cpu"``.
"""

from __future__ import annotations

from typing import Any

NODES = ("cpu", "gpu")


def studio_tensorflow_version() -> str:
    """The TensorFlow version installed here (the GPU build on the cluster gets the same one)."""
    from importlib import metadata

    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    raise RuntimeError("TensorFlow is not installed in the studio's environment")


def gpu_packages() -> list[str]:
    """The pip requirement that brings TensorFlow's CUDA build to a GPU node."""
    return [f"tensorflow[and-cuda]=={studio_tensorflow_version()}"]


def node_of(params: dict) -> str:
    """``cpu`` or ``gpu`` from a job's params (a clear ValueError for anything else)."""
    node = str(params.get("ray_node") or "cpu").lower()
    if node not in NODES:
        raise ValueError(f"Unknown Ray node type {params.get('ray_node')!r}: use cpu or gpu.")
    return node


def submission(params: dict, runtime_env: dict[str, Any], packages: list[str] | None) -> tuple[dict, dict]:
    """``(extra submit_job kwargs, runtime_env)`` for a job with ``params``.

    ``packages``: what a GPU node installs (None: :func:`gpu_packages`; ``[]``: nothing, for
    clusters whose nodes already have the GPU build).
    """
    env = dict(runtime_env)
    if node_of(params) != "gpu":
        return {}, env
    pkgs = gpu_packages() if packages is None else list(packages)
    if pkgs:
        pip = env.get("pip")
        existing = list(pip.get("packages", [])) if isinstance(pip, dict) else list(pip or [])
        env["pip"] = {"packages": existing + [p for p in pkgs if p not in existing], "pip_check": False}
    return {"entrypoint_num_gpus": 1}, env


def job_params(params: dict) -> dict:
    """The params the cluster runs: a CPU node trains on its CPU, a GPU node on its GPU (unless the job
    already says which device)."""
    node = node_of(params)
    out = {**params, "ray_node": node}
    if params.get("device") in (None, "", "auto"):
        out["device"] = node
    return out
