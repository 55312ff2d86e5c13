"""Which Edge TPU runtime stack is installed, and whether its two halves belong together.

The two halves: the Python runtime (``ai-edge-litert``, or ``tflite-runtime``) and libedgetpu, which
is compiled against one TensorFlow version. Coral's stock ``libedgetpu1-std 16.0`` is built for
TF 2.5: with a TFLite/LiteRT newer than ~2.11 it segfaults or fails to make the delegate
(google-coral/edgetpu#812, google-coral/libedgetpu#53). Community builds carry the TF version in
their Debian version (``16.0tf2.19.1-1``). See docs/CORAL_RUNTIME.md.

The Debian package is read from dpkg's status file (``$STUDIO_DPKG_STATUS`` overrides the path);
``edgetpu_version()`` comes from the last child-process probe (``coral_runtime.probe``), never from
loading libedgetpu into this process.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

DPKG_STATUS = "/var/lib/dpkg/status"
ENV_DPKG_STATUS = "STUDIO_DPKG_STATUS"
LIBEDGETPU_PACKAGES = ("libedgetpu1-std", "libedgetpu1-max", "libedgetpu1-legacy-std", "libedgetpu1-legacy-max")
STOCK_TF = "2.5"  # the TensorFlow Coral's libedgetpu 16.0 was built against
LAST_STOCK_COMPATIBLE = (2, 11)  # the newest tflite_runtime reported to work with the stock 16.0 (edgetpu#812)
# ai-edge-litert release -> the TensorFlow line it was cut from (1.3.0 is the TF 2.20 line per
# keras-team/keras#21912; 1.2.0 is the release of the TF 2.19 cycle). Unknown versions: None.
LITERT_TF = {"1.0.1": "2.18", "1.1.0": "2.18", "1.1.1": "2.18", "1.1.2": "2.18", "1.2.0": "2.19",
             "1.3.0": "2.20", "1.4.0": "2.20"}
_TF_IN_DEB = re.compile(r"tf(\d+\.\d+(?:\.\d+)?)", re.I)


def runtime() -> dict[str, str | None]:
    """The Python TFLite runtime this process would load: name, version and its TensorFlow line."""
    for name in ("ai-edge-litert", "tflite-runtime"):
        try:
            ver = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if name == "ai-edge-litert":  # 2.x is built from LiteRT's own tree, after TensorFlow 2.20
            tf = LITERT_TF.get(ver) or ("2.20+" if _tuple(ver) >= (2, 0) else None)
        else:
            tf = ".".join(ver.split(".")[:2])
        return {"name": name, "version": ver, "tf": tf}
    return {"name": None, "version": None, "tf": None}


def _status_path(path: str | Path | None) -> Path:
    return Path(path or os.environ.get(ENV_DPKG_STATUS) or DPKG_STATUS)


def libedgetpu_packages(status_file: str | Path | None = None) -> list[dict[str, str]]:
    """Installed libedgetpu Debian packages: [{"package", "version", "tf"}] (empty without dpkg)."""
    try:
        text = _status_path(status_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", block, re.M))
        if fields.get("Package") in LIBEDGETPU_PACKAGES and "installed" in fields.get("Status", "").split():
            if fields.get("Status", "").endswith("not-installed"):
                continue
            ver = fields.get("Version", "")
            out.append({"package": fields["Package"], "version": ver, "tf": deb_tf_version(ver)})
    return out


def deb_tf_version(deb_version: str) -> str | None:
    """The TensorFlow a libedgetpu package was built for: ``16.0tf2.19.1-1`` -> ``2.19.1``;
    Coral's stock ``16.0`` / ``16.0-2`` … -> ``2.5``; anything else None."""
    m = _TF_IN_DEB.search(deb_version or "")
    if m:
        return m.group(1)
    if re.fullmatch(r"1[0-6]\.\d+(?:-\d+)?", (deb_version or "").strip()):
        return STOCK_TF
    return None


def _tuple(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or "")[:2])


def stock_runtime_problem(status_file: str | Path | None = None, rt: dict | None = None) -> str | None:
    """Why the installed pair must not be loaded (stock libedgetpu 16.0 with a runtime newer than
    TF 2.11, which crashes), or None. Only the stock pair is refused; other mismatches are warnings
    (``pair_warning``)."""
    rt = rt or runtime()
    for pkg in libedgetpu_packages(status_file):
        if pkg["tf"] != STOCK_TF or not rt.get("name"):
            continue
        newer = rt["name"] == "ai-edge-litert" or _tuple(rt.get("version")) > LAST_STOCK_COMPATIBLE
        if newer:
            return (f"{pkg['package']} {pkg['version']} is Coral's stock Edge TPU runtime, built for TensorFlow "
                    f"{STOCK_TF}; with {rt['name']} {rt['version']} it crashes or cannot make the delegate, so the "
                    "CPU is used. Install a libedgetpu built for this runtime's TensorFlow (see "
                    "docs/CORAL_RUNTIME.md).")
    return None


def pair_warning(status_file: str | Path | None = None, rt: dict | None = None) -> str | None:
    """A libedgetpu built for another TensorFlow line than the runtime's (not the stock case)."""
    rt = rt or runtime()
    for pkg in libedgetpu_packages(status_file):
        if pkg["tf"] and pkg["tf"] != STOCK_TF and rt.get("tf") and _tuple(pkg["tf"]) != _tuple(rt["tf"]):
            return (f"{pkg['package']} {pkg['version']} was built for TensorFlow {pkg['tf']}, "
                    f"{rt['name']} {rt['version']} is the TensorFlow {rt['tf']} line: they may not work together.")
    return None


def describe(status_file: str | Path | None = None) -> dict[str, Any]:
    """Runtime, libedgetpu package(s), the libedgetpu version string of the last probe, the Edge
    TPUs found and the problems — for /healthz, the pages and ``coral devices``."""
    from coral_runtime import devices, probe  # noqa: PLC0415

    rt = runtime()
    last = probe.last_probe()
    found = [{"device": t.device, "type": t.type, "path": t.path, "description": t.description}
             for t in devices.list_edge_tpus()]
    return {
        "runtime": rt,
        "libedgetpu": libedgetpu_packages(status_file),
        "libedgetpu_lib": probe.edgetpu_lib(),
        "edgetpu_version": last.edgetpu_version if last else None,
        "devices": found,
        "probe": last.to_dict() if last else None,
        "problem": stock_runtime_problem(status_file, rt),
        "warning": pair_warning(status_file, rt),
    }


def summary_line(info: dict[str, Any]) -> str:
    """``describe()`` as one line: runtime · libedgetpu · devices (· what went wrong)."""
    rt = info.get("runtime") or {}
    pkgs = info.get("libedgetpu") or []
    lib = ", ".join(f"{p['package']} {p['version']}" for p in pkgs) or "libedgetpu: no Debian package"
    if info.get("edgetpu_version"):
        lib += f" ({info['edgetpu_version']})"
    devs = ", ".join(d["device"] for d in info.get("devices") or []) or "no Edge TPU found"
    parts = [f"{rt.get('name') or 'no TFLite runtime'} {rt.get('version') or ''}".strip(), lib, devs]
    probe = info.get("probe") or {}
    if probe and not probe.get("ok"):
        parts.append(probe.get("message", ""))
    elif info.get("problem"):
        parts.append(info["problem"])
    return " · ".join(p for p in parts if p)
