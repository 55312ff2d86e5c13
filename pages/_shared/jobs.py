"""The job runner for the pages, the current job per project, and job display helpers.

``get_runner()`` creates one ``LocalRunner`` per data directory and process
(``st.cache_resource``) and installs the Edge TPU post-publish hooks when
``coral_runtime`` is present. Pages keep only a job id in session state (under a
``studio.`` key); everything else is read from the runner, which reads SQLite.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import streamlit as st

from core.data import artefacts
from core.jobs import ACTIVE_STATES, Job, JobState, LocalRunner, Runner, register_kind_module
from core.data.store import Store

try:  # the store handle of the pages part
    from pages._shared.state import StateKey, get_store
except ImportError:  # pragma: no cover - only before pages/_shared/state.py exists
    from dataclasses import dataclass
    from typing import Callable

    from core.config import data_dir

    @st.cache_resource(show_spinner=False)
    def _store_at(root: str) -> Store:
        return Store(root)

    def get_store() -> Store:  # type: ignore[no-redef]
        return _store_at(str(data_dir()))

    @dataclass(frozen=True)
    class StateKey:  # type: ignore[no-redef]
        name: str
        default: Callable[[], Any]

        def get(self) -> Any:
            if self.name not in st.session_state:
                st.session_state[self.name] = self.default()
            return st.session_state[self.name]

        def set(self, value: Any) -> None:
            st.session_state[self.name] = value

log = logging.getLogger("studio")

ENV_MAX_JOBS = "STUDIO_MAX_CONCURRENT_JOBS"
CURRENT_JOBS: StateKey = StateKey("studio.jobs.current", dict)  # project name -> job id


def max_concurrent() -> int:
    """How many training jobs run at once (``$STUDIO_MAX_CONCURRENT_JOBS``, default 1: training is
    heavy). Image builds have their own queue (``LANES``)."""
    try:
        return max(1, int(os.environ.get(ENV_MAX_JOBS, "1")))
    except ValueError:
        return 1


def install_hooks() -> bool:
    """Register the Edge TPU preflight/compile step run after each model is published (if available)."""
    try:
        from coral_runtime import hooks
    except ImportError:
        return False
    try:
        hooks.install()
    except Exception as exc:  # noqa: BLE001 - training must work without the preflight
        log.warning("coral_runtime.hooks.install() failed: %s", exc)
        return False
    return True


#: kinds with a queue of their own, so they never wait behind a long training job
LANES = {"build-image": 1}
register_kind_module("build-image", "builder.jobs")  # the runner adopts queued builds after a restart


@st.cache_resource(show_spinner=False)
def _runner_at(root: str, _store: Store, workers: int) -> LocalRunner:
    install_hooks()
    return LocalRunner(_store, max_concurrent=workers, lanes=LANES).start()


def get_runner() -> Runner:
    """The process-wide runner for the current data directory (started, hooks installed)."""
    store = get_store()
    return _runner_at(str(store.root), store, max_concurrent())


# -- the current job of a project (session state) -------------------------------------------------
def set_current_job(project: str, job_id: str | None) -> None:
    jobs = CURRENT_JOBS.get()
    if job_id is None:
        jobs.pop(project, None)
    else:
        jobs[project] = job_id


def current_job(runner: Runner, project: str) -> Job | None:
    """The job this session follows for ``project``; when the session lost it (reload, new tab),
    the project's running job, else its newest queued job."""
    job_id = CURRENT_JOBS.get().get(project)
    if job_id:
        try:
            job = runner.get(job_id)
        except Exception:  # noqa: BLE001 - deleted or from another data directory
            job = None
        if job is not None and job.project == project:
            return job
        set_current_job(project, None)
    active = [j for j in runner.list(project=project, limit=30) if j.state in ACTIVE_STATES]
    if not active:
        return None
    running = [j for j in active if j.state is JobState.RUNNING]
    job = running[0] if running else active[-1]
    set_current_job(project, job.id)
    return job


