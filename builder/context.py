"""Build contexts for robot images: a model artefact + the model server + coral_runtime.

A context is a fresh folder that ``docker build`` can use as it is (and that the studio
offers as a zip)::

    Dockerfile          rendered from templates/Dockerfile.<profile>, with every label
    README.md           run instructions, API, labels
    requirements.txt    the Python packages of the image (pinned to the studio's versions)
    app/server.py       the model server (templates/server.py)
    app/coral_runtime/  shipped as it is in the studio (Predictor, decode, adapters, interpreter …)
    app/core/…          the few core modules coral_runtime imports (data/boxes, data/annotations …)
    model/              manifest.json, labels.txt, model_int8.tflite [, model_int8_edgetpu.tflite]
    wheelhouse/         wheels for pip install --no-index (coral: --require-hashes)
    deb/                profile "coral" only: the checked libedgetpu .deb (builder/coral_context.py)

Profiles: ``offline`` (no network during the build; wheels downloaded on the studio host; CPU
unless the base image has libedgetpu) and ``coral`` (the pinned libedgetpu + ai-edge-litert pair of
builder/runtime_pins.py, every file checked by sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Callable, Iterable

from builder.errors import ContextError
from builder.shipping import (CORE_MODULES, SERVER_RUNTIME_MODULES, _core_imports, _core_imports_by_text,  # noqa: F401
                              _py_files, resolve_core_module, ship_runtime, source_root)
from core.data import artefacts

PROFILES = ("offline", "coral")
DEFAULT_BASE_IMAGE = "studio/bookworm-python:latest"
ENV_BASE_IMAGE = "STUDIO_BASE_IMAGE"
ENV_WHEELHOUSE_CACHE = "STUDIO_WHEELHOUSE_CACHE"
RUNTIME_PACKAGES = ("ai-edge-litert", "numpy", "pillow")
IMAGE_PYTHON = "3.11"  # python3 of Debian bookworm, the base image's
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
ROBOT_PORT = 8080  # the model server's port on the robot
# Our model labels (reverse-DNS, as the OCI annotation rules ask).
MODEL_LABEL_PREFIX = "org.edgetpu-studio.model."
# Ohmni app labels: the names used by Ohmni's public app images, e.g. the Dockerfile of
# github.com/tphanson/ohmni-follows-me ("LABEL com.ohmnilabs.app.name=…", "…app.version=…",
# "…app.cmd=…").
OHMNI_APP_NAME = "com.ohmnilabs.app.name"
OHMNI_APP_VERSION = "com.ohmnilabs.app.version"
OHMNI_APP_CMD = "com.ohmnilabs.app.cmd"
MODEL_SKIP_SUFFIXES = (".keras", ".h5", ".ckpt")

Log = Callable[[str], None]


@dataclass
class BuildSpec:
    """What to build: which model, how, and under which name."""

    model_dir: Path
    tag: str = ""
    profile: str = "offline"
    base_image: str = ""
    app_name: str = ""
    version: str = ""
    description: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # coral profile: where the libedgetpu .deb comes from and where its hashes are recorded
    libedgetpu_deb: str = ""  # an uploaded .deb
    libedgetpu_folder: str = ""  # a folder holding the .deb
    coral_state_dir: str = ""  # recorded hashes + download cache (default: coral_context.default_state_dir)
    allow_download: bool = True

    def __post_init__(self) -> None:
        self.model_dir = Path(self.model_dir)
        if self.profile not in PROFILES:
            raise ContextError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if not self.base_image:
            self.base_image = default_base_image()
        check_image_ref(self.base_image, what="base image")
        if self.tag:
            check_image_ref(self.tag, what="tag")


@dataclass
class BuildContext:
    """A rendered build context on disk."""

    path: Path
    spec: BuildSpec
    labels: dict[str, str]
    run_command: str
    requirements: list[str]
    files: list[str] = field(default_factory=list)
    created: float = 0.0

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def network_mode(self) -> str:
        """How the build reaches the network: ``none`` (offline) or ``host`` (coral)."""
        return "none" if self.spec.profile == "offline" else "host"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["spec"]["model_dir"] = str(self.spec.model_dir)
        d["network_mode"] = self.network_mode
        return d


# -- names -------------------------------------------------------------------------------
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$")


def check_image_ref(ref: str, what: str = "image") -> str:
    """Reject image references that could not be a docker name (or could inject Dockerfile text)."""
    if not ref or len(ref) > 255 or not _REF.match(ref):
        raise ContextError(f"{what} {ref!r} is not a valid image reference (letters, digits, . _ - / : @)")
    return ref


def slug(text: str, sep: str = "-") -> str:
    s = re.sub(r"[^a-z0-9]+", sep, str(text).lower()).strip(sep)
    return s or "model"


def default_base_image() -> str:
    return os.environ.get(ENV_BASE_IMAGE) or DEFAULT_BASE_IMAGE


def default_tag(manifest: dict[str, Any]) -> str:
    """``studio/<project>-<task>:<artefact id>``, all lowercase."""
    name = slug(f"{manifest.get('project') or 'model'}-{manifest.get('task') or 'model'}")
    version = slug(str(manifest.get("id") or "latest"), sep="-")[:120]
    return f"studio/{name}:{version}"


def default_app_name(manifest: dict[str, Any]) -> str:
    return "studio_" + slug(f"{manifest.get('project') or 'model'}_{manifest.get('task') or ''}", sep="_")


# -- requirements / wheelhouse ------------------------------------------------------------
def runtime_requirements() -> list[str]:
    """The image's Python packages, pinned to the versions the studio itself runs (same results)."""
    out = []
    for dist in RUNTIME_PACKAGES:
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(dist)
    return out


