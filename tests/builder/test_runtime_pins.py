"""The coral profile's pinned pair: where the libedgetpu .deb comes from, its sha256 checks, the
recorded hashes, the hashed wheelhouse and the rendered Dockerfile. The .deb is a DUMMY built in
the test with dpkg-deb (tests/builder/dummy_deb.py) — it checks the checksum steps only."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from builder import context as bc
from builder import runtime_pins as rp
from tests.builder.coral_fixtures import coral_wheelhouse, deb_folder  # noqa: F401


@contextlib.contextmanager
def serve(folder: Path):
    """A loopback HTTP server for ``folder`` (the download path with real urllib); stopped at the end."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_pins_are_the_documented_pair():
    assert rp.LIBEDGETPU.filename == "libedgetpu1-std_16.0tf2.19.1-1.bookworm_amd64.deb"
    assert rp.LIBEDGETPU.url.startswith("https://github.com/feranick/libedgetpu/releases/download/16.0TF2.19.1-1/")
    assert len(rp.LIBEDGETPU.sha256) == 64 and len(rp.RUNTIME_WHEEL.sha256) == 64
    assert rp.RUNTIME_WHEEL.requirement == "ai-edge-litert==1.2.0"
    assert rp.LIBEDGETPU.tf.startswith(rp.RUNTIME_WHEEL.tf)  # one TensorFlow line for both halves
    doc = (bc.source_root() / "docs" / "CORAL_RUNTIME.md").read_text()
    for fact in (rp.LIBEDGETPU.version, rp.LIBEDGETPU.sha256, rp.RUNTIME_WHEEL.sha256, "qemu"):
        assert fact in doc


def test_a_deb_from_a_folder_is_hashed_recorded_and_then_enforced(deb_folder, tmp_path):
    state = tmp_path / "state"
    logs: list[str] = []
    first = rp.resolve_deb(state, folder=deb_folder, log=logs.append)
    assert first.source == "folder" and first.recorded_now
    assert first.sha256 == rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)
    assert first.sha256 in logs[0] and "recorded now" in logs[0]
    rec = rp.recorded_hashes(state)[rp.LIBEDGETPU.filename]
    assert rec["sha256"] == first.sha256 and "supplied" in rec["source"]
    again = rp.resolve_deb(state, folder=deb_folder)
    assert again.sha256 == first.sha256 and not again.recorded_now
    changed = tmp_path / "changed"
    changed.mkdir()
    data = bytearray((deb_folder / rp.LIBEDGETPU.filename).read_bytes())
    data[-1] ^= 0xFF
    (changed / rp.LIBEDGETPU.filename).write_bytes(bytes(data))
    with pytest.raises(rp.ChecksumMismatch, match="Checksum mismatch .* expected sha256 " + first.sha256) as err:
        rp.resolve_deb(state, folder=changed)
    assert "The build stopped; nothing was installed" in str(err.value)


def test_download_must_match_the_pin_or_a_confirmed_hash(deb_folder, tmp_path):
    good = rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)
    with serve(deb_folder) as base:
        url = f"{base}/{rp.LIBEDGETPU.filename}"
        pin = dataclasses.replace(rp.LIBEDGETPU, url=url, sha256=good)
        ok = rp.resolve_deb(tmp_path / "a", pin=pin)
        assert ok.source == "download" and ok.sha256 == good
        assert rp.resolve_deb(tmp_path / "a", pin=pin).source == "cache"
        wrong = dataclasses.replace(rp.LIBEDGETPU, url=url, sha256="0" * 64)
        state = tmp_path / "b"
        with pytest.raises(rp.ChecksumMismatch) as err:
            rp.resolve_deb(state, pin=wrong)
        assert err.value.expected == "0" * 64 and err.value.got == good
        assert "confirm its hash on the Deploy page" in str(err.value)
        assert not (state / "cache" / rp.LIBEDGETPU.filename).exists()  # never kept as if it were good
        with pytest.raises(ValueError, match="no downloaded file with that hash"):
            rp.confirm_download(state, "1" * 64, pin=wrong)
        rp.confirm_download(state, good, pin=wrong)
        after = rp.resolve_deb(state, pin=wrong)  # the confirmed hash is enforced from now on
        assert after.source == "cache" and after.sha256 == good


def test_offline_without_a_deb_says_what_to_do(tmp_path):
    with pytest.raises(rp.DebNotFound, match="this build is offline"):
        rp.resolve_deb(tmp_path, allow_download=False)
    with pytest.raises(rp.DebNotFound, match="no libedgetpu1-std/-max amd64 .deb"):
        rp.resolve_deb(tmp_path, folder=tmp_path)


def test_uploads_are_named_hashed_and_never_silently_replaced(deb_folder, tmp_path):
    data = (deb_folder / rp.LIBEDGETPU.filename).read_bytes()
    with pytest.raises(ValueError, match="not a libedgetpu .deb"):
        rp.save_upload(tmp_path, "evil/../../x.sh", data)
    up = rp.save_upload(tmp_path, rp.LIBEDGETPU.filename, data)
    assert up.source == "upload" and up.recorded_now and up.path.read_bytes() == data
    assert not rp.save_upload(tmp_path, rp.LIBEDGETPU.filename, data).recorded_now
    with pytest.raises(rp.ChecksumMismatch, match="A different file under this name"):
        rp.save_upload(tmp_path, rp.LIBEDGETPU.filename, data + b"x")
    assert up.path.read_bytes() == data  # the recorded file is kept


