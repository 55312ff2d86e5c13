"""Overhead of the Ray path: submit-to-first-epoch time, Ray runner vs local runner, same tiny job.

Ray may only run in a loopback-only network namespace, so ``run`` re-executes this
module under ``unshare -n`` (as root) and reads its JSON result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HPARAMS = {"image_size": 64, "epochs": 3, "batch_size": 8, "alpha": 0.35, "weights": "none", "augment": False,
           "representative_samples": 8}


def _first_epoch(runner, job_id: str, timeout: float = 1800) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(e.get("type") == "progress" and e.get("epoch") for e in runner.events(job_id)):
            return time.monotonic() - t0
        if runner.get(job_id).state.finished:
            raise RuntimeError(f"job ended early: {runner.get(job_id).message}")
        time.sleep(0.1)
    raise TimeoutError("no epoch")


def inner(out: Path) -> dict:
    sys.path.insert(0, str(ROOT / "scripts"))
    import ray_head  # noqa: PLC0415

    from core.data.importer import import_paths
    from core.jobs import LocalRunner
    from core.jobs.ray_runner import RayRunner
    from core.data.store import Store

    work = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    src = work / "digits"
    digits = ROOT.parent / "shared" / "datasets" / "sign-language-digits" / "Dataset"
    for c in ("0", "1", "2"):
        (src / c).mkdir(parents=True)
        for f in sorted((digits / c).iterdir())[:20]:
            shutil.copy(f, src / c / f.name)
    store = Store(work / "data")
    p = store.create_project("digits", "classification")
    import_paths(store, p, [src], fmt="folders")
    params = {"task": "classification", "project": "digits", "hparams": HPARAMS}
    res: dict = {}
    local = LocalRunner(store).start()
    jid = local.submit("train", params)
    res["local_submit_to_first_epoch_s"] = round(_first_epoch(local, jid), 2)
    res["local_total_s"] = round(local.wait(jid, timeout=1800).duration or 0, 1)
    local.stop()
    t0 = time.monotonic()
    url = ray_head.start(work / "head")
    res["ray_head_start_s"] = round(time.monotonic() - t0, 1)
    try:
        ray = RayRunner(store, url, poll_interval=0.25)
        jid = ray.submit("train", params)
        res["ray_submit_to_first_epoch_s"] = round(_first_epoch(ray, jid), 2)
        job = ray.wait(jid, timeout=1800)
        res["ray_total_s"] = round(job.duration or 0, 1)
        res["ray_state"] = job.state.value
    finally:
        ray_head.stop(work / "head")
        shutil.rmtree(work, ignore_errors=True)
    res["ray_overhead_to_first_epoch_s"] = round(res["ray_submit_to_first_epoch_s"]
                                                 - res["local_submit_to_first_epoch_s"], 2)
    res["ratio_ray_vs_local_first_epoch"] = round(res["ray_submit_to_first_epoch_s"]
                                                  / res["local_submit_to_first_epoch_s"], 2)
    return res


def run(out_dir: Path, quick: bool = False) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = out_dir / "result.json"
    cmd = ["unshare", "-n", "--", "bash", "-c",
           f"ip link set lo up && cd {ROOT} && exec {sys.executable} -m bench.bench_ray --inner {result}"]
    subprocess.run(cmd, check=True, timeout=3600)
    return json.loads(result.read_text())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        Path(sys.argv[2]).write_text(json.dumps(inner(Path(sys.argv[2]).parent)))
