"""Write the GPU variants of the requirements files: ``tensorflow-cpu==V`` becomes ``tensorflow[and-cuda]==V``.

``python scripts/gpu_requirements.py OUT_DIR`` writes ``OUT_DIR/requirements-gpu.txt`` (from requirements.txt)
and ``OUT_DIR/requirements-dev-gpu.txt`` (from requirements-dev.txt, including the former instead of
requirements.txt). The version always follows the CPU pin, so the two builds never drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_PIN = re.compile(r"^\s*tensorflow-cpu\s*==\s*(?P<version>[^\s;#]+)", re.MULTILINE)


def gpu_requirements(text: str) -> str:
    """``text`` (a requirements file) with its ``tensorflow-cpu==V`` pin replaced by ``tensorflow[and-cuda]==V``."""
    if not CPU_PIN.search(text):
        raise ValueError("requirements.txt has no 'tensorflow-cpu==VERSION' pin to replace")
    return CPU_PIN.sub(lambda m: f"tensorflow[and-cuda]=={m['version']}", text)


def dev_requirements(text: str) -> str:
    """requirements-dev.txt including the GPU runtime file instead of requirements.txt."""
    return re.sub(r"^-r\s+requirements\.txt\s*$", "-r requirements-gpu.txt", text, flags=re.MULTILINE)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements-gpu.txt").write_text(gpu_requirements((ROOT / "requirements.txt").read_text()))
    (out / "requirements-dev-gpu.txt").write_text(dev_requirements((ROOT / "requirements-dev.txt").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
