"""The ``coral`` profile's part of a build context: the checked libedgetpu .deb and the hashed wheels.

``add_coral_runtime`` puts into the context folder::

    deb/<libedgetpu .deb>       resolved by runtime_pins.resolve_deb (upload, folder, or pinned download)
    wheelhouse/*.whl            the pinned ai-edge-litert wheel (sha256 checked) + numpy, pillow, flatbuffers
    wheelhouse/requirements.txt every wheel with --hash=sha256:… (pip --require-hashes)

and returns the Dockerfile's values (URL, file name, sha256 of the .deb; the wheel's pin). When no
.deb can be had here (offline, nothing supplied) the context is still made with an empty deb/: its
Dockerfile then downloads the pinned URL at build time and checks the same sha256.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from builder import runtime_pins as rp

ENV_STATE = "STUDIO_CORAL_STATE"


def default_state_dir() -> Path:
    """Where recorded hashes and the downloaded .deb live when no data folder is given."""
    raw = os.environ.get(ENV_STATE)
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "edgetpu-studio" / "coral"


def add_coral_runtime(out_dir: Path, studio_requirements: list[str], *, ensure_wheelhouse: Callable[..., Path],
                      log: Callable[[str], None], state_dir: str | os.PathLike[str] | None = None,
                      deb_upload: str | None = None, deb_folder: str | None = None,
                      allow_download: bool = True, wheelhouse: Path | None = None) -> tuple[list[str], dict[str, Any], list[str]]:
    """(context files, Dockerfile values, requirements) of the coral profile; raises
    runtime_pins.ChecksumMismatch when the .deb or the wheel is not the expected file."""
    state = Path(state_dir) if state_dir else default_state_dir()
    files: list[str] = []
    deb_dir = out_dir / rp.DEB_FOLDER
    deb_dir.mkdir()
    (deb_dir / ".keep").write_text("", encoding="utf-8")
    files.append(f"{rp.DEB_FOLDER}/.keep")
    pin = rp.LIBEDGETPU  # read at call time (tests point it at a loopback server)
    try:
        deb = rp.resolve_deb(state, uploaded=deb_upload, folder=deb_folder, allow_download=allow_download, log=log)
        shutil.copy2(deb.path, deb_dir / deb.filename)
        files.append(f"{rp.DEB_FOLDER}/{deb.filename}")
        deb_values = {"name": deb.filename, "sha256": deb.sha256, "source": deb.source}
    except rp.DebNotFound as exc:
        log(f"WARNING: {exc} The Dockerfile will download {pin.url} at build time and check sha256 {pin.sha256}.")
        deb_values = {"name": pin.filename, "sha256": pin.sha256, "source": "build-time download"}

    reqs = rp.coral_requirements(studio_requirements)
    wh = Path(wheelhouse) if wheelhouse else ensure_wheelhouse(reqs, log=log)
    rp.check_wheel(wh)
    dest = out_dir / "wheelhouse"
    dest.mkdir()
    for w in sorted(wh.glob("*.whl")):
        shutil.copy2(w, dest / w.name)
        files.append(f"wheelhouse/{w.name}")
    (dest / "requirements.txt").write_text(rp.hashed_requirements(dest, reqs), encoding="utf-8")
    files.append("wheelhouse/requirements.txt")
    log(f"coral runtime: {deb_values['name']} (sha256 {deb_values['sha256']}, {deb_values['source']}) + "
        f"{rp.RUNTIME_WHEEL.filename} (sha256 {rp.RUNTIME_WHEEL.sha256})")
    values = {
        "LIBEDGETPU_URL": pin.url, "LIBEDGETPU_DEB": deb_values["name"], "LIBEDGETPU_SHA256": deb_values["sha256"],
        "LIBEDGETPU_PACKAGE": pin.package, "LIBEDGETPU_VERSION": pin.version, "LIBEDGETPU_TF": pin.tf,
        "RUNTIME_WHEEL": rp.RUNTIME_WHEEL.filename, "RUNTIME_SHA256": rp.RUNTIME_WHEEL.sha256,
        "RUNTIME_TF": rp.RUNTIME_WHEEL.tf,
    }
    return files, values, reqs
