"""The "train" job kind: params ``{"task", "project", "hparams": {...}}`` → the matching trainer.

Optional params: ``device`` (``auto`` | ``cpu`` | ``gpu``, see ``core.training.device``) and
``mixed_precision`` (GPU only). The device that trained is recorded in the job's events and in the
model's manifest (``device``); running out of GPU memory fails with a message naming the batch size.

Imported lazily by ``core.jobs`` (``KIND_MODULES``); registers itself on import.
"""

from __future__ import annotations

from core.data import artefacts
from core.jobs import JobContext, register_job_kind
from core.training.hparams import hparams_for


def run_train_job(ctx: JobContext, params: dict) -> str:
    """Load the project, build the hyperparameters and run the classification or detection trainer;
    returns the published artefact's id."""
    name = params.get("project")
    if not name:
        raise ValueError("A training job needs a project.")
    project = ctx.store.get_project(name)
    task = params.get("task") or project.task.value
    if task != project.task.value:
        raise ValueError(f"Project {project.name!r} is a {project.task.value} project; cannot train {task}.")
    hp = hparams_for(task, params.get("hparams") or {})
    ctx.log(f"training {task} on project {project.name!r} with {hp.to_dict()}")
    from core.training import device
    from core.training.session_guard import guard_session

    choice = device.select(params.get("device"), bool(params.get("mixed_precision")))
    device.record(ctx, choice)
    with guard_session():  # e.g. Streamlit clears the Keras session after every page rerun
        try:
            with device.placed(choice):
                artefact_id = _run_trainer(ctx, project, task, hp)
        except Exception as exc:
            if device.is_out_of_memory(exc):
                raise device.GpuOutOfMemory(device.oom_message(choice, hp.batch_size)) from exc
            raise
    artefacts.update_manifest(artefacts.artefact_path(ctx.store.root, artefact_id), device=choice.to_dict())
    return artefact_id


def _run_trainer(ctx: JobContext, project, task: str, hp) -> str:
    if task == "classification":
        from core.training.classification import train_classification

        return train_classification(ctx, project, hp)
    if task == "detection":
        from core.training.detection.trainer import train_detection

        return train_detection(ctx, project, hp)
    raise ValueError(f"Unknown task {task!r}; use classification or detection.")


register_job_kind("train", run_train_job)
