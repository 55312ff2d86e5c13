"""Build, smoke-test, save, load and push robot images through the docker SDK.

Every function takes an optional ``client`` (a ``docker.DockerClient``) or ``base_url``; without
either, ``docker.from_env()`` is used. Build logs go line by line to an ``on_log`` callback.
Registry credentials are passed per call as ``auth_config`` and live only in memory: nothing is
written to a docker config file, nothing is logged.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from builder import engine
from builder.context import BuildContext
from builder.engine_gone import engine_gone_message, is_engine_gone

Log = Callable[[str], None]
CHUNK = 1024 * 1024


class BuildError(RuntimeError):
    """docker build failed; ``log_tail`` holds the last lines of the build log."""

    def __init__(self, message: str, log_tail: list[str] | None = None):
        super().__init__(message)
        self.log_tail = log_tail or []


class SmokeTestError(RuntimeError):
    """The image did not start, answer, or agree with the in-app Predictor."""


def _client(client=None, base_url: str | None = None):
    return client if client is not None else engine.require_engine(base_url)


# -- build -------------------------------------------------------------------------------
@dataclass
class BuildResult:
    """A built image."""

    image_id: str
    tag: str
    size_bytes: int
    seconds: float
    labels: dict[str, str] = field(default_factory=dict)
    log_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _LineSplitter:
    """Turns the build stream's text fragments into whole lines."""

    def __init__(self, on_line: Log):
        self.buf = ""
        self.on_line = on_line
        self.count = 0
        self.tail: list[str] = []

    def feed(self, text: str) -> None:
        self.buf += text
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self._emit(line)

    def flush(self) -> None:
        if self.buf:
            self._emit(self.buf)
            self.buf = ""

    def _emit(self, line: str) -> None:
        line = line.rstrip("\r")
        self.count += 1
        self.tail = (self.tail + [line])[-40:]
        self.on_line(line)


def build_image(context: BuildContext | str | os.PathLike[str], tag: str | None = None, *,
                network_mode: str | None = None, on_log: Log | None = None, client=None,
                base_url: str | None = None, nocache: bool = False, buildargs: dict[str, str] | None = None,
                check_cancelled: Callable[[], None] | None = None) -> BuildResult:
    """``docker build`` of a context folder; streams the log; returns the tagged image.

    ``network_mode`` defaults to ``none`` for the offline profile and ``host`` for coral
    (this engine has no bridge network). ``check_cancelled`` is called between log chunks and
    may raise to abort the build.
    """
    if isinstance(context, BuildContext):
        path, tag = context.path, tag or context.spec.tag
        network_mode = network_mode or context.network_mode
    else:
        path = Path(context)
    if not tag:
        raise ValueError("a tag is needed to build an image")
    network_mode = network_mode or "none"
    if network_mode not in ("none", "host"):
        raise ValueError("only network_mode 'none' or 'host' work on this engine (no bridge network)")
    on_log = on_log or (lambda _l: None)
    c = _client(client, base_url)
    lines = _LineSplitter(on_log)
    image_id = None
    t0 = time.monotonic()
    try:
        stream = c.api.build(path=str(path), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
                             network_mode=network_mode, nocache=nocache, buildargs=buildargs or None)
    except Exception as exc:  # noqa: BLE001 - the engine went away while it received the context
        if not is_engine_gone(exc):
            raise
        raise BuildError(engine_gone_message("build"), []) from exc
    try:
        for chunk in stream:
            if check_cancelled:
                check_cancelled()
            if "stream" in chunk:
                lines.feed(chunk["stream"])
            elif "status" in chunk:
                lines.feed(f"{chunk['status']} {chunk.get('progress', '')}".rstrip() + "\n")
            if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                image_id = chunk["aux"]["ID"]
            if "error" in chunk or "errorDetail" in chunk:
                lines.flush()
                msg = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "build failed"
                on_log(f"ERROR: {msg}")
                raise BuildError(f"docker build failed: {msg.strip()}", lines.tail)
    except BuildError:
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's connection broke mid-stream
        if not is_engine_gone(exc):
            raise
        on_log(f"ERROR: the Docker engine went away ({type(exc).__name__})")
        raise BuildError(engine_gone_message("build"), lines.tail) from exc
    finally:
        lines.flush()
        close = getattr(stream, "close", None)
        if close:
            close()
    seconds = time.monotonic() - t0
    img = c.images.get(tag)
    image_id = img.id or image_id
    return BuildResult(image_id=image_id, tag=tag, size_bytes=int(img.attrs.get("Size") or 0),
                       seconds=round(seconds, 2), labels=dict(img.labels or {}), log_lines=lines.count)


def image_info(ref: str, client=None, base_url: str | None = None) -> dict[str, Any]:
    """Id, tags, size and labels of a local image."""
    c = _client(client, base_url)
    img = c.images.get(ref)
    return {"id": img.id, "tags": img.tags, "size_bytes": int(img.attrs.get("Size") or 0),
            "labels": dict(img.labels or {}), "created": img.attrs.get("Created"),
            "repo_digests": img.attrs.get("RepoDigests") or []}


