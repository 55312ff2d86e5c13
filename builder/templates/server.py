"""Model server of a Studio robot image (standard library + the shipped coral_runtime).

    GET  /healthz       liveness: {"ok": true, "device": ..., "fallback_reason": ..., "edgetpu": {runtime
                        name+version, libedgetpu package(s) and version string, Edge TPUs found,
                        the child-process probe's result, e.g. "Edge TPU runtime crashed (signal 11)
                        — CPU used"}}
    GET  /v1/model      labels, task, input size, device in use, versions, requests served, and
                        the latency p50/p95 (ms) over the last 100 predictions
    POST /v1/predict    an image body (image/*, application/octet-stream) or multipart/form-data
                        with a file part -> classes or detections in original-image pixels;
                        optional query: ?threshold=0.5 (minimum score) &top_k=3

The model runs through ``coral_runtime.predictor.Predictor.predict_bytes``: the request body is
decoded by ``coral_runtime.decode`` (the studio's in-app predictor decodes the same way, so the
same bytes give the same answer) and run on the Edge TPU when one is present (and the model was
compiled for it), on the CPU otherwise. One Predictor (one interpreter, with its own lock) serves
every request. Errors are JSON: bad image 400, body over
the limit 413, unknown route 404, wrong method 405.

Environment:
    PORT                 listening port (default 8080)
    BIND_ADDRESS         listening address (default 0.0.0.0)
    MODEL_DIR            model folder with manifest.json (default: ./model beside this file)
    DEVICE               "auto" (default), "cpu", "usb", "usb:N", "pci", "pci:N", ":N"
    STUDIO_EDGETPU_LIB   the Edge TPU runtime library (default libedgetpu.so.1)
    MAX_BODY_BYTES       largest accepted request body (default 16 MiB)
    MAX_IMAGE_PIXELS     largest accepted image (default 50 megapixels)
    JPEG_DRAFT           "1" (default): decode large JPEGs at reduced scale (coral_runtime.decode);
                         "0": always decode at full size
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import platform
import sys
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
# In the image coral_runtime/ and core/ are shipped beside this file; in the studio's source tree
# (builder/templates/server.py) they are two folders up.
_RUNTIME_ROOT = next((d for d in (HERE, *HERE.parents[:2]) if (d / "coral_runtime" / "decode.py").is_file()), HERE)
if str(_RUNTIME_ROOT) not in sys.path:
    sys.path.insert(0, str(_RUNTIME_ROOT))

SERVER_VERSION = "1"
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000  # as coral_runtime.decode.DEFAULT_MAX_PIXELS
LATENCY_WINDOW = 100  # predictions behind the p50/p95 of GET /v1/model


class ApiError(Exception):
    """An error answered as JSON with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"server": SERVER_VERSION, "python": platform.python_version()}
    for dist in ("ai-edge-litert", "numpy", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        import coral_runtime

        out["coral_runtime"] = getattr(coral_runtime, "__version__", None)
    except ImportError:
        pass
    libedgetpu = [p for p in ("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1", "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1",
                              "/usr/lib/libedgetpu.so.1") if os.path.exists(p)]
    out["libedgetpu"] = libedgetpu[0] if libedgetpu else None
    return out


def _edgetpu_status() -> dict[str, Any]:
    """Runtime, libedgetpu and Edge TPUs (``coral_runtime.versions.describe``), after the model loaded."""
    try:
        from coral_runtime import versions

        info = versions.describe()
        info["summary"] = versions.summary_line(info)
        return info
    except Exception as exc:  # noqa: BLE001 - the status must never stop the server
        return {"error": f"{type(exc).__name__}: {exc}"}


def _jsonable(obj: Any) -> Any:
    """Predictions (dataclasses, Box, numpy scalars) as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


@contextlib.contextmanager
def _image_errors() -> Iterator[None]:
    """``coral_runtime.decode`` errors as API errors: 413 for a too large image, 400 otherwise."""
    from coral_runtime.decode import DecodeError, ImageTooLarge

    try:
        yield
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except DecodeError as exc:
        raise ApiError(400, str(exc)) from None


class ModelService:
    """One Predictor (thread-safe: one lock per interpreter), the request counter and the latency window."""

    def __init__(self, model_dir: str | os.PathLike[str], device: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS,
                 draft: bool = True):
        from coral_runtime.latency import LatencyWindow
        from coral_runtime.predictor import Predictor

        self.model_dir = Path(model_dir)
        self.manifest = json.loads((self.model_dir / "manifest.json").read_text(encoding="utf-8"))
        self.predictor = Predictor(self.model_dir, device=device)
        self.lock = threading.Lock()
        self.max_pixels = max_pixels
        self.draft = draft
        self.requests = 0
        self.latency = LatencyWindow(LATENCY_WINDOW)
        self.started = time.time()
        self.versions = _versions()
        self.edgetpu = _edgetpu_status()

    @property
    def device(self) -> str:
        for obj in (self.predictor, getattr(self.predictor, "interpreter", None)):
            dev = getattr(obj, "device", None)
            if isinstance(dev, str):
                return dev
        return "unknown"

    @property
    def fallback_reason(self) -> str | None:
        for obj in (self.predictor, getattr(self.predictor, "interpreter", None)):
            reason = getattr(obj, "fallback_reason", None)
            if reason:
                return str(reason)
        return None

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": m.get("id"),
            "project": m.get("project"),
            "task": m.get("task"),
            "labels": m.get("labels", []),
            "input_size": m.get("input_size"),
            "resize": m.get("resize") or (m.get("detection") or {}).get("resize"),
            "dataset_hash": m.get("dataset_hash"),
            "created": m.get("created"),
            "metrics": (m.get("metrics") or {}).get("int8"),
            "device": self.device,
            "fallback_reason": self.fallback_reason,
            "versions": self.versions,
            "edgetpu": self.edgetpu,
            "requests": self.requests,
            "latency": self.latency_figures(),
        }

    def latency_figures(self) -> dict[str, Any]:
        """p50/p95 of the whole prediction (decode included) and p50 of invoke() alone, in ms, over
        the last predictions (``window`` of them); nulls before the first one."""
        s = self.latency.stats()

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {"window": s.n, "p50_ms": ms(s.p50), "p95_ms": ms(s.p95), "invoke_p50_ms": ms(s.invoke_p50)}

    def decode(self, body: bytes):
        """Bytes -> ``coral_runtime.decode.Decoded`` as ``predict`` decodes them (upright RGB, a large
        JPEG at reduced scale); ApiError 400 for anything that is not a sane image, 413 if too large."""
        with _image_errors():
            return self.predictor.decode(body, draft=self.draft, max_pixels=self.max_pixels)

    def predict(self, body: bytes, **options: Any) -> dict[str, Any]:
        """Decode and run the model on an image body (``Predictor.predict_bytes``, the in-app
        predictor's own call); ``options`` (threshold, top_k) go to it when given. Boxes are in
        the pixels of the original (upright) image. ApiError 400/413 for bad or too large images."""
        kwargs = {k: v for k, v in options.items() if v is not None}
        with _image_errors():
            pred = self.predictor.predict_bytes(body, draft=self.draft, max_pixels=self.max_pixels, **kwargs)
        with self.lock:
            self.requests += 1
        self.latency.add(pred.latency_ms, pred.invoke_ms, pred.device)
        out = _jsonable(pred.to_dict() if callable(getattr(pred, "to_dict", None)) else pred)
        if not isinstance(out, dict):
            out = {"result": out}
        out.setdefault("task", self.manifest.get("task"))
        width, height = pred.image_size
        out["image"] = {"width": width, "height": height}
        return out


def _multipart_file(content_type: str, body: bytes) -> bytes:
    """The first file part (or the part named image/file) of a multipart/form-data body."""
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ApiError(400, "malformed multipart body")
    parts = [p for p in msg.iter_parts() if p.get_content_disposition() == "form-data"]
    preferred = [p for p in parts if p.get_param("name", header="content-disposition") in ("image", "file")]
    with_file = [p for p in parts if p.get_filename()]
    for part in preferred + with_file + parts:
        payload = part.get_payload(decode=True)
        if payload:
            return payload
    raise ApiError(400, "multipart body has no file part (use the field name 'image')")


def _query_options(path: str) -> dict[str, Any]:
    """``?threshold=0.5&top_k=3`` -> {"threshold": 0.5, "top_k": 3}; ApiError(400) for bad values."""
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(path).query)
    out: dict[str, Any] = {}
    if "threshold" in query:
        try:
            out["threshold"] = float(query["threshold"][-1])
        except ValueError:
            raise ApiError(400, "threshold must be a number between 0 and 1") from None
        if not 0.0 <= out["threshold"] <= 1.0:
            raise ApiError(400, "threshold must be a number between 0 and 1")
    if "top_k" in query:
        try:
            out["top_k"] = int(query["top_k"][-1])
        except ValueError:
            raise ApiError(400, "top_k must be a positive integer") from None
        if out["top_k"] < 1:
            raise ApiError(400, "top_k must be a positive integer")
    return out


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive. The response (status line, headers, body) leaves in one write from a
    buffered socket file, and TCP_NODELAY is on: no Nagle / delayed-ACK stall between the headers and
    the body on a persistent connection."""

    server_version = "StudioModelServer/" + SERVER_VERSION
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted connection
    wbufsize = 256 * 1024  # buffered wfile: one send() per response, flushed in _dispatch
    service: ModelService  # set by make_server
    max_body: int = DEFAULT_MAX_BODY

    # -- plumbing -------------------------------------------------------------
    def _send_json(self, status: int, obj: Any, close: bool = False) -> None:
        data = json.dumps(obj, separators=(",", ":"), default=str).encode("utf-8")
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        self._send_json(status, {"error": message, "status": status}, close=close)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one line per request is written by _log_request

    def _log_request(self) -> None:
        ms = (time.perf_counter() - self._t0) * 1000.0
        line = (f'{self.log_date_time_string()} {self.client_address[0]} "{self.command} {self.path}" '
                f"{getattr(self, '_status', 0)} {ms:.1f}ms")
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def _dispatch(self, routes: dict[str, Any]) -> None:
        self._t0 = time.perf_counter()
        try:
            path = self.path.split("?", 1)[0]
            handler = routes.get(path)
            if handler is None:
                known = {"/healthz", "/v1/model", "/v1/predict"}
                if path in known:
                    self._drain_small_body()
                    raise ApiError(405, f"{self.command} is not allowed on {path}")
                self._drain_small_body()
                raise ApiError(404, f"no route {self.command} {path}")
            handler()
        except ApiError as exc:
            self._error(exc.status, exc.message, close=exc.status in (411, 413))
        except Exception as exc:  # noqa: BLE001 - a request must never kill the server
            self._error(500, f"{type(exc).__name__}: {exc}", close=True)
        finally:
            try:
                self.wfile.flush()  # the answer leaves before the log line is written
            except OSError:
                self.close_connection = True
            self._log_request()

    def _drain_small_body(self) -> None:
        """Read a small unexpected body so keep-alive stays in sync; close on anything bigger."""
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and 0 < int(length) <= 65536:
            self.rfile.read(int(length))
        elif length and length != "0":
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise ApiError(411, "send the image with a Content-Length (chunked bodies are not accepted)")
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise ApiError(411, "Content-Length required")
        try:
            length = int(raw)
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
        if length < 0:
            raise ApiError(400, "bad Content-Length")
        if length > self.max_body:
            raise ApiError(413, f"body of {length} bytes is over the limit of {self.max_body} bytes")
        return self.rfile.read(length)

    # -- routes ---------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch({"/healthz": self._healthz, "/v1/model": self._model})

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch({"/healthz": self._healthz})

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch({"/v1/predict": self._predict})

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch({})

    do_DELETE = do_PATCH = do_PUT

    def _healthz(self) -> None:
        self._send_json(200, {"ok": True, "device": self.service.device, "model": self.service.manifest.get("id"),
                              "uptime_s": round(time.time() - self.service.started, 1),
                              "fallback_reason": self.service.fallback_reason, "edgetpu": self.service.edgetpu})

    def _model(self) -> None:
        self._send_json(200, self.service.describe())

    def _predict(self) -> None:
        body = self._read_body()
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        if ctype.lower().startswith("multipart/form-data"):
            body = _multipart_file(ctype, body)
        options = _query_options(self.path)
        self._send_json(200, self.service.predict(body, **options))


def make_server(service: ModelService, host: str, port: int, max_body: int = DEFAULT_MAX_BODY) -> ThreadingHTTPServer:
    """A threading HTTP server bound to ``host:port`` serving ``service``."""
    handler = type("BoundHandler", (Handler,), {"service": service, "max_body": max_body})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main() -> int:
    port = _env_int("PORT", 8080)
    host = os.environ.get("BIND_ADDRESS", "0.0.0.0")
    model_dir = os.environ.get("MODEL_DIR") or str(HERE / "model")
    max_body = _env_int("MAX_BODY_BYTES", DEFAULT_MAX_BODY)
    service = ModelService(model_dir, device=os.environ.get("DEVICE", "auto"),
                           draft=os.environ.get("JPEG_DRAFT", "1").strip().lower() not in ("0", "false", "no", "off"),
                           max_pixels=_env_int("MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))
    server = make_server(service, host, port, max_body=max_body)
    info = service.describe()
    sys.stderr.write(f"serving model {info['id']} ({info['task']}, {len(info['labels'])} labels) on "
                     f"http://{host}:{server.server_address[1]} device={info['device']}"
                     f" [{service.edgetpu.get('summary') or service.edgetpu.get('error')}]"
                     + (f" (fallback: {info['fallback_reason']})" if info["fallback_reason"] else "") + "\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # docker stop sends SIGTERM; PID 1 would otherwise ignore it


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    sys.exit(main())