def _platform_args() -> list[str]:
    # bookworm has glibc 2.36: accept every manylinux tag up to it (wheels carry 2_17 … 2_28 tags).
    args = ["--platform", "manylinux2014_x86_64"]
    for minor in range(17, 37):
        args += ["--platform", f"manylinux_2_{minor}_x86_64"]
    return args


def wheelhouse_cache_root() -> Path:
    raw = os.environ.get(ENV_WHEELHOUSE_CACHE)
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "edgetpu-studio" / "wheelhouse"


def ensure_wheelhouse(requirements: Iterable[str], cache_root: Path | None = None, log: Log | None = None,
                      python_version: str = IMAGE_PYTHON, timeout: float = 900) -> Path:
    """A folder of manylinux x86-64 wheels for ``requirements`` (downloaded once, then cached).

    Runs ``pip download --only-binary=:all: --platform manylinux… --python-version 3.11`` on this
    host; raises ContextError with pip's last lines when the download fails.
    """
    reqs = sorted(requirements)
    key = hashlib.sha256(json.dumps([reqs, python_version]).encode()).hexdigest()[:12]
    root = Path(cache_root) if cache_root else wheelhouse_cache_root()
    target = root / f"py{python_version.replace('.', '')}-{key}"
    if (target / ".complete").exists():
        return target
    partial = root / f".partial-{key}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
           *_platform_args(), "--python-version", python_version, "--implementation", "cp",
           "-d", str(partial), *reqs]
    if log:
        log(f"downloading wheels for {', '.join(reqs)} (python {python_version}, manylinux x86-64)")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise ContextError(f"pip download took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ContextError(f"could not download the wheels for the offline image:\n{tail}")
    (partial / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
    (partial / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), encoding="utf-8")
    try:
        os.replace(partial, target)
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    if log:
        size = sum(p.stat().st_size for p in target.glob("*.whl"))
        log(f"wheelhouse ready: {len(list(target.glob('*.whl')))} wheels, {size / 1e6:.1f} MB")
    return target


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# -- labels, Dockerfile, README --------------------------------------------------------------
def _metrics_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    m = (manifest.get("metrics") or {}).get("int8") or (manifest.get("metrics") or {}).get("float") or {}
    keep = ("accuracy", "mAP", "mAP50")
    return {k: round(float(m[k]), 4) for k in keep if isinstance(m.get(k), (int, float))}


def run_command(tag: str, app_name: str) -> str:
    """The docker run line for an x86-64 Ohmni robot with a Coral USB Accelerator: privileged with
    all of /dev (the Accelerator re-enumerates from 1a6e:089a to 18d1:9302 on first use), the host's
    network (the server answers on the robot's address, port 8080), restarted after reboots."""
    return (f"docker run -d --restart unless-stopped --name {app_name} --privileged --network host "
            f"-v /dev:/dev -e PORT={ROBOT_PORT} {tag}")


def image_labels(manifest: dict[str, Any], spec: BuildSpec, created: float) -> dict[str, str]:
    """OCI labels + model labels + Ohmni app labels for the image."""
    tag = spec.tag or default_tag(manifest)
    app = spec.app_name or default_app_name(manifest)
    version = spec.version or str(manifest.get("id") or tag.rsplit(":", 1)[-1])
    task = str(manifest.get("task") or "")
    labels_list = [str(x) for x in manifest.get("labels") or []]
    title = f"{manifest.get('project') or 'model'} {task} model server".strip()
    description = spec.description or (
        f"Edge TPU {task} model '{manifest.get('project')}' ({len(labels_list)} labels) served over HTTP")
    created_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": created_iso,
        "org.opencontainers.image.description": description,
        "org.opencontainers.image.base.name": spec.base_image,
        MODEL_LABEL_PREFIX + "name": str(manifest.get("project") or ""),
        MODEL_LABEL_PREFIX + "id": str(manifest.get("id") or ""),
        MODEL_LABEL_PREFIX + "version": version,
        MODEL_LABEL_PREFIX + "task": task,
        MODEL_LABEL_PREFIX + "labels": ",".join(labels_list)[:2000],
        MODEL_LABEL_PREFIX + "dataset-hash": str(manifest.get("dataset_hash") or ""),
        MODEL_LABEL_PREFIX + "metrics": json.dumps(_metrics_summary(manifest), sort_keys=True),
        MODEL_LABEL_PREFIX + "profile": spec.profile,
        OHMNI_APP_NAME: app,
        OHMNI_APP_VERSION: version,
        OHMNI_APP_CMD: run_command(tag, app),
    }


