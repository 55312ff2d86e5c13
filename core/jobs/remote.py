"""The entrypoint of a job that runs on a cluster: ``python -m core.jobs.remote JOBDIR``.

``JOBDIR`` (shipped as the job's working directory) holds ``job.json`` (kind,
params, the dataset hash) and ``snapshot/`` (a data directory with the project,
see ``core.data.snapshot``). The job runs the same job function as the local runner,
with a context that reports through stdout, which the cluster's log API carries
back to the studio:

    @@studio-event {json}          progress (the same fields as JobContext.progress)
    @@studio-artefact <base64>     the finished artefact folder as a zip, in chunks
    @@studio-artefact-end {json}   {"id": ..., "sha256": ..., "bytes": ...}
    anything else                  a log line

No Ray code is needed here: the job is a plain process.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import time
import zipfile
from pathlib import Path

from core.data import artefacts
from core.data.store import Store

EVENT = "@@studio-event "
ARTEFACT = "@@studio-artefact "
ARTEFACT_END = "@@studio-artefact-end "
CHUNK = 48_000  # bytes of zip per line (64 kB of base64)


class PrintingContext:
    """A JobContext look-alike whose progress and logs go to stdout."""

    def __init__(self, store: Store, job_id: str, work_dir: Path):
        self.store = store
        self.job_id = job_id
        self.work_dir = work_dir
        self._last_step = 0.0

    @property
    def cancelled(self) -> bool:
        return False  # the cluster stops the whole process on cancel

    def check_cancelled(self) -> None:
        return None

    def progress(self, **fields) -> None:
        """Print a progress event (per-batch events at most twice a second)."""
        now = time.monotonic()
        if fields.get("step") is not None and fields.get("metrics") is None and now - self._last_step < 0.5:
            return
        self._last_step = now
        print(EVENT + json.dumps(fields, default=_plain), flush=True)

    def log(self, line: str) -> None:
        for part in str(line).splitlines() or [""]:
            print(part if not part.startswith("@@studio") else " " + part, flush=True)

    def event(self, data: dict) -> None:
        """An event of the job's own (e.g. the device record): the studio stores it with the job's events."""
        print(EVENT + json.dumps(data, default=_plain), flush=True)


def _plain(v):
    return v.item() if hasattr(v, "item") else str(v)


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def emit_artefact(artefact_id: str, folder: Path, out=None) -> None:
    """Print an artefact folder as base64 chunks followed by its checksum line."""
    out = out or sys.stdout
    data = zip_folder(folder)
    for i in range(0, len(data), CHUNK):
        out.write(ARTEFACT + base64.b64encode(data[i:i + CHUNK]).decode() + "\n")
    out.write(ARTEFACT_END + json.dumps({"id": artefact_id, "sha256": hashlib.sha256(data).hexdigest(),
                                         "bytes": len(data)}) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    job_dir = Path(args[0] if args else ".").resolve()
    spec = json.loads((job_dir / "job.json").read_text())
    store = Store(job_dir / "snapshot")
    ctx = PrintingContext(store, spec["job_id"], job_dir / "work")
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"running {spec['kind']} job {spec['job_id']} on the cluster (dataset {spec['dataset_hash'][:12]})")
    try:
        import tensorflow as tf  # noqa: PLC0415 - only to say which devices train

        gpus = tf.config.list_physical_devices("GPU")
        ctx.log(f"devices: {len(gpus)} GPU(s)" + (f": {[g.name for g in gpus]}" if gpus else ", training on CPU"))
    except ImportError:
        pass
    from core.jobs import resolve_kind  # noqa: PLC0415

    fn = resolve_kind(spec["kind"])
    artefact_id = fn(ctx, spec["params"])
    if artefact_id:
        emit_artefact(artefact_id, artefacts.artefact_path(store.root, artefact_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
