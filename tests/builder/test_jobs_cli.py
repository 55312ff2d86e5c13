"""The build-image job kind (through core.jobs) and `python -m cli build-image`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_job_without_engine_still_makes_the_context(store, tiny_artefact):
    from core.jobs import JobState, run_foreground

    from builder import jobs as bjobs

    job = run_foreground(store, "build-image", {"model_dir": str(tiny_artefact), "profile": "coral",
                                                "tag": "studio-test/noengine:1",
                                                "docker_url": "unix:///nonexistent/docker.sock"})
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.metrics.get("docker") == 0 and job.metrics.get("build_id") == job.id
    rec = bjobs.load_build(store.root, job.id)
    assert rec["status"] == "no-engine" and "scripts/start_dockerd.sh" in rec["message"]
    assert rec["artefact_id"] == "20261125-000000-tiny01" and job.artefact_id == rec["artefact_id"]
    z = bjobs.context_zip(store.root, job.id)
    with zipfile.ZipFile(z) as zf:
        assert "Dockerfile" in zf.namelist() and "app/server.py" in zf.namelist()
    assert [b["id"] for b in bjobs.list_builds(store.root)] == [job.id]
    with pytest.raises(ValueError, match="no image"):
        bjobs.image_archive(store.root, job.id)


def test_job_params_need_a_model(store):
    from core.jobs import JobState, run_foreground

    job = run_foreground(store, "build-image", {"profile": "offline"})
    assert job.state == JobState.FAILED and "artefact_id" in job.error


@pytest.mark.docker
def test_cli_builds_smoke_tests_and_pushes(offline_build, registry, tiny_artefact, raccoon_dir, tmp_path):
    """Same context as the session image, so docker's layer cache makes this build quick."""
    data = tmp_path / "data"
    sample = sorted((raccoon_dir / "images").glob("*.jpg"))[1]
    tag = offline_build["result"].tag.replace("tiny-offline", "tiny-cli")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUDIO_REGISTRY_PASSWORD": registry["password"]}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "build-image", "--data-dir", str(data), "--model", str(tiny_artefact),
         "--tag", tag, "--profile", "offline", "--base-image", offline_build["context"].spec.base_image,
         "--sample-image", str(sample), "--push", registry["address"], "--username", registry["username"]],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["tag"] == tag and summary["image_id"].startswith("sha256:")
    assert summary["smoke_test"]["ok"], summary["smoke_test"]
    assert summary["push"]["digest"].startswith("sha256:")
    assert "Step" in proc.stderr  # the build log was echoed
    pw = registry["password"]
    assert pw not in proc.stdout and pw not in proc.stderr
    for p in data.rglob("*"):
        if p.is_file() and p.stat().st_size < 20_000_000:
            assert pw.encode() not in p.read_bytes(), p
    import docker

    c = docker.from_env(version="auto")
    for ref in (tag, f"{summary['push']['repository']}:{summary['push']['tag']}"):
        try:
            c.images.remove(ref)
        except docker.errors.DockerException:
            pass
    c.close()


@pytest.mark.docker
def test_cli_push_with_a_wrong_password_says_so(offline_build, registry, tiny_artefact, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("STUDIO_REGISTRY_PASSWORD", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "build-image", "--data-dir", str(tmp_path / "data"), "--model",
         str(tiny_artefact), "--tag", offline_build["result"].tag.replace("tiny-offline", "tiny-wrongpw"),
         "--no-smoke-test", "--quiet",
         "--base-image", offline_build["context"].spec.base_image,
         "--push", registry["address"], "--username", registry["username"]],
        input="not-the-password\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not summary["ok"] and "refused the credentials" in summary["error"]
    assert "not-the-password" not in proc.stdout + proc.stderr


@pytest.mark.docker
def test_offline_build_without_the_base_image_says_how_to_make_it(docker_client, store, tiny_artefact):
    from core.jobs import JobState, run_foreground

    from builder import jobs as bjobs

    job = run_foreground(store, "build-image", {"model_dir": str(tiny_artefact), "profile": "offline",
                                                "tag": "studio-test/nobase:1",
                                                "base_image": "studio-test/no-such-base:0"})
    assert job.state == JobState.FAILED
    assert "scripts/make_base_image.sh studio-test/no-such-base:0" in job.error
    assert bjobs.load_build(store.root, job.id)["status"] == "no-base-image"
