"""Run a program of a robot image on an emulated CPU without AVX (qemu-user, ``-cpu Westmere``).

Debian's ``qemu-user`` runs x86-64 programs with a chosen CPU model; Westmere has SSE4.2 and no
AVX, like the Intel Atom x5-Z8350 reported in Ohmni robots. ``bundle()`` copies qemu-x86_64, the
libraries it links and the host's dynamic loader into a folder that is mounted into the image's
container: there ``/qemu/ld-linux-x86-64.so.2 --library-path /qemu/lib /qemu/qemu-x86_64 -cpu
Westmere /usr/bin/python3 …`` runs the IMAGE's own Python, site-packages and shipped code under
emulation, nothing of the host but qemu itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

QEMU = "qemu-x86_64"
NO_AVX_CPU = "Westmere"
AVX_PROGRAM = r"""
#include <stdio.h>
int main(void) {
  float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];
  __asm__ volatile("vmovups %1, %%ymm0\n\tvaddps %%ymm0, %%ymm0, %%ymm0\n\tvmovups %%ymm0, %0"
                   : "=m"(b) : "m"(a) : "xmm0");
  printf("%g\n", b[7]);
  return 0;
}
"""


def available() -> bool:
    return shutil.which(QEMU) is not None and shutil.which("ldd") is not None


def bundle(dest: Path) -> Path:
    """``dest`` with qemu-x86_64, its shared libraries (lib/) and the dynamic loader."""
    qemu = Path(shutil.which(QEMU) or QEMU).resolve()
    (dest / "lib").mkdir(parents=True, exist_ok=True)
    shutil.copy2(qemu, dest / QEMU)
    out = subprocess.run(["ldd", str(qemu)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+) \(", line)
        if m:
            shutil.copy2(Path(m.group(2)).resolve(), dest / "lib" / m.group(1))
        elif "ld-linux" in line:
            loader = line.split()[0]
            shutil.copy2(Path(loader).resolve(), dest / "ld-linux-x86-64.so.2")
    return dest


def avx_program(dest: Path) -> Path:
    """A tiny program that executes one AVX instruction (the negative control)."""
    src = dest / "avx.c"
    src.write_text(AVX_PROGRAM, encoding="utf-8")
    out = dest / "avx"
    subprocess.run(["gcc", "-O0", "-o", str(out), str(src)], check=True, capture_output=True, text=True)
    return out


def command(*argv: str, cpu: str = NO_AVX_CPU) -> list[str]:
    """The container command running ``argv`` under the bundled qemu (mounted at /qemu)."""
    return ["/qemu/ld-linux-x86-64.so.2", "--library-path", "/qemu/lib", f"/qemu/{QEMU}", "-cpu", cpu, *argv]
