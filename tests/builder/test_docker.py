"""Robot images on a real dockerd: build (offline), run, predict, save/load, push to a loopback registry."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from builder import docker as bd
from builder import registry as breg

pytestmark = pytest.mark.docker


def test_offline_build_has_labels_and_size(offline_build, base_image):
    res = offline_build["result"]
    assert res.image_id.startswith("sha256:")
    assert res.size_bytes > 100_000_000  # base + numpy + litert
    labels = res.labels
    assert labels["com.ohmnilabs.app.name"] == "studio_raccoons_classification"
    assert labels["org.opencontainers.image.base.name"] == base_image
    assert labels["org.edgetpu-studio.model.task"] == "classification"
    log = "\n".join(offline_build["log"])
    assert "Successfully built" in log or "Successfully tagged" in log
    print(f"\noffline build: {offline_build['seconds']:.1f} s, image {res.size_bytes / 1e6:.1f} MB")


def test_image_serves_and_agrees_with_in_app_predictor(offline_build, docker_client, tiny_artefact,
                                                       raccoon_jpeg):
    res = offline_build["result"]
    smoke = bd.smoke_test(res.tag, tiny_artefact, raccoon_jpeg, client=docker_client)
    assert smoke.ok, smoke.message + "\n" + "\n".join(smoke.container_log)
    assert smoke.device == "cpu"
    assert smoke.server["classes"] and smoke.server["classes"][0]["label"] == smoke.local["classes"][0]["label"]
    assert smoke.model["versions"]["python"].startswith("3.11")
    # one log line per request in the container's log
    assert any('"POST /v1/predict" 200' in line for line in smoke.container_log)
    # the container is gone
    assert not docker_client.containers.list(all=True, filters={"label": "org.edgetpu-studio.smoke-test=1"})


def test_container_errors_are_json(offline_build, docker_client):
    container, port = bd.run_server(offline_build["result"].tag, client=docker_client,
                                    env={"MAX_BODY_BYTES": "1000"})
    try:
        bd.wait_healthy(container, port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        assert bd.http_json("POST", base + "/v1/predict", b"nope", "image/png")[0] == 400
        assert bd.http_json("POST", base + "/v1/predict", b"x" * 5000, "image/png")[0] == 413
        assert bd.http_json("GET", base + "/missing")[0] == 404
    finally:
        bd.stop_container(container)


def test_save_load_round_trip(offline_build, docker_client, tmp_path):
    res = offline_build["result"]
    out = bd.save_image_gz(res.tag, tmp_path / "image.tar.gz", client=docker_client)
    assert out.stat().st_size > 30_000_000
    with open(out, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # gzip
    copy_tag = res.tag.replace("tiny-offline", "tiny-roundtrip")
    docker_client.images.get(res.tag).tag(copy_tag)
    docker_client.images.remove(copy_tag)
    loaded = bd.load_image_archive(out, client=docker_client)
    assert res.tag in loaded or res.image_id in loaded
    assert docker_client.images.get(res.tag).id == res.image_id


def test_push_needs_the_right_credentials(offline_build, docker_client, registry):
    res = offline_build["result"]
    reg, user, pw = registry["address"], registry["username"], registry["password"]
    with pytest.raises(breg.PushError, match="needs a username and password"):
        breg.push(res.tag, reg, None, None, client=docker_client)
    with pytest.raises(breg.PushError, match="refused the credentials of user 'robot'") as err:
        breg.push(res.tag, reg, user, "wrong-" + pw, client=docker_client)
    assert pw not in str(err.value)
    lines: list[str] = []
    pushed = breg.push(res.tag, reg, user, pw, client=docker_client, on_log=lines.append)
    assert pushed.digest.startswith("sha256:")
    assert pushed.repository == f"{reg}/studio-test/tiny-offline"
    # the registry holds that digest, and pulling it back gives the same digest
    assert breg.registry_digest(f"{pushed.repository}:{pushed.tag}", user, pw, client=docker_client) == pushed.digest
    docker_client.images.remove(f"{pushed.repository}:{pushed.tag}")
    info = breg.pull(f"{pushed.repository}:{pushed.tag}", user, pw, client=docker_client)
    assert f"{pushed.repository}@{pushed.digest}" in info["repo_digests"]
    assert info["id"] == res.image_id
    # the password is nowhere: push log, build context, build log, docker config
    assert not any(pw in line for line in lines)
    assert not any(pw in line for line in offline_build["log"])
    ctx = offline_build["context"].path
    for p in ctx.rglob("*"):
        if p.is_file() and p.stat().st_size < 5_000_000:
            assert pw.encode() not in p.read_bytes(), p
    cfg = Path.home() / ".docker" / "config.json"
    assert not cfg.exists() or pw not in cfg.read_text()
    docker_client.images.remove(f"{pushed.repository}:{pushed.tag}")


def _coral_repo_reachable(host: str, timeout: float = 3.0) -> str | None:
    """None when Coral's repository host resolves and answers TLS; otherwise the reason."""
    try:
        addr = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)[0][4]
    except OSError as exc:
        return f"{host} does not resolve ({exc})"
    try:
        with socket.create_connection(addr[:2], timeout=timeout) as s:
            with ssl.create_default_context().wrap_socket(s, server_hostname=host):
                return None
    except OSError as exc:
        return f"{host}:443 is not reachable ({exc})"


