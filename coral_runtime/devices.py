"""Find Coral Edge TPUs: pycoral's ``list_edge_tpus`` where it is importable, else sysfs and /dev.

A USB Accelerator shows up as 1a6e:089a (Global Unichip, before the runtime loads its firmware) or
18d1:9302 (Google, after); a PCIe/M.2 module as ``/dev/apex_N``. Device strings follow pycoral:
``":N"`` (N-th Edge TPU of any kind), ``"usb:N"``, ``"pci:N"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

USB_IDS = {("1a6e", "089a"): "Global Unichip (no firmware yet)", ("18d1", "9302"): "Google (runtime loaded)"}


@dataclass(frozen=True)
class EdgeTpu:
    type: str  # "usb" | "pci"
    path: str  # sysfs folder of the USB device, or /dev/apex_N
    index: int = 0  # N-th device of its type
    description: str = ""

    @property
    def device(self) -> str:
        """The delegate's device string for this Edge TPU (``usb:0``, ``pci:1`` …)."""
        return f"{self.type}:{self.index}"

    @property
    def label(self) -> str:
        return f"Coral {self.type.upper()} Edge TPU {self.index} ({self.device})"


def _from_pycoral() -> list[EdgeTpu] | None:
    try:
        from pycoral.utils.edgetpu import list_edge_tpus as _list  # Google's pycoral (Python <= 3.9)
    except Exception:  # noqa: BLE001 - not installed, or the PyPI namesake without that module
        return None
    try:
        found = _list()
    except Exception:  # noqa: BLE001
        return None
    out: list[EdgeTpu] = []
    counts: dict[str, int] = {}
    for d in found:
        kind = str(d.get("type", "usb"))
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        out.append(EdgeTpu(kind, str(d.get("path", "")), n, "pycoral"))
    return out


def _read(p: Path) -> str:
    try:
        return p.read_text(encoding="ascii", errors="replace").strip().lower()
    except OSError:
        return ""


def scan_sysfs(sysfs_root: str | Path = "/sys", dev_root: str | Path = "/dev") -> list[EdgeTpu]:
    """Edge TPUs seen in ``<sysfs_root>/bus/usb/devices/*/idVendor,idProduct`` and ``<dev_root>/apex_*``."""
    out: list[EdgeTpu] = []
    usb = Path(sysfs_root) / "bus" / "usb" / "devices"
    n = 0
    if usb.is_dir():
        for d in sorted(usb.iterdir(), key=lambda p: p.name):
            ids = (_read(d / "idVendor"), _read(d / "idProduct"))
            if ids in USB_IDS:
                out.append(EdgeTpu("usb", str(d), n, USB_IDS[ids]))
                n += 1
    dev = Path(dev_root)
    if dev.is_dir():
        apex = sorted(dev.glob("apex_*"), key=lambda p: (len(p.name), p.name))
        for i, p in enumerate(apex):
            out.append(EdgeTpu("pci", str(p), i, "PCIe/M.2 (apex driver)"))
    return out


def list_edge_tpus(sysfs_root: str | Path | None = None, dev_root: str | Path | None = None,
                   use_pycoral: bool = True) -> list[EdgeTpu]:
    """Every Edge TPU this machine can see (pycoral first, else sysfs + /dev)."""
    if use_pycoral and sysfs_root is None and dev_root is None:
        found = _from_pycoral()
        if found is not None:
            return found
    return scan_sysfs(sysfs_root or "/sys", dev_root or "/dev")


def device_choices(tpus: list[EdgeTpu] | None = None) -> list[tuple[str, str]]:
    """(device string, label) pairs for a device selector: each Edge TPU found (``usb:N`` /
    ``pci:N``), "the first of its kind" (``usb`` / ``pci``) where there are any, then the CPU."""
    tpus = list_edge_tpus() if tpus is None else tpus
    out = [(t.device, t.label) for t in tpus]
    for kind in ("usb", "pci"):
        if any(t.type == kind for t in tpus):
            out.append((kind, f"Any Coral {kind.upper()} Edge TPU ({kind})"))
    return out + [("cpu", "CPU (LiteRT, no Edge TPU)")]