# -- display helpers (pure) ---------------------------------------------------------------------
def format_seconds(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``; ``"–"`` when unknown."""
    from core.training.callbacks import format_eta

    return format_eta(seconds) or "–"


STATE_ICONS = {  # Material icons (emoji with variation selectors are missing from some fonts)
    JobState.QUEUED: ":material/schedule:", JobState.RUNNING: ":material/play_circle:",
    JobState.SUCCEEDED: ":material/check_circle:", JobState.FAILED: ":material/error:",
    JobState.CANCELLED: ":material/cancel:", JobState.INTERRUPTED: ":material/warning:",
}


def epoch_curves(events: list[dict]) -> dict[str, dict[int, float]]:
    """Per-epoch metric curves from a job's progress events: ``{metric: {epoch: value}}``."""
    curves: dict[str, dict[int, float]] = {}
    for e in events:
        if e.get("type") != "progress" or not e.get("metrics") or not e.get("epoch"):
            continue
        step, total = e.get("step"), e.get("total_steps")
        if step is not None and (total is None or step < total):
            continue  # a mid-epoch update
        for k, v in e["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                curves.setdefault(k, {})[int(e["epoch"])] = float(v)
    return curves


def result_metric(job: Job, store: Store | None = None) -> tuple[str, float] | None:
    """The headline result of a finished training job: int8 accuracy / mAP from its model's
    manifest when it exists, else the last reported metric."""
    prefs = ("accuracy", "mAP50", "mAP", "val_accuracy")
    if job.artefact_id and store is not None:
        try:
            m = artefacts.load_manifest(artefacts.artefact_path(store.root, job.artefact_id))
            metrics = m.get("metrics") or {}
            for variant in ("int8", "float"):
                for key in prefs:
                    v = (metrics.get(variant) or {}).get(key)
                    if isinstance(v, (int, float)):
                        return f"{key} ({variant})", float(v)
        except artefacts.ArtefactError:
            pass
    for key in prefs:
        v = job.metrics.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return key, float(v)
    return None


def imagenet_download_failed(jobs: list[Job]) -> bool:
    """Whether the newest ended training that started from ImageNet weights (``jobs`` newest first)
    failed because they could not be downloaded: this computer is offline, propose "from scratch"."""
    from core.training.weights import is_download_failure

    for j in jobs:
        if j.kind == "train" and j.state.finished and (j.params.get("hparams") or {}).get("weights") == "imagenet":
            return j.state is JobState.FAILED and is_download_failure(j.error)
    return False


def last_settings(jobs: list[Job], project: str, task: str, preset: str) -> dict:
    """The form values of the newest training of ``project`` started with ``preset`` (``jobs``
    newest first): its hyperparameters and how its starting weights were chosen. Empty if none."""
    for j in jobs:
        p = j.params or {}
        if j.kind == "train" and j.project == project and p.get("task") == task and p.get("preset") == preset:
            hp = dict(p.get("hparams") or {})
            w = str(hp.get("weights") or "none")
            choice = w if w in ("imagenet", "none") else "file"
            return {**hp, "weights_choice": choice, "weights_file": w if choice == "file" else ""}
    return {}


def seconds_left(job: Job, events: list[dict], now: float | None = None) -> float | None:
    """The time left of an active job: its last estimate counted down since it was made. A trainer
    reports at batch and epoch ends; between reports (a slow first batch, a long validation) the
    estimate would otherwise stand still."""
    if not job.active:
        return None
    last = next((e for e in reversed(events) if e.get("type") == "progress" and e.get("eta") is not None), None)
    if last is None or last.get("time") is None:
        return job.eta
    return max(0.0, float(last["eta"]) - ((time.time() if now is None else now) - float(last["time"])))


def weak_result_hint(metric: str, value: float, n_classes: int) -> str | None:
    """Plain advice when a finished model has learned (almost) nothing: accuracy near chance, or
    a detector that finds (almost) none of the boxes. None for a result worth trying."""
    if metric.startswith("accuracy") or metric.startswith("val_accuracy"):
        chance = 1.0 / max(n_classes, 1)
        if value > chance + 0.1 * (1.0 - chance):
            return None
        what = f"{value:.0%} is about what guessing gives with {n_classes} classes"
    elif metric.startswith("mAP"):
        if value >= 0.1:
            return None
        what = f"it finds almost none of the labelled objects (mAP {value:.2f})"
    else:
        return None
    return (f"This model has not learned much yet: {what}. Train longer (more epochs), label more "
            "photos, or start from the pretrained ImageNet weights when this computer has internet.")


# Display names of the training curves' series (Keras' names, the detector's output heads)
METRIC_NAMES = {"loss": "training loss", "val_loss": "validation loss",
                "boxes_loss": "box position loss (training)", "val_boxes_loss": "box position loss (validation)",
                "class_logits_loss": "class loss (training)", "val_class_logits_loss": "class loss (validation)",
                "accuracy": "training accuracy", "val_accuracy": "validation accuracy"}


def metric_name(key: str) -> str:
    """What a curve is called on the pages (its own name when there is no better one)."""
    return METRIC_NAMES.get(key, key.replace("_", " "))


MIN_IMAGES_PER_CLASS = 2  # below this a class cannot be in both the train and validation split
GOOD_IMAGES_PER_CLASS = 10


def dataset_problems(stats: dict, task: str) -> tuple[list[str], list[str]]:
    """What stops training (errors) and what makes it weak (warnings), from ``Store.stats``."""
    errors: list[str] = []
    warnings: list[str] = []
    if not stats.get("images"):
        return ["This project has no images yet. Add photos on the Upload page."], []
    labelled = stats.get("labelled_images", 0)
    if not labelled:
        return [f"None of the {stats['images']} images has a label yet. "
                + ("Draw boxes around the objects on the Label page." if task == "detection"
                   else "Give each image its class on the Label or Dataset page.")], []
    per_class = {n: c.get("images", 0) for n, c in (stats.get("per_class") or {}).items()}
    used = {n: c for n, c in per_class.items() if c > 0}
    unused = [n for n, c in per_class.items() if c == 0]
    if task == "classification" and len(used) < 2:
        errors.append(f"Classification needs at least two classes with labelled images; this project has "
                      f"{len(used)}{' (' + ', '.join(used) + ')' if used else ''}. Label images of another class.")
    few = {n: c for n, c in used.items() if c < MIN_IMAGES_PER_CLASS}
    if few:
        errors.append("Too few images for " + ", ".join(f"**{n}** ({c})" for n, c in few.items())
                      + f": each class needs at least {MIN_IMAGES_PER_CLASS} labelled images "
                      "(some to learn from, some to check the model). Label more, or delete the class "
                      "(Dataset page, Classes view).")
    weak = {n: c for n, c in used.items() if MIN_IMAGES_PER_CLASS <= c < GOOD_IMAGES_PER_CLASS}
    if weak:
        warnings.append("Few images for " + ", ".join(f"**{n}** ({c})" for n, c in weak.items())
                        + f": the model will be unreliable. Aim for {GOOD_IMAGES_PER_CLASS}+ per class, "
                        "ideally 50 or more.")
    if unused:
        warnings.append("Classes without any labelled image are left out of the model: "
                        + ", ".join(unused) + ".")
    unlabelled = stats["images"] - labelled
    if unlabelled:
        warnings.append(f"{unlabelled} of {stats['images']} images have no label and are not used.")
    if stats.get("unreviewed_images"):
        warnings.append(f"{stats['unreviewed_images']} images have unreviewed (suggested) labels; "
                        "they are used as they are.")
    return errors, warnings


# -- the Ray cluster runner (optional) -----------------------------------------------------------
RAY_TOKEN: StateKey = StateKey("studio.jobs.ray_token", str)  # typed token: this session's memory only
RUNNER_CHOICE: StateKey = StateKey("studio.jobs.runner", lambda: "local")


@st.cache_resource(show_spinner=False)
def _ray_runner_at(root: str, address: str, token: str | None, _store: Store):
    from core.jobs.ray_runner import RayRunner

    install_hooks()
    return RayRunner(_store, address, token=token).start()


def cluster_address() -> str | None:
    from core.data import settings

    return settings.ray_address(get_store())


def cluster_token() -> str | None:
    from core.data import settings

    return settings.ray_token_from_env() or RAY_TOKEN.get() or None


def get_ray_runner() -> Runner | None:
    """The Ray runner for the configured cluster (None when no cluster is configured)."""
    address = cluster_address()
    if not address:
        return None
    store = get_store()
    return _ray_runner_at(str(store.root), address, cluster_token(), store)


@st.cache_data(ttl=10, show_spinner=False)
def cluster_status(address: str, token: str | None) -> dict:
    """Reachability and resources of the cluster, refreshed at most every 10 s."""
    from core.jobs.ray_runner import cluster_status as probe

    s = probe(address, token, timeout=3.0)
    return {"reachable": s.reachable, "message": s.message, "resources": s.resources, "nodes": s.nodes}
