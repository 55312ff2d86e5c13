"""The studio's own container (the top-level Dockerfile), built and run on the local engine.

The build context is what the repository's .dockerignore lets through, plus an offline wheelhouse
(``wheelhouse/``, filled once per requirements.txt from the package index into the wheelhouse cache
outside the repository), so the build itself needs no network. The image is removed by id at the
end without pruning its parents: the engine keeps the pip layer as build cache for the next run.
"""

from __future__ import annotations

import functools
import http.server
import re
import secrets
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from builder import docker as bd

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]  # a cold build installs ~660 MB of wheels

ROOT = Path(__file__).resolve().parents[2]
# not "studio-test/…": the builder tests' session teardown removes those tags (maybe in another session)
TAG_REPO = "studio-app-test/studio"
LABEL = {"org.edgetpu-studio.test": "studio-image"}
UNWANTED = (".git", ".venv", "data", "tests", "bench", "bench-output", "test-output", ".pytest_cache")


def requirement_lines(path: Path) -> list[str]:
    """The requirement specifiers of a requirements file (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def context_files(root: Path) -> list[str]:
    """Relative paths the docker client sends as the build context of ``root`` (its .dockerignore applied)."""
    from docker.utils.build import exclude_paths

    ignore = root / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")] if ignore.is_file() else []
    return sorted(exclude_paths(str(root), patterns, dockerfile="Dockerfile"))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        return r.status, r.read()


def _logs(container, tail: int = 80) -> str:
    try:
        return container.logs(tail=tail).decode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001 - the container may be gone already
        return f"(no logs: {exc})"


def _remove(container) -> None:
    """Stop and remove one container (and its anonymous /data volume), by id."""
    try:
        container.stop(timeout=10)
    except Exception:  # noqa: BLE001 - already stopped
        pass
    container.remove(force=True, v=True)


def _remove_build_leftovers(client, log_lines: list[str]) -> None:
    """Remove the untagged images a build made or reused that nothing else builds on (e.g. the
    layers of its first stage), newest first; images with children or tags stay."""
    for short in reversed(re.findall(r"^ ---> ([0-9a-f]{12})\s*$", "\n".join(log_lines), flags=re.M)):
        try:
            image = client.images.get(short)
            if not image.tags:
                client.images.remove(image.id)  # no force: refused while another image builds on it
        except Exception:  # noqa: BLE001 - gone already, or still a parent
            pass


def _exec(container, cmd: list[str]) -> tuple[int, str]:
    res = container.exec_run(cmd, demux=False)
    return res.exit_code, (res.output or b"").decode("utf-8", "replace")


@pytest.fixture(scope="module")
def studio_wheelhouse() -> Path:
    """Wheels of requirements.txt for the image's Python (3.11, manylinux), downloaded once and cached."""
    from builder.context import ContextError, ensure_wheelhouse

    try:
        return ensure_wheelhouse(requirement_lines(ROOT / "requirements.txt"), timeout=1800)
    except ContextError as exc:
        pytest.fail(f"the wheelhouse for the studio image could not be filled: {exc}")


@pytest.fixture(scope="module")
def studio_context(tmp_path_factory, studio_wheelhouse) -> Path:
    """The repository's build context (as the docker client would send it) + wheelhouse/."""
    ctx = tmp_path_factory.mktemp("studio-image") / "context"
    for rel in context_files(ROOT):
        if (ROOT / rel).is_file():
            _link_or_copy(ROOT / rel, ctx / rel)
    for whl in studio_wheelhouse.glob("*.whl"):
        _link_or_copy(whl, ctx / "wheelhouse" / whl.name)
    return ctx


@pytest.fixture(scope="module")
def studio_image(docker_client, base_image, studio_context):
    """The studio image built from the top-level Dockerfile on the debootstrap base, offline."""
    tag = f"{TAG_REPO}:{secrets.token_hex(4)}"
    lines: list[str] = []
    t0 = time.monotonic()
    try:
        result = bd.build_image(studio_context, tag, network_mode="none", buildargs={"BASE_IMAGE": base_image},
                                on_log=lines.append, client=docker_client)
    except bd.BuildError as exc:
        pytest.fail(f"{exc}\n" + "\n".join(exc.log_tail))
    seconds = time.monotonic() - t0
    cached = sum("Using cache" in line for line in lines)
    steps = max((int(m.group(1)) for m in map(re.compile(r"^Step \d+/(\d+) :").match, lines) if m), default=0)
    print(f"\nstudio image: built in {seconds:.1f} s ({cached} of {steps} steps cached), "
          f"{result.size_bytes / 1e9:.2f} GB, {result.image_id[:19]}")
    yield result
    # by id, without the parents: they are the build cache of the next run
    docker_client.images.remove(result.image_id, force=True, noprune=True)


def test_context_leaves_out_venv_data_and_outputs():
    files = context_files(ROOT)
    tops = {f.split("/", 1)[0] for f in files}
    assert {"Dockerfile", "requirements.txt", "app.py", "pages", "cli", "core", "coral_runtime", "builder"} <= tops
    assert not tops & set(UNWANTED), tops & set(UNWANTED)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    # everything the Dockerfile copies is in the context
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for src in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.M):
        assert src in tops, f"the Dockerfile copies {src}, which .dockerignore leaves out"


