"""The Edge TPU Compiler (``edgetpu_compiler``): find it, run it, and read what it says.

Usage (coral.ai "Edge TPU Compiler"): ``edgetpu_compiler [options] model...``; the output is
``<name>_edgetpu.tflite`` plus ``<name>_edgetpu.log`` in ``-o/--out_dir``. Options used here:
``-s/--show_operations`` (print the operation table), ``-o/--out_dir``, ``-m/--min_runtime_version``,
``-a/--enable_multiple_subgraphs`` (experimental), ``-t/--timeout_sec``.

The compiler exists only for x86-64 Debian from Coral's apt repository. Where it is not on PATH,
``DOCKERFILE`` + ``docker_commands()`` describe a container that users with internet can build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COMPILER = "edgetpu_compiler"
DOCKER_IMAGE = "studio-edgetpu-compiler"

# A small image with the compiler from Coral's apt repository (needs internet at build time).
DOCKERFILE = """\
FROM debian:bookworm-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \\
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \\
    | gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg \\
 && echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \\
    > /etc/apt/sources.list.d/coral-edgetpu.list \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends edgetpu-compiler \\
 && apt-get purge -y curl gnupg && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
WORKDIR /work
ENTRYPOINT ["edgetpu_compiler"]
"""


class CompilerError(RuntimeError):
    """The compiler is missing, timed out, or refused the model (``.result`` has the details)."""

    def __init__(self, message: str, result: "CompileResult | None" = None):
        super().__init__(message)
        self.result = result


@dataclass
class OpStatus:
    operator: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        return self.status.startswith("Mapped to Edge TPU")


@dataclass
class CompileResult:
    ok: bool
    version: str | None = None
    compile_ms: int | None = None
    input_model: str | None = None
    output_model: str | None = None
    input_size: str | None = None
    output_size: str | None = None
    on_chip_memory_used: str | None = None
    on_chip_memory_remaining: str | None = None
    off_chip_memory_used: str | None = None
    edgetpu_subgraphs: int | None = None
    total_ops: int | None = None
    ops_on_tpu: int | None = None
    ops_on_cpu: int | None = None
    log_file: str | None = None
    operations: list[OpStatus] = field(default_factory=list)
    error: str | None = None  # the compiler's own words
    advice: str | None = None  # what to do about it
    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    duration_s: float | None = None
    stdout: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stdout"] = self.stdout[-4000:]
        d["operations"] = [asdict(o) | {"mapped": o.mapped} for o in self.operations]
        return d


# -- finding and running ---------------------------------------------------------
def find_compiler(path: str | None = None) -> str | None:
    """Full path of ``edgetpu_compiler`` on PATH (or in ``path``), else None."""
    return shutil.which(COMPILER, path=path)


def compiler_command(model: str | Path, out_dir: str | Path, *, compiler: str = COMPILER,
                     min_runtime_version: int | None = None, multiple_subgraphs: bool = False,
                     timeout_sec: int | None = None) -> list[str]:
    """The command line: ``edgetpu_compiler -s -o OUT_DIR [-m N] [-a] [-t S] MODEL``."""
    cmd = [compiler, "-s", "-o", str(out_dir)]
    if min_runtime_version is not None:
        cmd += ["-m", str(int(min_runtime_version))]
    if multiple_subgraphs:
        cmd.append("-a")
    if timeout_sec is not None:
        cmd += ["-t", str(int(timeout_sec))]
    cmd.append(str(model))
    return cmd


def docker_commands(model: str | Path, out_dir: str | Path, image: str = DOCKER_IMAGE) -> dict[str, list[str]]:
    """How to build and run the compiler container (for users with internet; not runnable here).

    The build context is a folder holding ``Dockerfile`` = ``DOCKERFILE``. The model folder is mounted
    read-only at /in and the output folder at /out.
    """
    model = Path(model).resolve()
    out = Path(out_dir).resolve()
    return {
        "build": ["docker", "build", "-t", image, "."],
        "run": ["docker", "run", "--rm", "-v", f"{model.parent}:/in:ro", "-v", f"{out}:/out",
                image, "-s", "-o", "/out", f"/in/{model.name}"],
    }


def write_docker_context(folder: str | Path) -> Path:
    """Write the Dockerfile for the compiler image into ``folder``; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "Dockerfile"
    p.write_text(DOCKERFILE, encoding="utf-8")
    return p


