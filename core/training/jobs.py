"""The "train" job kind: params ``{"task", "project", "hparams": {...}}`` → the matching trainer.

Optional params: ``device`` (``auto`` | ``cpu`` | ``gpu``, see ``core.training.device``) and
``mixed_precision`` (GPU only). The device that trained is recorded in the job's events and in the
model's manifest (``device``); running out of GPU memory fails with a message naming the batch size.
Also ``resume_from`` (an interrupted job's id: continue from its checkpoint, see
core/training/resume.py) and ``hparams.init_from`` (a parent model, core/training/continue_from.py).
After publishing, the dataset version and the lineage are recorded (core/training/lineage.py);
checkpoints of a finished job are removed, an interrupted one keeps its own.

Imported lazily by ``core.jobs`` (``KIND_MODULES``); registers itself on import.
"""

from __future__ import annotations

from core.data import artefacts
from core.jobs import JobCancelled, JobContext, register_job_kind
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
    if hp.init_from:  # refuse a parent of another size/width before any work; its weights replace ImageNet's
        from core.training.continue_from import check_compatible, parent_manifest

        check_compatible(parent_manifest(ctx.store, hp.init_from, project.name)[1], task, int(hp.image_size),
                         float(hp.alpha))
        hp.weights = "none"
    ctx.log(f"training {task} on project {project.name!r} with {hp.to_dict()}")
    from core.training import checkpoint, device
    from core.training.session_guard import guard_session
    from core.data.versions import dataset_version

    choice = device.select(params.get("device"), bool(params.get("mixed_precision")))
    device.record(ctx, choice)
    version = dataset_version(ctx.store, project)  # the photos and boxes this training reads
    resume_from = params.get("resume_from")
    ctx.resume_from = resume_from  # read by the trainer's Checkpointer
    if resume_from:
        checkpoint.mark_resumed(ctx.store.root, resume_from, ctx.job_id)
    try:
        with guard_session():  # e.g. Streamlit clears the Keras session after every page rerun
            try:
                with device.placed(choice):
                    aid = _run_trainer(ctx, project, task, hp)
            except Exception as exc:
                if device.is_out_of_memory(exc):
                    raise device.GpuOutOfMemory(device.oom_message(choice, hp.batch_size)) from exc
                raise
    except JobCancelled:
        _drop_checkpoints(ctx, resume_from)
        raise
    except BaseException:
        checkpoint.remove(ctx.store.root, ctx.job_id)
        if resume_from:  # the failed resume leaves the earlier checkpoint resumable again
            checkpoint.release(ctx.store.root, resume_from)
        raise
    _drop_checkpoints(ctx, resume_from)
    artefacts.update_manifest(artefacts.artefact_path(ctx.store.root, aid), device=choice.to_dict())
    from core.training.lineage import record_training

    record_training(ctx, aid, version)
    return aid


def _drop_checkpoints(ctx: JobContext, resume_from: str | None) -> None:
    """A finished job's checkpoints (its own and the one it resumed from) only take disk space."""
    from core.training import checkpoint

    checkpoint.remove(ctx.store.root, ctx.job_id)
    if resume_from:
        checkpoint.remove(ctx.store.root, resume_from)


def _run_trainer(ctx: JobContext, project, task: str, hp) -> str:
    if task == "classification":
        from core.training.classification import train_classification

        return train_classification(ctx, project, hp)
    if task == "detection":
        from core.training.detection.trainer import train_detection

        return train_detection(ctx, project, hp)
    raise ValueError(f"Unknown task {task!r}; use classification or detection.")


register_job_kind("train", run_train_job)