def _quote(value: str) -> str:
    """A Dockerfile double-quoted word: no newlines, escaped backslash, quote and dollar."""
    v = " ".join(str(value).split())
    v = v.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{v}"'


def render_labels(labels: dict[str, str]) -> str:
    lines = [f"      {k}={_quote(v)}" for k, v in labels.items()]
    return "LABEL \\\n" + " \\\n".join(lines)


def _template(name: str) -> str:
    return resources.files("builder").joinpath("templates", name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, Any]) -> str:
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", str(v))
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise ContextError(f"template placeholders left unfilled: {sorted(set(left))}")
    return text


def render_dockerfile(spec: BuildSpec, labels: dict[str, str], tag: str, extra: dict[str, Any] | None = None) -> str:
    """The Dockerfile text for the spec's profile (``extra``: the coral profile's pinned values)."""
    return _fill(_template(f"Dockerfile.{spec.profile}"), {
        "TAG": tag, "BASE_IMAGE": spec.base_image, "LABELS": render_labels(labels),
        "MAX_BODY_BYTES": int(spec.max_body_bytes), **(extra or {}),
    })


def render_readme(manifest: dict[str, Any], spec: BuildSpec, labels: dict[str, str], tag: str,
                  has_edgetpu: bool) -> str:
    lab = [str(x) for x in manifest.get("labels") or []]
    shown = ", ".join(lab[:12]) + (" …" if len(lab) > 12 else "")
    size = manifest.get("input_size")
    return _fill(_template("README.md.tmpl"), {
        "TITLE": labels["org.opencontainers.image.title"],
        "MODEL_NAME": manifest.get("project") or "model", "TASK": manifest.get("task") or "?",
        "NUM_LABELS": len(lab), "LABELS": shown or "-", "CREATED": labels["org.opencontainers.image.created"],
        "TAG": tag, "PROFILE": spec.profile,
        "PROFILE_NOTE": ("built without network from the wheels in wheelhouse/; CPU unless the base image has "
                         "the Edge TPU runtime" if spec.profile == "offline" else
                         "Debian + the pinned libedgetpu / ai-edge-litert pair (docs/CORAL_RUNTIME.md), "
                         "each file checked by sha256"),
        "BASE_IMAGE": spec.base_image, "MODEL_ID": manifest.get("id") or "?",
        "DATASET_HASH": manifest.get("dataset_hash") or "?",
        "INPUT_SIZE": "x".join(str(x) for x in size) if isinstance(size, list) else "?",
        "METRICS": json.dumps(_metrics_summary(manifest)) or "-",
        "EDGETPU_NOTE": ("compiled (model_int8_edgetpu.tflite) — runs on the Edge TPU when one is attached"
                         if has_edgetpu else "not compiled — the int8 model runs on the CPU"),
        "BUILD_NETWORK": "none" if spec.profile == "offline" else "host",
        "RUN_CMD": labels[OHMNI_APP_CMD], "MAX_BODY_BYTES": int(spec.max_body_bytes),
        "APP_NAME": labels[OHMNI_APP_NAME],
        "LABEL_LINES": "\n".join(f"{k}={v}" for k, v in labels.items()),
    })


def coral_repo_host(dockerfile_text: str) -> str | None:
    """The host of the libedgetpu download named in a rendered coral Dockerfile (for reachability checks)."""
    m = re.search(r"^ARG LIBEDGETPU_URL=(\S+)", dockerfile_text, re.M)
    if not m:
        return None
    from urllib.parse import urlsplit

    return urlsplit(m.group(1)).hostname