def compile_model(model: str | Path, out_dir: str | Path, timeout: float = 300.0, *,
                  compiler: str | None = None, min_runtime_version: int | None = None,
                  multiple_subgraphs: bool = False, compiler_timeout_sec: int | None = None) -> CompileResult:
    """Run the compiler on one model; parse its stdout and .log into a CompileResult.

    ``timeout`` bounds the subprocess; ``compiler_timeout_sec`` is passed as ``-t`` (compiler 16's own
    timer, default 180 s there) only when given.

    Raises CompilerError when the compiler is missing. A refused model returns ``ok=False`` with
    ``error`` (the compiler's words) and ``advice``.
    """
    exe = compiler or find_compiler()
    if not exe:
        raise CompilerError(
            "edgetpu_compiler is not installed here (it exists only for x86-64 Debian/Ubuntu from "
            "Coral's apt repository: apt-get install edgetpu-compiler). Or build the container: "
            + " ".join(docker_commands(model, out_dir)["build"]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmd = compiler_command(model, out, compiler=exe, min_runtime_version=min_runtime_version,
                           multiple_subgraphs=multiple_subgraphs, timeout_sec=compiler_timeout_sec)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or None)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or "") if isinstance(exc.stdout, str) else (exc.stdout or b"").decode("utf-8", "replace")
        res = parse_output(text)
        res.ok = False
        res.error = f"the compiler did not finish within {timeout:.0f} s"
        res.advice = "Try a smaller input size or model, or raise the timeout."
        res.command = cmd
        raise CompilerError(res.error, res) from None
    text = (proc.stdout or "") + ("\n" + proc.stderr if proc.stderr else "")
    res = parse_output(text)
    res.command = cmd
    res.returncode = proc.returncode
    res.duration_s = round(time.monotonic() - t0, 3)
    stem = Path(model).stem
    log = out / f"{stem}_edgetpu.log"
    if log.exists():
        res.log_file = str(log)
        if not res.operations:
            res.operations = parse_log(log.read_text(encoding="utf-8", errors="replace"))
    expected = out / f"{stem}_edgetpu.tflite"
    if proc.returncode != 0 or not expected.exists():
        res.ok = False
        if not res.error:
            res.error = _first_error_line(text) or f"exit code {proc.returncode}"
        res.advice = res.advice or advice_for(text)
    else:
        res.ok = True  # exit 0 and the file is there, even if the summary format changed
        res.output_model = str(expected)
    return res


# -- parsing ---------------------------------------------------------------------
_SUMMARY = {
    "version": re.compile(r"Edge TPU Compiler version (\S+)"),
    "compile_ms": re.compile(r"Model compiled successfully in (\d+) ms"),
    "input_model": re.compile(r"^Input model: (.+)$", re.M),
    "input_size": re.compile(r"^Input size: (.+)$", re.M),
    "output_model": re.compile(r"^Output model: (.+)$", re.M),
    "output_size": re.compile(r"^Output size: (.+)$", re.M),
    "on_chip_memory_used": re.compile(r"On-chip memory used for caching model parameters: (\S+)"),
    "on_chip_memory_remaining": re.compile(r"On-chip memory remaining for caching model parameters: (\S+)"),
    "off_chip_memory_used": re.compile(r"Off-chip memory used for streaming uncached model parameters: (\S+)"),
    "edgetpu_subgraphs": re.compile(r"Number of Edge TPU subgraphs: (\d+)"),
    "total_ops": re.compile(r"Total number of operations: (\d+)"),
    "ops_on_tpu": re.compile(r"Number of operations that will run on Edge TPU: (\d+)"),
    "ops_on_cpu": re.compile(r"Number of operations that will run on CPU: (\d+)"),
    "log_file": re.compile(r"^Operation log: (.+)$", re.M),
}
_INT_FIELDS = {"compile_ms", "edgetpu_subgraphs", "total_ops", "ops_on_tpu", "ops_on_cpu"}
_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\S.*?)\s*$")

