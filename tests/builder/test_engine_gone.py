"""The Docker engine disappears in the middle of a build and of a push (this test's own dockerd,
killed by its PID): the builder says so in plain words, and the next try works once it is back.

The test starts a dockerd of its own (own socket, data and exec roots under /tmp), so it never
touches an engine someone else runs; it builds ``FROM scratch`` (no base image, no container) a
layer big enough that the kill lands mid-way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from builder.docker import BuildError, build_image
from builder.registry import PushError, push

pytestmark = pytest.mark.docker

LAYER_MB = 300


class OwnDockerd:
    """A dockerd this test started; ``kill()`` SIGKILLs it, ``start()`` brings it back."""

    def __init__(self, root: Path):
        self.root = root
        self.sock = root / "docker.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self, timeout: float = 90.0) -> None:
        import docker

        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--data-root", str(self.root / "data"), "--exec-root",
             str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"), "--bridge=none",
             "--iptables=false", "--ip-masq=false", "--ip6tables=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                docker.DockerClient(base_url=self.url, timeout=5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        lines = (self.root / "dockerd.log").read_text(errors="replace").splitlines()
        tail = "\n".join(ln for ln in lines if "grpc" not in ln and ("error" in ln or "fatal" in ln))[-1500:]
        self.stop()
        pytest.skip(f"this test's own dockerd did not start: {tail}")

    def kill(self) -> None:
        """SIGKILL the engine: dockerd, then the containerd it started (both by their PIDs)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._signal_containerd(signal.SIGKILL)

    def _signal_containerd(self, sig: int) -> None:
        for pidfile in (self.root / "exec").rglob("containerd.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, sig)
            except (ValueError, OSError):
                continue
            for _ in range(100):  # until it is gone
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._signal_containerd(signal.SIGTERM)  # the containerd our dockerd started, if it outlived it

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=600)


@pytest.fixture
def own_dockerd():
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.skip("needs root and dockerd (apt-get install docker.io) to start a dockerd of its own")
    root = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))  # short: unix socket paths are limited
    d = OwnDockerd(root)
    d.start()
    try:
        yield d
    finally:
        d.stop()
        time.sleep(1)
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def big_context(tmp_path_factory) -> Path:
    ctx = tmp_path_factory.mktemp("big-context")
    with open(ctx / "layer.bin", "wb") as fh:
        for _ in range(LAYER_MB):
            fh.write(os.urandom(1 << 20))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY layer.bin /layer.bin\nLABEL studio.test=engine-gone\n")
    return ctx


def _kill_after(d: OwnDockerd, started: threading.Event, delay: float) -> threading.Thread:
    def run():
        started.wait(120)
        time.sleep(delay)
        d.kill()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_engine_gone_mid_build_then_the_next_build_works(own_dockerd, big_context):
    started = threading.Event()
    lines: list[str] = []

    def on_log(line: str) -> None:
        lines.append(line)
        started.set()  # the engine has the context and is building

    killer = _kill_after(own_dockerd, started, 0.0)
    t0 = time.monotonic()
    with pytest.raises(BuildError) as err:
        # the context upload alone takes a moment: kill as soon as the engine answers the first line,
        # or mid-upload when it never gets to say anything
        threading.Timer(3.0, started.set).start()
        build_image(big_context, "studio-test/engine-gone:1", client=own_dockerd.client(), on_log=on_log)
    killer.join(30)
    assert "The Docker engine stopped in the middle of the build" in str(err.value), (str(err.value), lines)
    assert "try again" in str(err.value) and time.monotonic() - t0 < 300
    own_dockerd.start()  # the engine is back: the same build works
    result = build_image(big_context, "studio-test/engine-gone:1", client=own_dockerd.client())
    assert result.labels.get("studio.test") == "engine-gone" and result.size_bytes >= LAYER_MB << 20


def test_engine_gone_mid_push_then_the_next_push_works(own_dockerd, big_context, registry):
    client = own_dockerd.client()
    build_image(big_context, "studio-test/engine-gone:2", client=client)
    started = threading.Event()
    killer = _kill_after(own_dockerd, started, 0.3)

    def on_log(line: str) -> None:
        if "Pushing" in line or "Preparing" in line or "Waiting" in line:
            started.set()

    threading.Timer(5.0, started.set).start()
    with pytest.raises(PushError) as err:
        push("studio-test/engine-gone:2", registry["address"], registry["username"], registry["password"],
             client=client, on_log=on_log)
    killer.join(30)
    assert "The Docker engine stopped in the middle of the push" in str(err.value), str(err.value)
    own_dockerd.start()
    result = push("studio-test/engine-gone:2", registry["address"], registry["username"], registry["password"],
                  client=own_dockerd.client())
    assert result.digest.startswith("sha256:")