# -- run / smoke test ------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: bytes | None = None, content_type: str | None = None,
              timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """One HTTP request to a model server; returns (status, JSON body) for errors too."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return exc.code, {"error": raw.decode("utf-8", "replace")}


@dataclass
class SmokeResult:
    """What the smoke test saw."""

    ok: bool
    message: str
    port: int
    startup_seconds: float
    device: str | None = None
    server: dict[str, Any] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    container_log: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prediction_to_dict(pred: Any) -> dict[str, Any]:
    """A coral_runtime Prediction as the JSON the model server answers."""
    import dataclasses
    import enum

    def conv(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: conv(getattr(o, f.name)) for f in dataclasses.fields(o)}
        if isinstance(o, dict):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, enum.Enum):
            return o.value
        if hasattr(o, "item") and callable(o.item):
            try:
                return o.item()
            except (TypeError, ValueError):
                pass
        return o

    out = conv(pred.to_dict() if callable(getattr(pred, "to_dict", None)) else pred)
    return out if isinstance(out, dict) else {"result": out}


def _box(d: Any) -> tuple[float, float, float, float] | None:
    if isinstance(d, dict) and all(k in d for k in ("x_min", "y_min", "x_max", "y_max")):
        return (float(d["x_min"]), float(d["y_min"]), float(d["x_max"]), float(d["y_max"]))
    if isinstance(d, (list, tuple)) and len(d) == 4:
        return tuple(float(v) for v in d)  # type: ignore[return-value]
    return None


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU, with boxes equal to half a pixel counted as 1.0 (clipped boxes can have zero area,
    where IoU is 0 even for identical boxes)."""
    from core.data.boxes import Box

    if max(abs(x - y) for x, y in zip(a, b)) <= 0.5:
        return 1.0
    return Box(*a).iou(Box(*b))


def compare_predictions(server: dict[str, Any], local: dict[str, Any], min_iou: float = 0.95,
                        score_tol: float = 0.02) -> tuple[bool, str]:
    """Same classes (order and labels); detections matched one to one by label with IoU ≥ ``min_iou``."""
    s_cls = [c.get("label") for c in server.get("classes") or []]
    l_cls = [c.get("label") for c in local.get("classes") or []]
    if s_cls != l_cls:
        return False, f"classes differ: server {s_cls} vs in-app {l_cls}"
    for sc, lc in zip(server.get("classes") or [], local.get("classes") or []):
        if abs(float(sc.get("score", 0)) - float(lc.get("score", 0))) > score_tol:
            return False, f"score of {sc.get('label')!r} differs: {sc.get('score')} vs {lc.get('score')}"
    s_det, l_det = list(server.get("detections") or []), list(local.get("detections") or [])
    if len(s_det) != len(l_det):
        return False, f"{len(s_det)} detections from the server vs {len(l_det)} in-app"
    unmatched = list(s_det)
    worst = 1.0
    for ld in l_det:
        lb = _box(ld.get("box"))
        best, best_iou = None, -1.0
        for sd in unmatched:
            sb = _box(sd.get("box"))
            if sd.get("label") != ld.get("label") or sb is None or lb is None:
                continue
            iou = _iou(sb, lb)
            if iou > best_iou:
                best, best_iou = sd, iou
        if best is None or best_iou < min_iou:
            return False, f"no server detection of {ld.get('label')!r} with IoU ≥ {min_iou} (best {best_iou:.3f})"
        worst = min(worst, best_iou)
        unmatched.remove(best)
    what = f"{len(s_cls)} classes" if s_cls else f"{len(s_det)} detections (min IoU {worst:.3f})"
    return True, f"server and in-app Predictor agree: {what}"


