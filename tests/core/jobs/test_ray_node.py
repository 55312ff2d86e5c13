"""What a training asks of a Ray cluster (core.jobs.ray_node): the node type, num_gpus, the GPU build there."""

from __future__ import annotations

import pytest

from core.jobs import ray_node


def test_a_cpu_node_asks_for_nothing_and_trains_on_the_cpu():
    extra, env = ray_node.submission({"task": "detection"}, {"working_dir": "/w"}, None)
    assert extra == {} and env == {"working_dir": "/w"}
    assert ray_node.job_params({"task": "detection"}) == {"task": "detection", "ray_node": "cpu", "device": "cpu"}


def test_a_gpu_node_asks_for_one_gpu_and_installs_the_gpu_build_at_the_studios_version():
    import re
    from pathlib import Path

    pin = (Path(__file__).resolve().parents[3] / "requirements.txt").read_text()
    version = re.search(r"^tensorflow-cpu==(\S+)", pin, re.MULTILINE).group(1)  # the CPU pin
    extra, env = ray_node.submission({"ray_node": "gpu"}, {"working_dir": "/w", "pip": ["extra-pkg==1"]}, None)
    assert extra == {"entrypoint_num_gpus": 1}
    assert env["working_dir"] == "/w"
    assert env["pip"] == {"packages": ["extra-pkg==1", f"tensorflow[and-cuda]=={version}"], "pip_check": False}
    assert ray_node.job_params({"ray_node": "gpu"})["device"] == "gpu"
    assert ray_node.job_params({"ray_node": "gpu", "device": "cpu"})["device"] == "cpu"  # explicit wins


def test_nodes_that_already_have_the_gpu_build_install_nothing():
    extra, env = ray_node.submission({"ray_node": "gpu"}, {}, [])
    assert extra == {"entrypoint_num_gpus": 1} and "pip" not in env


def test_an_unknown_node_type_is_refused():
    with pytest.raises(ValueError, match="cpu or gpu"):
        ray_node.node_of({"ray_node": "tpu"})
