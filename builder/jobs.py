"""The "build-image" job kind: context -> docker build -> smoke test, run by core.jobs' runner.

Params (JSON, stored with the job — never a password)::

    {"artefact_id": "…" | "model_dir": "/path", "tag": "repo:tag", "profile": "offline" | "coral",
     "base_image": "…", "smoke_test": true, "sample_image": "/path.jpg", "docker_url": "unix://…",
     "max_body_bytes": 16777216,
     "libedgetpu_deb": "/path.deb", "libedgetpu_folder": "/dir", "allow_download": true}  (coral)

Each build keeps its own folder ``<data>/builds/<job id>/`` (the job's work_dir is removed when
the job ends): ``context/`` (the build context), ``build.json`` (the result), and on request
``context.zip`` and ``image.tar.gz``. With no Docker engine the job still renders the context and
succeeds, saying so, so the context can be downloaded and built elsewhere.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from core.data import artefacts
from core.jobs import JobContext, register_job_kind
from core.data.store_recovery import register_recovery_hook

from builder import context as bc
from builder import engine
from builder.runtime_pins import ChecksumMismatch

KIND = "build-image"
BUILD_RECORD = "build.json"
_ECHO: list = []  # the CLI echoes job log lines to the terminal as they come


def set_log_echo(fn) -> None:
    """Also send every log line of build jobs in this process to ``fn`` (None to stop)."""
    _ECHO.clear()
    if fn is not None:
        _ECHO.append(fn)


class _Logger:
    def __init__(self, ctx: JobContext):
        self.ctx = ctx

    def __call__(self, line: str) -> None:
        self.ctx.log(line)
        for fn in list(_ECHO):
            try:
                fn(line)
            except Exception:  # noqa: BLE001 - a terminal problem must not kill the build
                pass


def coral_state_dir(data_root: Path) -> Path:
    """Recorded libedgetpu hashes, uploads and the download cache of the coral profile."""
    return Path(data_root) / "coral"


def builds_dir(data_root: Path) -> Path:
    d = Path(data_root) / "builds"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_dir(data_root: Path, build_id: str) -> Path:
    if not build_id or "/" in build_id or build_id.startswith("."):
        raise ValueError(f"bad build id {build_id!r}")
    return builds_dir(data_root) / build_id


def load_build(data_root: Path, build_id: str) -> dict[str, Any]:
    """The record of one build (raises FileNotFoundError when there is none)."""
    return json.loads((build_dir(data_root, build_id) / BUILD_RECORD).read_text(encoding="utf-8"))


def list_builds(data_root: Path, artefact_id: str | None = None) -> list[dict[str, Any]]:
    """Build records, newest first (optionally of one model)."""
    out = []
    for d in builds_dir(data_root).iterdir():
        f = d / BUILD_RECORD
        if not f.is_file():
            continue
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if artefact_id and rec.get("artefact_id") != artefact_id:
            continue
        out.append(rec)
    out.sort(key=lambda r: r.get("created", 0), reverse=True)
    return out


def _write_record(folder: Path, rec: dict[str, Any]) -> None:
    artefacts.write_json_atomic(folder / BUILD_RECORD, rec)


def context_zip(data_root: Path, build_id: str) -> Path:
    """The build context of a build as a zip (made on first request)."""
    d = build_dir(data_root, build_id)
    out = d / "context.zip"
    if not out.exists():
        bc.zip_context(d / "context", out)
    return out


IMAGE_ARCHIVE = "image.tar.gz"


def image_archive_ready(data_root: Path, build_id: str) -> Path | None:
    """The build's gzipped ``docker save`` archive when it was already made, else None."""
    out = build_dir(data_root, build_id) / IMAGE_ARCHIVE
    return out if out.is_file() else None


def image_archive(data_root: Path, build_id: str, base_url: str | None = None,
                  on_progress: Callable[[int], None] | None = None) -> Path:
    """``docker save`` of a build's image, gzipped (made on first request, streamed to disk);
    ``on_progress(bytes saved so far)`` while it is being made."""
    from builder.docker import save_image_gz

    d = build_dir(data_root, build_id)
    rec = load_build(data_root, build_id)
    if not rec.get("image_id"):
        raise ValueError("this build has no image (no Docker engine was reachable)")
    out = d / IMAGE_ARCHIVE
    if not out.exists():
        save_image_gz(rec["tag"], out, base_url=base_url, on_progress=on_progress)
    return out