# -- the context ---------------------------------------------------------------------------
def _model_files(model_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    files = {artefacts.MANIFEST, artefacts.LABELS}
    for key, name in (manifest.get("files") or {}).items():
        if key != "float" and isinstance(name, str) and not name.endswith(MODEL_SKIP_SUFFIXES):
            files.add(name)
    for name in (artefacts.INT8_MODEL, artefacts.EDGETPU_MODEL):
        if (model_dir / name).exists():
            files.add(name)
    out = []
    for name in sorted(files):
        p = model_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ContextError(f"manifest names a file outside the model folder: {name!r}")
        if not p.is_file():
            if name == artefacts.LABELS:
                continue
            raise ContextError(f"model file {name} is missing in {model_dir}")
        out.append(p)
    if not any(p.suffix == ".tflite" for p in out):
        raise ContextError(f"{model_dir} has no .tflite model to serve")
    return out


def make_context(spec: BuildSpec, out_dir: Path, log: Log | None = None, wheelhouse: Path | None = None,
                 src_root: Path | None = None) -> BuildContext:
    """Render a complete build context for ``spec`` into the (new or empty) folder ``out_dir``."""
    log = log or (lambda _line: None)
    manifest = artefacts.load_manifest(spec.model_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ContextError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    created = time.time()
    tag = spec.tag or default_tag(manifest)
    spec.tag = tag
    labels = image_labels(manifest, spec, created)

    app = out_dir / "app"
    app.mkdir()
    files = [str(Path("app") / p) for p in ship_runtime(app, src_root)]
    shutil.copy2(Path(__file__).parent / "templates" / "server.py", app / "server.py")
    files.append("app/server.py")
    model_out = out_dir / "model"
    model_out.mkdir()
    model_files = _model_files(spec.model_dir, manifest)
    for p in model_files:
        shutil.copy2(p, model_out / p.name)
        files.append(f"model/{p.name}")
    has_edgetpu = (model_out / artefacts.EDGETPU_MODEL).exists()
    log(f"model {manifest.get('id')}: {', '.join(p.name for p in model_files)}")

    reqs = runtime_requirements()
    extra: dict[str, Any] = {}
    if spec.profile == "coral":
        from builder import coral_context  # noqa: PLC0415

        more, extra, reqs = coral_context.add_coral_runtime(
            out_dir, reqs, ensure_wheelhouse=ensure_wheelhouse, log=log, state_dir=spec.coral_state_dir or None,
            deb_upload=spec.libedgetpu_deb or None, deb_folder=spec.libedgetpu_folder or None,
            allow_download=spec.allow_download, wheelhouse=wheelhouse)
        files += more
    (out_dir / "requirements.txt").write_text(
        _fill(_template("requirements.txt"), {"REQUIREMENTS": "\n".join(reqs)}), encoding="utf-8")
    files.append("requirements.txt")
    if spec.profile == "offline":
        wh = Path(wheelhouse) if wheelhouse else ensure_wheelhouse(reqs, log=log)
        dest = out_dir / "wheelhouse"
        dest.mkdir()
        wheels = sorted(wh.glob("*.whl"))
        if not wheels:
            raise ContextError(f"the wheelhouse {wh} has no wheels")
        for w in wheels:
            _link_or_copy(w, dest / w.name)
            files.append(f"wheelhouse/{w.name}")
        (dest / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        files.append("wheelhouse/requirements.txt")

    (out_dir / "Dockerfile").write_text(render_dockerfile(spec, labels, tag, extra), encoding="utf-8")
    (out_dir / "README.md").write_text(render_readme(manifest, spec, labels, tag, has_edgetpu), encoding="utf-8")
    (out_dir / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    files += ["Dockerfile", "README.md", ".dockerignore"]
    ctx = BuildContext(path=out_dir, spec=spec, labels=labels, run_command=labels[OHMNI_APP_CMD],
                       requirements=reqs, files=sorted(files), created=created)
    log(f"build context ready in {out_dir} ({len(files)} files, profile {spec.profile}, tag {tag})")
    return ctx


def zip_context(context_dir: Path, out_zip: Path) -> Path:
    """Zip a build context (streamed file by file; wheels stored, text deflated)."""
    context_dir, out_zip = Path(context_dir), Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for p in sorted(context_dir.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                comp = zipfile.ZIP_STORED if p.suffix in (".whl", ".tflite") else zipfile.ZIP_DEFLATED
                zf.write(p, arcname=str(p.relative_to(context_dir)), compress_type=comp)
    os.replace(tmp, out_zip)
    return out_zip