def test_coral_profile_builds_with_the_real_pinned_deb_where_it_can_be_downloaded(
        docker_client, base_image, tiny_artefact, raccoon_jpeg, tmp_path):
    """The real libedgetpu .deb by its pinned URL and sha256 (GitHub is unreachable on the studio's
    build machines: skipped there; tests/builder/test_coral_image.py builds with a dummy .deb)."""
    from builder import runtime_pins as rp
    from builder.context import BuildSpec, coral_repo_host, make_context

    tag = "studio-test/tiny-coral-real:1"
    reason = _coral_repo_reachable("github.com")
    if reason:
        pytest.skip(f"the pinned libedgetpu .deb cannot be downloaded from here: {reason}")
    ctx = make_context(BuildSpec(model_dir=tiny_artefact, tag=tag, profile="coral", base_image=base_image,
                                 coral_state_dir=str(tmp_path / "state")), tmp_path / "coral")
    assert coral_repo_host(ctx.dockerfile.read_text()) == "github.com"
    assert (ctx.path / "deb" / rp.LIBEDGETPU.filename).is_file()  # downloaded and matched the pin
    t0 = time.monotonic()
    res = bd.build_image(ctx, client=docker_client)
    print(f"\ncoral build: {time.monotonic() - t0:.1f} s, image {res.size_bytes / 1e6:.1f} MB")
    try:
        smoke = bd.smoke_test(tag, tiny_artefact, raccoon_jpeg, client=docker_client)
        assert smoke.ok, smoke.message
        assert smoke.model["edgetpu"]["libedgetpu"][0]["version"] == rp.LIBEDGETPU.version
    finally:
        docker_client.images.remove(tag, force=True)


def test_detection_image_boxes_match_in_app_predictor(offline_build, docker_client, wheelhouse, raccoon_jpeg,
                                                      tmp_path):
    """A detection model (tiny SSD-like head + fused post-process op) in the same runtime layers."""
    from tests.coral_runtime.models import tiny_detector, write_artefact

    from builder.context import BuildSpec, make_context

    art = write_artefact(tmp_path / "det-model", tiny_detector(tmp_path, num_classes=2, size=32),
                         task="detection", labels=["raccoon", "dog"], input_size=32, resize="letterbox")
    tag = offline_build["result"].tag.replace("tiny-offline", "tiny-detection")
    ctx = make_context(BuildSpec(model_dir=art, tag=tag, base_image=offline_build["context"].spec.base_image),
                       tmp_path / "ctx", wheelhouse=wheelhouse)
    res = bd.build_image(ctx, client=docker_client)
    try:
        assert res.labels["org.edgetpu-studio.model.task"] == "detection"
        smoke = bd.smoke_test(tag, art, raccoon_jpeg, client=docker_client)
        assert smoke.ok, smoke.message
        assert smoke.model["task"] == "detection"
        assert len(smoke.server["detections"]) == len(smoke.local["detections"])
    finally:
        docker_client.images.remove(tag, force=True)