def server_module():
    """The model server template (builder/templates/server.py) as a module of this process."""
    import importlib.util
    import sys

    name = "builder_templates_server"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / "templates" / "server.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    before = list(sys.path)
    sys.modules[name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path[:] = before  # the template puts its own folder first on sys.path
    return mod


def local_prediction(model_dir: str | os.PathLike[str], image_bytes: bytes, device: str = "auto",
                     draft: bool = True) -> dict[str, Any]:
    """The in-app Predictor on the same bytes the server gets: ``Predictor.predict_bytes``, the
    call (and the ``coral_runtime.decode`` decode) the server itself makes, so that a difference
    means the image's runtime differs. ``draft``: as the server's ``JPEG_DRAFT`` (default on)."""
    from coral_runtime.predictor import Predictor

    return prediction_to_dict(Predictor(Path(model_dir), device=device).predict_bytes(image_bytes, draft=draft))


def _container_log(container, tail: int = 60) -> list[str]:
    try:
        return container.logs(tail=tail).decode("utf-8", "replace").splitlines()
    except Exception:  # noqa: BLE001
        return []


def run_server(image: str, port: int | None = None, *, client=None, base_url: str | None = None,
               env: dict[str, str] | None = None, name: str | None = None):
    """Start the image's model server on 127.0.0.1:``port`` (network_mode host); returns (container, port)."""
    c = _client(client, base_url)
    port = port or free_port()
    environment = {"PORT": str(port), "BIND_ADDRESS": "127.0.0.1", **(env or {})}
    container = c.containers.run(image, detach=True, network_mode="host", environment=environment,
                                 name=name or f"studio-smoke-{uuid.uuid4().hex[:8]}",
                                 labels={"org.edgetpu-studio.smoke-test": "1"})
    return container, port


def wait_healthy(container, port: int, timeout: float = 60) -> float:
    """Seconds until GET /healthz answers 200; SmokeTestError when the container dies or time runs out."""
    t0 = time.monotonic()
    url = f"http://127.0.0.1:{port}/healthz"
    last = ""
    while time.monotonic() - t0 < timeout:
        container.reload()
        if container.status in ("exited", "dead"):
            raise SmokeTestError("the container stopped before answering:\n" + "\n".join(_container_log(container)))
        try:
            status, _ = http_json("GET", url, timeout=2)
            if status == 200:
                return time.monotonic() - t0
            last = f"HTTP {status}"
        except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise SmokeTestError(f"/healthz did not answer within {timeout:.0f} s ({last}):\n"
                         + "\n".join(_container_log(container)))


def stop_container(container, timeout: int = 5) -> None:
    """Stop and remove a container (errors ignored: it may be gone already)."""
    for step in (lambda: container.stop(timeout=timeout), lambda: container.remove(force=True)):
        try:
            step()
        except Exception:  # noqa: BLE001
            pass


def smoke_test(image: str, model_dir: str | os.PathLike[str], sample: bytes, *, client=None,
               base_url: str | None = None, timeout: float = 90, content_type: str = "image/jpeg",
               on_log: Log | None = None, min_iou: float = 0.95) -> SmokeResult:
    """Run the image (network host, 127.0.0.1, a free port), wait for /healthz, POST ``sample`` to
    /v1/predict, compare with the in-app Predictor, then stop and remove the container."""
    on_log = on_log or (lambda _l: None)
    c = _client(client, base_url)
    container, port = run_server(image, client=c)
    on_log(f"smoke test: container {container.short_id} on 127.0.0.1:{port}")
    try:
        try:
            startup = wait_healthy(container, port, timeout=timeout)
        except SmokeTestError as exc:
            return SmokeResult(False, str(exc), port, timeout, container_log=_container_log(container))
        _, model = http_json("GET", f"http://127.0.0.1:{port}/v1/model")
        status, server = http_json("POST", f"http://127.0.0.1:{port}/v1/predict", sample, content_type)
        try:
            container.stop(timeout=5)  # the server logs each request after answering it: stop, then read
        except Exception:  # noqa: BLE001
            pass
        logs = _container_log(container)
    finally:
        stop_container(container)
    if status != 200:
        return SmokeResult(False, f"/v1/predict answered {status}: {server.get('error')}", port, startup,
                           model.get("device"), server, {}, model, logs)
    local = local_prediction(model_dir, sample)
    ok, message = compare_predictions(server, local, min_iou=min_iou)
    on_log(f"smoke test: {'passed' if ok else 'FAILED'} — {message}")
    return SmokeResult(ok, message, port, round(startup, 2), model.get("device"), server, local, model, logs)


# -- save / load ---------------------------------------------------------------------------
def save_image_gz(image: str, out_path: str | os.PathLike[str], *, client=None, base_url: str | None = None,
                  compresslevel: int = 1, on_progress: Callable[[int], None] | None = None) -> Path:
    """``docker save IMAGE | gzip > out_path``, streamed chunk by chunk (never whole in memory).

    Level 1 by default: on a busy 2-core server level 6 takes ~3x longer for ~10 % less.
    """
    c = _client(client, base_url)
    img = c.images.get(image)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    written = 0
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel,
                                                   filename="", mtime=0) as gz:
            for chunk in img.save(chunk_size=CHUNK, named=image if image in (img.tags or []) else True):
                gz.write(chunk)
                written += len(chunk)
                if on_progress:
                    on_progress(written)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def load_image_archive(path: str | os.PathLike[str], *, client=None, base_url: str | None = None) -> list[str]:
    """``docker load`` of a (gzipped) archive, streamed from the file; returns the loaded names/ids."""
    c = _client(client, base_url)
    names: list[str] = []
    with open(path, "rb") as fh:
        for chunk in c.api.load_image(fh):
            if "error" in chunk or "errorDetail" in chunk:
                raise RuntimeError(chunk.get("error") or chunk["errorDetail"].get("message"))
            text = chunk.get("stream", "")
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if text.startswith(prefix):
                    names.append(text[len(prefix):].strip())
    return names


def image_archive_opener(image: str, out_path: str | os.PathLike[str], **kw: Any) -> Callable[[], Any]:
    """A no-argument callable for ``st.download_button(data=…)``: saves once, then opens the file."""
    def _open():
        p = Path(out_path)
        if not p.exists():
            save_image_gz(image, p, **kw)
        return open(p, "rb")

    return _open