def test_image_serves_health_and_page_on_loopback(studio_image, docker_client):
    port = bd.free_port()
    command = ["python3", "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true"]
    t0 = time.monotonic()
    container = docker_client.containers.run(studio_image.image_id, command=command, network_mode="host",
                                             detach=True, labels=LABEL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            container.reload()
            if container.status not in ("created", "running"):
                pytest.fail(f"the studio container exited ({container.status}):\n{_logs(container)}")
            try:
                status, body = _get(base + "/_stcore/health", timeout=3)
                if status == 200 and body.strip() == b"ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /_stcore/health within 120 s:\n{_logs(container)}")
            time.sleep(0.5)
        print(f"\nstudio container healthy after {time.monotonic() - t0:.1f} s")

        status, page = _get(base + "/")
        html = page.decode("utf-8", "replace")
        assert status == 200 and "<html" in html.lower() and 'id="root"' in html
        # the page's own script is served too (the frontend is in the image)
        scripts = re.findall(r'<script[^>]+src="\.?/?(static/js/[^"]+\.js)"', html)
        assert scripts, html[:2000]
        status, js = _get(f"{base}/{scripts[0]}")
        assert status == 200 and len(js) > 10_000
        assert "Traceback" not in _logs(container, tail=200)
    finally:
        _remove(container)
    with pytest.raises(Exception, match="404|No such container"):
        docker_client.containers.get(container.id)


def test_default_command_listens_on_all_interfaces_and_runs_the_app(studio_image, docker_client):
    """What `docker run -p 8501:8501 …` relies on: the default CMD binds 0.0.0.0:8501, the image's
    HEALTHCHECK passes, the app's first page renders without an exception, the wheels stayed behind."""
    image = docker_client.images.get(studio_image.image_id)
    config = image.attrs["Config"]
    assert "8501/tcp" in (config.get("ExposedPorts") or {})
    assert "STUDIO_DATA_DIR=/data" in config["Env"]
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD-SHELL"

    container = docker_client.containers.run(image.id, network_mode="none", detach=True, labels=LABEL)
    try:
        deadline = time.monotonic() + 120
        while True:
            container.reload()
            if container.status not in ("created", "running"):
                pytest.fail(f"the studio container exited ({container.status}):\n{_logs(container)}")
            code, out = _exec(container, ["sh", "-c", health[1]])
            if code == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the HEALTHCHECK did not pass within 120 s: {out}\n{_logs(container)}")
            time.sleep(1)

        # listening sockets (state 0A) on port 8501 (0x2135): the address must be 0.0.0.0 or ::
        code, tcp = _exec(container, ["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"])
        listen = [row.split()[1] for row in tcp.splitlines()[1:]
                  if len(row.split()) > 3 and row.split()[3] == "0A" and row.split()[1].endswith(":2135")]
        assert listen, tcp
        assert all(set(addr.split(":")[0]) == {"0"} for addr in listen), listen

        code, out = _exec(container, ["python3", "-c", (
            "import sys; from streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=120).run()\n"
            "assert not at.exception, [e.value for e in at.exception]\n"
            "print(sys.version_info[:2], [t.value for t in at.title])")])
        assert code == 0, out + "\n" + _logs(container)
        assert "(3, 11)" in out and "Projects" in out, out

        code, out = _exec(container, ["sh", "-c", "ls /tmp/req /app/wheelhouse 2>&1; ls /app"])
        assert "No such file" in out and ".whl" not in out, out
        assert {"app.py", "pages", "cli", "core", "coral_runtime", "builder"} <= set(out.split()), out
    finally:
        _remove(container)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        type(self).requests.append(self.path)


def test_without_a_wheelhouse_the_build_installs_from_the_package_index(docker_client, base_image,
                                                                      studio_wheelhouse, tmp_path):
    """The branch real users take (no wheelhouse/ in their clone): pip reads a package index. Here the
    index is a loopback server (PIP_INDEX_URL build arg, network host) holding one pinned wheel; the
    package must land where the image's PYTHONPATH points."""
    pin = next(r for r in requirement_lines(ROOT / "requirements.txt") if r.startswith("tqdm=="))
    wheel = next(studio_wheelhouse.glob(f"tqdm-{pin.split('==')[1]}-*.whl"))
    _link_or_copy(wheel, tmp_path / "index" / "tqdm" / wheel.name)
    ctx = tmp_path / "context"
    for rel in context_files(ROOT):
        if (ROOT / rel).is_file() and rel != "requirements.txt":
            _link_or_copy(ROOT / rel, ctx / rel)
    (ctx / "requirements.txt").write_text(pin + "\n", encoding="utf-8")
    assert not (ctx / "wheelhouse").exists()

    lines: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path / "index")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}/"
        result = bd.build_image(ctx, f"{TAG_REPO}-index:{secrets.token_hex(4)}", network_mode="host",
                                buildargs={"BASE_IMAGE": base_image, "PIP_INDEX_URL": index},
                                on_log=lines.append, client=docker_client)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert any(path.startswith("/tqdm/") for path in handler.requests), handler.requests
    container = docker_client.containers.run(
        result.image_id, ["python3", "-c", "import tqdm; print(tqdm.__version__, tqdm.__file__)"],
        network_mode="none", detach=True, labels=LABEL)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0, _logs(container)
        out = _logs(container)
        assert out.split()[0] == pin.split("==")[1]
        assert out.split()[1].startswith("/opt/studio/site-packages/tqdm/"), out
    finally:
        _remove(container)
        docker_client.images.remove(result.image_id, force=True)
        _remove_build_leftovers(docker_client, lines)
