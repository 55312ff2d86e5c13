"""Helpers shared by the training benchmarks."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainedRun:
    """A finished training job with what the benchmarks read from its artefact."""

    folder: Path
    manifest: dict
    job_seconds: float
    train_images: int
    steady_epoch_seconds: float | None  # median epoch time after the first (graph building) epoch


def train_and_read(store, project, task: str, hparams: dict) -> TrainedRun:
    """Run a "train" job in the foreground (as the CLI does) and read its artefact's manifest."""
    from core import artefacts
    from core.jobs import JobState, run_foreground

    t = time.perf_counter()
    job = run_foreground(store, "train", {"task": task, "project": project.name, "hparams": hparams})
    job_s = time.perf_counter() - t
    if job.state != JobState.SUCCEEDED:
        raise RuntimeError(f"training failed: {job.error}")
    folder = artefacts.artefact_path(store.root, job.artefact_id)
    m = artefacts.load_manifest(folder)
    epoch_s = m["training"].get("epoch_seconds") or []
    steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else None
    return TrainedRun(folder, m, job_s, m["dataset"]["train"], steady)


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)

