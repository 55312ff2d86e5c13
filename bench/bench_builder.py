"""Robot image benchmark: build time and size (offline profile; coral where Coral's repository is
reachable), container start-up, docker save size, and the model server's latency per request
against the in-process Predictor on the same image.

``run(out_dir, quick) -> dict`` (flat figures, for bench/__main__.py's report).
"""

from __future__ import annotations

import os
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sample_image() -> bytes:
    shared = Path(os.environ.get("STUDIO_SHARED_DIR", ROOT.parent / "shared"))
    images = sorted((shared / "datasets" / "raccoon" / "images").glob("*.jpg"))
    if images:
        return images[0].read_bytes()
    from builder.jobs import synthetic_sample

    return synthetic_sample((640, 480))


def _model(out_dir: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.builder.conftest import make_tiny_classifier

    folder = out_dir / "model"
    if not (folder / "manifest.json").exists():
        make_tiny_classifier(folder)
    return folder


def _stats(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))]


def _latency_server(base: str, image: bytes, n: int) -> list[float]:
    from builder.docker import http_json

    http_json("POST", base + "/v1/predict", image, "image/jpeg")  # warm-up
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _ = http_json("POST", base + "/v1/predict", image, "image/jpeg")
        out.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    return out


def _latency_in_process(model_dir: Path, image: bytes, n: int) -> list[float]:
    from coral_runtime.predictor import Predictor
    from core.imaging import open_upright

    pred = Predictor(model_dir)
    pred.predict(open_upright(image))
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        pred.predict(open_upright(image))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _server_subprocess_latency(model_dir: Path, image: bytes, n: int) -> list[float]:
    """The model server from the source tree (no Docker) on 127.0.0.1."""
    from builder.docker import free_port, http_json

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_DIR": str(model_dir), "PORT": str(port),
           "BIND_ADDRESS": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "builder" / "templates" / "server.py")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if http_json("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        return _latency_server(f"http://127.0.0.1:{port}", image, n)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _coral_reachable(host: str) -> str | None:
    try:
        addr = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)[0][4]
        with socket.create_connection(addr[:2], timeout=3) as s:
            with ssl.create_default_context().wrap_socket(s, server_hostname=host):
                return None
    except OSError as exc:
        return f"{host} unreachable ({exc})"


def run(out_dir: Path, quick: bool = False) -> dict:
    from builder import context as bc
    from builder import docker as bd
    from builder import engine

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 20 if quick else 200
    image = _sample_image()
    res: dict = {"requests": n}
    t0 = time.perf_counter()
    model_dir = _model(out_dir)
    res["model_seconds"] = time.perf_counter() - t0

    inproc = _latency_in_process(model_dir, image, n)
    res["in_process_median_ms"], res["in_process_p90_ms"] = _stats(inproc)
    local_server = _server_subprocess_latency(model_dir, image, n)
    res["server_no_docker_median_ms"], res["server_no_docker_p90_ms"] = _stats(local_server)

    info = engine.find_engine()
    started = None
    if not info.reachable and os.geteuid() == 0:
        started = out_dir / "dockerd"
        subprocess.run(["bash", str(ROOT / "scripts" / "start_dockerd.sh")], env={
            **os.environ, "STUDIO_DOCKER_RUN_DIR": str(started)}, capture_output=True, timeout=120)
        info = engine.find_engine()
    if not info.reachable:
        res["docker"] = "unreachable: " + info.message[:200]
        return res
    res["docker"] = info.version
    try:
        return _docker_figures(res, out_dir, model_dir, image, n)
    finally:
        if started is not None:  # stop the dockerd this benchmark started, by its PID file
            subprocess.run(["bash", str(ROOT / "scripts" / "stop_dockerd.sh")], env={
                **os.environ, "STUDIO_DOCKER_RUN_DIR": str(started)}, capture_output=True, timeout=120)


def _docker_figures(res: dict, out_dir: Path, model_dir: Path, image: bytes, n: int) -> dict:
    from builder import context as bc
    from builder import docker as bd
    from builder import engine

    client = engine.require_engine()
    base = bc.default_base_image()
    try:
        client.images.get(base)
        res["base_image_seconds"] = "cached"
    except Exception:  # noqa: BLE001
        t0 = time.perf_counter()
        subprocess.run(["bash", str(ROOT / "scripts" / "make_base_image.sh"), base], check=True)
        res["base_image_seconds"] = time.perf_counter() - t0
    res["base_image_mb"] = int(client.images.get(base).attrs["Size"]) / 1e6

    t0 = time.perf_counter()
    wh = bc.ensure_wheelhouse(bc.runtime_requirements())
    res["wheelhouse_seconds"] = time.perf_counter() - t0
    res["wheelhouse_mb"] = sum(p.stat().st_size for p in wh.glob("*.whl")) / 1e6

    tag = f"studio-bench/offline:{int(time.time())}"
    ctx_dir = out_dir / f"context-{int(time.time())}"
    t0 = time.perf_counter()
    ctx = bc.make_context(bc.BuildSpec(model_dir=model_dir, tag=tag, profile="offline", base_image=base), ctx_dir,
                          wheelhouse=wh)
    res["context_seconds"] = time.perf_counter() - t0
    try:
        build = bd.build_image(ctx, client=client, nocache=True)
        res["offline_build_seconds_nocache"] = build.seconds
        res["offline_image_mb"] = build.size_bytes / 1e6
        # a rebuild with a new label only (the usual case: same runtime, new model) uses the layer cache
        ctx2 = bc.make_context(bc.BuildSpec(model_dir=model_dir, tag=tag, profile="offline", base_image=base),
                               out_dir / f"{ctx_dir.name}-again", wheelhouse=wh)
        res["offline_rebuild_seconds_cached"] = bd.build_image(ctx2, client=client).seconds

        smoke = bd.smoke_test(tag, model_dir, image, client=client)
        res["smoke_ok"] = smoke.ok
        res["container_startup_seconds"] = smoke.startup_seconds

        container, port = bd.run_server(tag, client=client)
        try:
            bd.wait_healthy(container, port)
            docker_ms = _latency_server(f"http://127.0.0.1:{port}", image, n)
        finally:
            bd.stop_container(container)
        res["server_docker_median_ms"], res["server_docker_p90_ms"] = _stats(docker_ms)
        res["server_overhead_median_ms"] = res["server_docker_median_ms"] - res["in_process_median_ms"]

        t0 = time.perf_counter()
        arch = bd.save_image_gz(tag, out_dir / "image.tar.gz", client=client)
        res["save_gz_seconds"] = time.perf_counter() - t0
        res["save_gz_mb"] = arch.stat().st_size / 1e6
        arch.unlink()
    finally:
        try:
            client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001
            pass

    coral_ctx = bc.make_context(bc.BuildSpec(model_dir=model_dir, tag=tag.replace("offline", "coral"),
                                             profile="coral", base_image=base), out_dir / f"{ctx_dir.name}-coral")
    reason = _coral_reachable(bc.coral_repo_host(coral_ctx.dockerfile.read_text()) or "")
    if reason:
        res["coral_build"] = f"skipped: {reason}"
    else:
        try:
            b = bd.build_image(coral_ctx, client=client)
            res["coral_build_seconds"] = b.seconds
            res["coral_image_mb"] = b.size_bytes / 1e6
            client.images.remove(b.tag, force=True)
        except bd.BuildError as exc:
            res["coral_build"] = f"failed: {exc}"
    client.close()
    return res


if __name__ == "__main__":
    import json

    print(json.dumps(run(ROOT / "bench-output" / "bench_builder", quick="--quick" in sys.argv), indent=2))