# The compiler's failure texts (published outputs) -> what the user can do.
_FAILURES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'"),
     "The model uses {0} version {1}, newer than this compiler's TFLite knows. Typical cause: "
     "CONV_2D v6 is a grouped convolution (use groups=1), TRANSPOSE_CONV v4 / EXP v2 come from newer "
     "converters; replace the layer or convert with an older TensorFlow. Run `python -m cli preflight` "
     "to see the op."),
    (re.compile(r"Model could not be parsed|Invalid model"),
     "The compiler could not read the file. Check that it is a full-integer TFLite model written by the "
     "studio's export (preflight lists its ops)."),
    (re.compile(r"Internal compiler error"),
     "The compiler crashed on this model (a known generic failure). Try a smaller input size, fewer "
     "layers, or `-a` off/on; preflight shows which ops are risky."),
    (re.compile(r"Model not quantized", re.I),
     "The model is not fully quantized: export it with full-integer (int8) post-training quantization."),
    (re.compile(r"Attempting to use a delegate that only supports static-sized tensors", re.I),
     "The model has dynamic tensor sizes; export with a fixed input size and batch 1."),
    (re.compile(r"Compilation failed|timed out|timeout", re.I),
     "Compilation failed: see the compiler output above; a smaller model or input size often helps."),
]


def advice_for(text: str) -> str | None:
    """An actionable message for a known compiler failure in ``text``."""
    for pat, msg in _FAILURES:
        m = pat.search(text)
        if m:
            return msg.format(*m.groups())
    return None


def _first_error_line(text: str) -> str | None:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("ERROR:") or "Internal compiler error" in s or "could not be parsed" in s:
            return s.removeprefix("ERROR:").strip()
    return None


def parse_log(text: str) -> list[OpStatus]:
    """The ``Operator  Count  Status`` table (from the .log file or ``-s`` stdout)."""
    rows: list[OpStatus] = []
    in_table = False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table = True
            rows = []
            continue
        if not in_table or not line.strip():
            continue
        m = _ROW.match(line.strip())
        if m:
            rows.append(OpStatus(m.group(1), int(m.group(2)), m.group(3)))
        elif rows:
            break
    return rows


def parse_output(text: str) -> CompileResult:
    """The compiler's stdout summary (plus the op table when ``-s`` was given)."""
    res = CompileResult(ok=False, stdout=text)
    for key, pat in _SUMMARY.items():
        m = pat.search(text)
        if m:
            val = m.group(1).strip()
            setattr(res, key, int(val) if key in _INT_FIELDS else val)
    res.operations = parse_log(text)
    res.ok = res.compile_ms is not None
    if res.ok and res.ops_on_tpu is None and res.operations:
        res.ops_on_tpu = sum(o.count for o in res.operations if o.mapped)
        res.ops_on_cpu = sum(o.count for o in res.operations if not o.mapped)
    if res.ok and res.ops_on_tpu is None and res.total_ops is not None:
        # compiler 16 prints the split only when some ops stay on the CPU
        res.ops_on_tpu, res.ops_on_cpu = res.total_ops, 0
    if not res.ok:
        res.error = _first_error_line(text)
        res.advice = advice_for(text)
    return res


def summarize(res: CompileResult) -> dict[str, Any]:
    """What the manifest keeps of a compile (``manifest["compiler"]``)."""
    d = res.to_dict()
    d.pop("stdout", None)
    return d
