"""The coral profile's image, built with a real dockerd and NO network, from a DUMMY libedgetpu
.deb built in the test (tests/builder/dummy_deb.py: it checks the checksum and install steps only,
it is not libedgetpu); and the no-AVX proof: the images' own Python + runtime run our int8
classifier and detector under ``qemu-x86_64 -cpu Westmere`` (SSE4.2, no AVX) and answer exactly as
the native run does. Run these under ``flock /work/docker.lock``."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

import pytest

from builder import context as bc
from builder import docker as bd
from builder import runtime_pins as rp
from tests.builder import qemu_bundle
from tests.builder.coral_fixtures import coral_wheelhouse, deb_folder  # noqa: F401
from tests.coral_runtime import fake_libedgetpu as fake

pytestmark = pytest.mark.docker

CHECK = r'''
import json, sys
sys.path.insert(0, "/app")
from importlib import metadata
from coral_runtime.predictor import Predictor
photo = open("/check/photo.jpg", "rb").read()
out = {"runtime": metadata.version("ai-edge-litert")}
for name in ("cls", "det"):
    p = Predictor("/check/" + name, device="cpu")
    pred = p.predict_bytes(photo, threshold=0.0).to_dict()
    for k in ("latency_ms", "invoke_ms"):
        pred.pop(k)
    out[name] = pred
print("RESULT " + json.dumps(out, sort_keys=True))
'''


@pytest.fixture(scope="module")
def coral_image(docker_client, base_image, tiny_artefact, deb_folder, coral_wheelhouse, tmp_path_factory):
    """The coral image of the tiny classifier, built offline (network none); removed at the end."""
    tag = f"studio-test/tiny-coral:{secrets.token_hex(3)}"
    lines: list[str] = []
    spec = bc.BuildSpec(model_dir=tiny_artefact, tag=tag, profile="coral", base_image=base_image,
                        libedgetpu_folder=str(deb_folder), allow_download=False,
                        coral_state_dir=str(tmp_path_factory.mktemp("coral-state")))
    ctx = bc.make_context(spec, tmp_path_factory.mktemp("coral-ctx") / "context", log=lines.append,
                          wheelhouse=coral_wheelhouse)
    t0 = time.monotonic()
    result = bd.build_image(ctx, on_log=lines.append, client=docker_client, network_mode="none")
    print(f"\ncoral image (offline, dummy deb): {time.monotonic() - t0:.1f} s, {result.size_bytes / 1e6:.1f} MB")
    yield {"context": ctx, "result": result, "log": lines}
    docker_client.images.remove(tag, force=True)


def _run(client, image: str, command: list[str], volumes: dict | None = None, env: dict | None = None,
         timeout: float = 900) -> tuple[int, str]:
    c = client.containers.run(image, command=command, detach=True, network_mode="none", volumes=volumes or {},
                              environment=env or {}, labels={"org.edgetpu-studio.smoke-test": "1"})
    try:
        rc = c.wait(timeout=timeout)["StatusCode"]
        return rc, c.logs().decode("utf-8", "replace")
    finally:
        c.remove(force=True)


def test_offline_coral_build_installs_the_checked_deb(coral_image, docker_client):
    log = "\n".join(coral_image["log"])
    deb_sha = coral_image["context"].dockerfile.read_text().split("ARG LIBEDGETPU_SHA256=")[1].split()[0]
    assert f"libedgetpu: {rp.LIBEDGETPU.filename} sha256 {deb_sha} (as pinned)" in log
    assert "ai-edge-litert==1.2.0" in (coral_image["context"].path / "wheelhouse" / "requirements.txt").read_text()
    rc, out = _run(docker_client, coral_image["result"].tag, ["python3", "-c", (
        "import sys, json; sys.path.insert(0, '/app'); from coral_runtime import versions; "
        "print('INFO ' + json.dumps(versions.describe()))")])
    assert rc == 0, out
    info = json.loads(out.split("INFO ", 1)[1].splitlines()[0])
    assert info["runtime"] == {"name": "ai-edge-litert", "version": "1.2.0", "tf": "2.19"}
    assert info["libedgetpu"] == [{"package": "libedgetpu1-std", "version": "16.0tf2.19.1-1", "tf": "2.19.1"}]
    assert info["problem"] is None and info["warning"] is None


def test_coral_image_reports_runtime_versions_and_falls_back_on_healthz(coral_image, docker_client, tiny_artefact,
                                                                       tmp_path):
    """DEVICE=usb with a '*_edgetpu.tflite': the image's probe opens its libedgetpu (the dummy, which
    reports a version string and makes no delegate) in a child process; /healthz says so."""
    model = tmp_path / "model"
    shutil.copytree(tiny_artefact, model)
    shutil.copy(model / "model_int8.tflite", model / "model_int8_edgetpu.tflite")
    m = json.loads((model / "manifest.json").read_text())
    m["files"]["edgetpu"] = "model_int8_edgetpu.tflite"
    (model / "manifest.json").write_text(json.dumps(m))
    port = bd.free_port()
    c = docker_client.containers.run(coral_image["result"].tag, detach=True, network_mode="host",
                                     volumes={str(model): {"bind": "/model", "mode": "ro"}},
                                     environment={"PORT": str(port), "BIND_ADDRESS": "127.0.0.1",
                                                  "MODEL_DIR": "/model", "DEVICE": "usb"},
                                     labels={"org.edgetpu-studio.smoke-test": "1"})
    try:
        bd.wait_healthy(c, port, timeout=120)
        status, health = bd.http_json("GET", f"http://127.0.0.1:{port}/healthz")
    finally:
        bd.stop_container(c)
    assert status == 200 and health["ok"] and health["device"] == "cpu"
    tpu = health["edgetpu"]
    assert tpu["runtime"]["version"] == "1.2.0" and tpu["libedgetpu"][0]["version"] == "16.0tf2.19.1-1"
    assert tpu["edgetpu_version"] == fake.DUMMY_VERSION  # read by the probe from the installed library
    assert tpu["probe"]["attempts"] == 2 and not tpu["probe"]["crashed"]  # failed, retried once
    assert "Failed to load delegate" in health["fallback_reason"] and "CPU used" in health["fallback_reason"]
    assert "ai-edge-litert 1.2.0" in tpu["summary"] and "libedgetpu1-std 16.0tf2.19.1-1" in tpu["summary"]


def test_a_tampered_deb_stops_the_docker_build(docker_client, base_image, tiny_artefact, deb_folder,
                                               coral_wheelhouse, tmp_path):
    spec = bc.BuildSpec(model_dir=tiny_artefact, tag=f"studio-test/tampered:{secrets.token_hex(3)}",
                        profile="coral", base_image=base_image, libedgetpu_folder=str(deb_folder),
                        coral_state_dir=str(tmp_path / "state"))
    ctx = bc.make_context(spec, tmp_path / "ctx", wheelhouse=coral_wheelhouse)
    deb = ctx.path / "deb" / rp.LIBEDGETPU.filename
    deb.write_bytes(deb.read_bytes() + b"tampered")
    with pytest.raises(bd.BuildError) as err:
        bd.build_image(ctx, client=docker_client, network_mode="none")
    tail = "\n".join(err.value.log_tail)
    assert f"ERROR: checksum mismatch for {rp.LIBEDGETPU.filename}" in tail and "Nothing was installed" in tail


@pytest.fixture(scope="module")
def check_dir(tmp_path_factory, tiny_artefact, raccoon_jpeg) -> Path:
    """/check in the containers: the int8 classifier and detector, a photo, the script, qemu."""
    from tests.coral_runtime.models import tiny_detector, write_artefact

    if not qemu_bundle.available():
        pytest.skip("qemu-user is not installed (apt-get install qemu-user)")
    d = tmp_path_factory.mktemp("check")
    shutil.copytree(tiny_artefact, d / "cls")
    write_artefact(d / "det", tiny_detector(d, num_classes=2, size=32), task="detection",
                   labels=["raccoon", "dog"], input_size=32, resize="letterbox")
    (d / "photo.jpg").write_bytes(raccoon_jpeg)
    (d / "check.py").write_text(CHECK, encoding="utf-8")
    qemu_bundle.bundle(d / "qemu")
    qemu_bundle.avx_program(d)
    return d


def _result(rc: int, out: str) -> dict:
    assert rc == 0, out[-3000:]
    return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["offline", "coral"])
def test_image_runtime_needs_no_avx(which, offline_build, coral_image, check_dir, docker_client):
    image = (offline_build if which == "offline" else coral_image)["result"].tag
    vols = {str(check_dir): {"bind": "/check", "mode": "ro"}, str(check_dir / "qemu"): {"bind": "/qemu", "mode": "ro"}}
    # the negative control: qemu's Westmere really refuses AVX (SIGILL), its "max" CPU runs it
    # (under sh: PID 1 of a container ignores the signal qemu re-raises on itself)
    sh = ["/bin/sh", "-c", " ".join(qemu_bundle.command("/check/avx")) + "; echo EXIT=$?"]
    rc, out = _run(docker_client, image, sh, vols)
    assert "EXIT=132" in out, f"an AVX instruction ran on the no-AVX CPU model: {out}"  # 128 + SIGILL
    rc, out = _run(docker_client, image, qemu_bundle.command("/check/avx", cpu="max"), vols)
    assert rc == 0 and out.strip().endswith("16"), out
    t0 = time.monotonic()
    native = _result(*_run(docker_client, image, ["python3", "/check/check.py"], vols))
    t1 = time.monotonic()
    emulated = _result(*_run(docker_client, image, qemu_bundle.command("/usr/bin/python3", "/check/check.py"), vols))
    t2 = time.monotonic()
    print(f"\n{which}: ai-edge-litert {native['runtime']}: native {t1 - t0:.1f} s, qemu -cpu Westmere {t2 - t1:.1f} s")
    assert native["runtime"] == ("1.2.0" if which == "coral" else bc.runtime_requirements()[0].split("==")[1])
    assert native["cls"]["classes"] and native["det"]["detections"]
    assert emulated == native  # the same classes, scores and boxes, to the last digit
