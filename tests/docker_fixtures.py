"""Docker fixtures shared by the builder tests and the browser journey: a real dockerd (started
when none answers, stopped by its PID file at the end), the debootstrap base image and the
offline wheelhouse. Import them into a conftest or test module to use them:
``from tests.docker_fixtures import docker_client, base_image, wheelhouse  # noqa: F401``.

Everything started here is stopped at the end of the session; an engine that was already
running is used and left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def run(cmd: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command with extra environment variables; capture its output as text."""
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)


def remove_test_images(client) -> None:
    """Remove every image tagged by these tests (studio-test/…, also as pushed to a test registry),
    then the untagged images that carry our labels; the build cache of the wheel stage stays."""
    for img in client.images.list():
        for tag in img.tags:
            if tag.startswith("studio-test/") or "/studio-test/" in tag:
                try:
                    client.images.remove(tag, force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
    try:
        client.images.prune(filters={"dangling": True, "label": "org.edgetpu-studio.model.profile"})
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture(scope="session")
def docker_client(tmp_path_factory):
    """A docker client; starts dockerd (no bridge, no iptables) when none answers and stops it at the end."""
    from builder import engine

    info = engine.find_engine(timeout=5)
    run_dir = None
    if not info.reachable:
        if os.geteuid() != 0 or not shutil.which("dockerd"):
            pytest.skip(f"no Docker engine and none can be started here: {info.message}")
        run_dir = tmp_path_factory.mktemp("dockerd")
        proc = run(["bash", str(SCRIPTS / "start_dockerd.sh")], env={"STUDIO_DOCKER_RUN_DIR": str(run_dir)},
                   timeout=120)
        if proc.returncode != 0:
            pytest.skip(f"dockerd could not be started: {proc.stderr.strip()[-500:]}")
    client = engine.require_engine()
    yield client
    remove_test_images(client)
    client.close()
    if run_dir is not None:
        run(["bash", str(SCRIPTS / "stop_dockerd.sh")], env={"STUDIO_DOCKER_RUN_DIR": str(run_dir)}, timeout=60)


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The debootstrap bookworm + python3 base image (made once; cached by docker image inspect)."""
    from builder.context import default_base_image

    name = default_base_image()
    try:
        docker_client.images.get(name)
        return name
    except Exception:  # noqa: BLE001 - ImageNotFound
        pass
    proc = run(["bash", str(SCRIPTS / "make_base_image.sh"), name], timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"make_base_image.sh failed:\n{proc.stdout[-1000:]}\n{proc.stderr[-2000:]}")
    return name


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The offline profile's wheelhouse (pip download once, then cached)."""
    from builder.context import ensure_wheelhouse, runtime_requirements

    return ensure_wheelhouse(runtime_requirements())