def test_coral_context_pins_url_sha256_and_hashed_wheels(tiny_artefact, deb_folder, coral_wheelhouse, tmp_path):
    spec = bc.BuildSpec(model_dir=tiny_artefact, tag="studio-test/coral-ctx:1", profile="coral",
                        base_image="studio/bookworm-python:latest", libedgetpu_folder=str(deb_folder),
                        coral_state_dir=str(tmp_path / "state"))
    ctx = bc.make_context(spec, tmp_path / "ctx", wheelhouse=coral_wheelhouse)
    text = ctx.dockerfile.read_text()
    deb_sha = rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)
    assert f"ARG LIBEDGETPU_URL={rp.LIBEDGETPU.url}" in text
    assert f"ARG LIBEDGETPU_SHA256={deb_sha}" in text  # the recorded hash of the file the user brought
    assert f"ARG LIBEDGETPU_DEB={rp.LIBEDGETPU.filename}" in text
    assert rp.RUNTIME_WHEEL.sha256 in text and "--require-hashes" in text
    assert (ctx.path / "deb" / rp.LIBEDGETPU.filename).read_bytes() == (deb_folder / rp.LIBEDGETPU.filename).read_bytes()
    reqs = (ctx.path / "wheelhouse" / "requirements.txt").read_text()
    assert f"ai-edge-litert==1.2.0 --hash=sha256:{rp.RUNTIME_WHEEL.sha256}" in reqs
    assert all("--hash=sha256:" in ln for ln in reqs.splitlines() if ln and not ln.startswith("#"))
    assert "numpy==" in reqs and "pillow==" in reqs
    readme = (ctx.path / "README.md").read_text()
    assert "--privileged --network host -v /dev:/dev -e PORT=8080" in readme and "--restart unless-stopped" in readme
    assert "curl -s http://ROBOT:8080/healthz" in readme
    assert bc.coral_repo_host(text) == "github.com"


def test_a_tampered_runtime_wheel_stops_the_context(tiny_artefact, deb_folder, coral_wheelhouse, tmp_path):
    wh = tmp_path / "wh"
    shutil.copytree(coral_wheelhouse, wh)
    with open(wh / rp.RUNTIME_WHEEL.filename, "ab") as fh:
        fh.write(b"\0")
    spec = bc.BuildSpec(model_dir=tiny_artefact, tag="studio-test/coral-ctx:2", profile="coral",
                        libedgetpu_folder=str(deb_folder), coral_state_dir=str(tmp_path / "state"))
    with pytest.raises(rp.ChecksumMismatch, match="ai-edge-litert wheel"):
        bc.make_context(spec, tmp_path / "ctx", wheelhouse=wh)


def test_without_any_deb_the_dockerfile_downloads_and_checks_the_pin(tiny_artefact, coral_wheelhouse, tmp_path):
    logs: list[str] = []
    spec = bc.BuildSpec(model_dir=tiny_artefact, tag="studio-test/coral-ctx:3", profile="coral",
                        coral_state_dir=str(tmp_path / "state"), allow_download=False)
    ctx = bc.make_context(spec, tmp_path / "ctx", wheelhouse=coral_wheelhouse, log=logs.append)
    assert f"ARG LIBEDGETPU_SHA256={rp.LIBEDGETPU.sha256}" in ctx.dockerfile.read_text()
    assert not list((ctx.path / "deb").glob("*.deb"))
    assert any("WARNING" in ln and "download" in ln for ln in logs)


def test_models_page_note_names_compiler_and_runtime():
    note = rp.compiler_and_runtime_note({"compiler": {"ok": True, "version": "16.0.384591198"}})
    assert "Edge TPU Compiler 16.0.384591198" in note and "libedgetpu1-std 16.0tf2.19.1-1" in note
    assert "ai-edge-litert 1.2.0" in note
    assert "needs Edge TPU Compiler 16.0" in rp.compiler_and_runtime_note({"preflight": {"compilable": True}})
    assert "No Edge TPU Compiler version" in rp.compiler_and_runtime_note({"preflight": {"compilable": False}})


def test_cli_build_image_takes_a_deb_folder_offline(tiny_artefact, deb_folder, coral_wheelhouse, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", "STUDIO_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "cli", "build-image", "--model", str(tiny_artefact),
                           "--profile", "coral", "--libedgetpu-folder", str(deb_folder), "--offline",
                           "--no-smoke-test", "--quiet"], cwd=bc.source_root(), env=env, capture_output=True,
                          text=True, timeout=600)
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0 and summary["status"] == "no-engine", proc.stderr[-2000:]
    text = (Path(summary["context_dir"]) / "Dockerfile").read_text()
    assert f"ARG LIBEDGETPU_SHA256={rp.sha256_file(deb_folder / rp.LIBEDGETPU.filename)}" in text
    assert "--privileged --network host -v /dev:/dev -e PORT=8080" in summary["run_command"]
