"""A libedgetpu-shaped .deb built in the test with dpkg-deb from a DUMMY payload.

It only exercises the checksum and install steps of the coral profile (sha256 checks, ``dpkg -i``
of a package that declares libgcc1 and libusb-1.0-0, the loader check): its library is a stand-in
compiled with gcc (tests/coral_runtime/fake_libedgetpu.py, kind ``dummy``) that reports a version
string and never makes a delegate. It is NOT libedgetpu and proves nothing about a Coral.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from builder import runtime_pins as rp
from tests.coral_runtime import fake_libedgetpu as fake

CONTROL = """Package: libedgetpu1-std
Version: {version}
Architecture: amd64
Maintainer: Studio tests <tests@localhost>
Provides: libedgetpu1 (= {version})
Depends: libc6, libgcc1, libstdc++6, libusb-1.0-0
Description: DUMMY stand-in for the Edge TPU runtime (test payload only)
 Built by the studio's tests to check the checksum and install steps; not libedgetpu.
"""


def can_build() -> bool:
    return shutil.which("dpkg-deb") is not None and fake.have_gcc()


def build_deb(folder: Path, version: str = rp.LIBEDGETPU.version, name: str = rp.LIBEDGETPU.filename) -> Path:
    """``folder/name``: a .deb with usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0 (+ .so.1 link)."""
    root = folder / "pkgroot"
    lib_dir = root / "usr" / "lib" / "x86_64-linux-gnu"
    lib_dir.mkdir(parents=True, exist_ok=True)
    so = fake.build(folder / "lib", "dummy")
    shutil.copy2(so, lib_dir / "libedgetpu.so.1.0")
    link = lib_dir / "libedgetpu.so.1"
    if not link.is_symlink():
        link.symlink_to("libedgetpu.so.1.0")
    (root / "DEBIAN").mkdir(exist_ok=True)
    (root / "DEBIAN" / "control").write_text(CONTROL.format(version=version), encoding="utf-8")
    out = folder / name
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)], check=True,
                   capture_output=True, text=True)
    return out