def synthetic_sample(size: tuple[int, int] = (320, 240)) -> bytes:
    """A deterministic JPEG (gradients + shapes) for smoke tests when no photo is at hand."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = (x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h))
    d = ImageDraw.Draw(im)
    d.ellipse((w // 4, h // 4, w // 2, h // 2 + 20), fill=(90, 90, 90))
    d.rectangle((w // 2, h // 3, w - 30, h - 30), fill=(200, 180, 40))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _sample_bytes(ctx: JobContext, params: dict, manifest: dict) -> tuple[bytes, str]:
    """The smoke test's image: params["sample_image"], else the model's project's first image, else synthetic."""
    if params.get("sample_image"):
        p = Path(params["sample_image"])
        return p.read_bytes(), p.name
    try:
        project = ctx.store.get_project(manifest["project"])
        ids = ctx.store.image_ids(project)
        if ids:
            return ctx.store.read_image_bytes(ids[0]), f"project image {ids[0][:12]}"
    except Exception:  # noqa: BLE001 - no project (e.g. a model folder from elsewhere)
        pass
    return synthetic_sample(), "synthetic image"


def _has_image(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        return False


def resolve_model_dir(data_root: Path, params: dict) -> Path:
    if params.get("model_dir"):
        return Path(params["model_dir"])
    if params.get("artefact_id"):
        return artefacts.artefact_path(data_root, params["artefact_id"])
    raise ValueError("a build-image job needs 'artefact_id' or 'model_dir'")


def run_build_image(ctx: JobContext, params: dict) -> str | None:
    """The job: render the context, build (if an engine answers), smoke-test; returns the model's id."""
    from builder import docker as bd

    root = ctx.store.root
    log = _Logger(ctx)
    model_dir = resolve_model_dir(root, params)
    manifest = artefacts.load_manifest(model_dir)
    spec = bc.BuildSpec(model_dir=model_dir, tag=params.get("tag") or "", profile=params.get("profile") or "offline",
                        base_image=params.get("base_image") or "",
                        max_body_bytes=int(params.get("max_body_bytes") or bc.DEFAULT_MAX_BODY_BYTES),
                        libedgetpu_deb=params.get("libedgetpu_deb") or "",
                        libedgetpu_folder=params.get("libedgetpu_folder") or "",
                        coral_state_dir=str(coral_state_dir(root)),
                        allow_download=params.get("allow_download", True))
    folder = build_dir(root, ctx.job_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rec: dict[str, Any] = {"id": ctx.job_id, "job_id": ctx.job_id, "artefact_id": manifest.get("id"),
                           "model_dir": str(model_dir), "profile": spec.profile, "base_image": spec.base_image,
                           "created": time.time(), "status": "context", "docker": False}
    ctx.progress(fraction=0.02, message="Rendering the build context")
    t0 = time.monotonic()
    try:
        built = bc.make_context(spec, folder / "context", log=log)
    except ChecksumMismatch as exc:  # the build stops; the Deploy page offers to confirm the new hash
        rec.update(status="checksum-mismatch", message=str(exc), expected_sha256=exc.expected, got_sha256=exc.got)
        _write_record(folder, rec)
        raise
    rec.update(tag=built.spec.tag, labels=built.labels, run_command=built.run_command,
               context_dir=str(built.path), context_seconds=round(time.monotonic() - t0, 2))
    _write_record(folder, rec)
    ctx.check_cancelled()

    base_url = params.get("docker_url")
    info = engine.find_engine(base_url)
    if not info.reachable:
        log(info.message)
        rec.update(status="no-engine", message=info.message)
        _write_record(folder, rec)
        ctx.progress(fraction=1.0, message="No Docker engine: the build context is ready to download",
                     metrics={"build_id": ctx.job_id, "docker": 0})
        return manifest.get("id")

    client = engine.require_engine(base_url)
    try:
        if spec.profile == "offline" and not _has_image(client, spec.base_image):
            msg = (f"The base image {spec.base_image} is not on this Docker engine, and the offline profile "
                   f"cannot download it. Make it with scripts/make_base_image.sh {spec.base_image} "
                   f"(debootstrap + docker import, as root) or choose a base image the engine has.")
            rec.update(status="no-base-image", message=msg)
            _write_record(folder, rec)
            raise ValueError(msg)
        ctx.progress(fraction=0.1, message=f"Building {built.spec.tag} ({spec.profile}) on {info.message}")
        rec["engine"] = info.to_dict()
        try:
            result = bd.build_image(built, on_log=log, client=client, check_cancelled=ctx.check_cancelled)
        except bd.BuildError as exc:
            rec.update(status="build-failed", message=str(exc), log_tail=exc.log_tail)
            _write_record(folder, rec)
            raise
        rec.update(status="built", docker=True, image_id=result.image_id, size_bytes=result.size_bytes,
                   build_seconds=result.seconds)
        _write_record(folder, rec)
        ctx.progress(fraction=0.8, message=f"Built {result.tag} ({result.size_bytes / 1e6:.0f} MB)",
                     metrics={"build_id": ctx.job_id, "image_id": result.image_id, "size_bytes": result.size_bytes,
                              "build_seconds": result.seconds})
        if params.get("smoke_test", True):
            ctx.check_cancelled()
            sample, what = _sample_bytes(ctx, params, manifest)
            log(f"smoke test on {what}")
            smoke = bd.smoke_test(result.tag, model_dir, sample, client=client, on_log=log)
            for line in smoke.container_log[-20:]:
                log(f"[container] {line}")
            rec["smoke_test"] = {k: v for k, v in smoke.to_dict().items() if k != "container_log"}
            rec["status"] = "tested" if smoke.ok else "smoke-test-failed"
            _write_record(folder, rec)
            ctx.progress(fraction=1.0, message=("Built and smoke-tested" if smoke.ok else
                                                f"Built; smoke test FAILED: {smoke.message}"),
                         metrics={"smoke_ok": int(smoke.ok), "smoke_startup_s": smoke.startup_seconds})
            if not smoke.ok:
                raise RuntimeError(f"smoke test failed: {smoke.message}")
        else:
            ctx.progress(fraction=1.0, message=f"Built {result.tag}")
    finally:
        client.close()
    return manifest.get("id")



def context_zip_opener(data_root: Path, build_id: str):
    """A no-argument callable for ``st.download_button(data=…)``: zips once, then opens the file."""
    return lambda: open(context_zip(data_root, build_id), "rb")


def image_archive_opener(data_root: Path, build_id: str, base_url: str | None = None):
    """A no-argument callable for ``st.download_button(data=…)``: ``docker save | gzip`` to the build
    folder once (streamed), then opens the file."""
    return lambda: open(image_archive(data_root, build_id, base_url=base_url), "rb")


register_job_kind(KIND, run_build_image)
FINAL_STATUSES = ("no-engine", "no-base-image", "build-failed", "built", "tested", "smoke-test-failed",
                  "interrupted")


def recover_builds(store, job_ids: list[str]) -> None:
    """Builds whose job died (kill -9, power cut): their half-rendered context goes; a record that
    was written says "interrupted", so the Deploy page tells what happened."""
    for job_id in job_ids:
        try:
            folder = build_dir(store.root, job_id)
        except ValueError:
            continue
        if not folder.is_dir():
            continue
        try:
            rec = load_build(store.root, job_id)
        except (OSError, json.JSONDecodeError):
            shutil.rmtree(folder, ignore_errors=True)  # died before its record: nothing to show
            continue
        if rec.get("status") in FINAL_STATUSES:
            continue
        shutil.rmtree(folder / "context", ignore_errors=True)
        (folder / "context.zip").unlink(missing_ok=True)
        rec.update(status="interrupted", message="The studio stopped during this build; build the image again.")
        _write_record(folder, rec)


register_recovery_hook(recover_builds)
