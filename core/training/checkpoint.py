"""Per-epoch training checkpoints, so an interrupted job can be resumed at its next epoch.

At the end of every epoch the trainer's :class:`Checkpointer` callback writes, under
``<data>/checkpoints/<job_id>/``:

    e0003/model.npz           the training model's weights (numpy, not HDF5: h5py crashes the process
                              when a half-written file is freed after the disk filled up)
    e0003/optimizer.npz       every optimizer variable (Adam moments and the iteration counter,
                              which drives the learning-rate schedule)
    e0003/best.npz            best-so-far weights (kept in memory by the best-weights callback)
    e0003/state.pkl           epochs done, history, epoch times, callback state (best value,
                              early-stopping counter), RNG states (python, numpy, TF global)
    latest.json               {"epoch": 3, "dir": "e0003"}  -- replaced atomically, last

An epoch folder is written under a temporary name and renamed, then ``latest.json`` is
replaced: a kill at any moment leaves the previous complete checkpoint readable.

A resumed job (params ``resume_from``: the interrupted job's id) restores all of it and runs
``fit(initial_epoch=N)`` with the same total epochs, so the learning-rate schedule continues
exactly. The tf.data shuffle order of the remaining epochs restarts from the pipeline's seed (the
pipeline is not ours to checkpoint), so the resumed run is statistically, not bitwise, the same.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

LATEST = "latest.json"
RESUMED_BY = "resumed_by.json"


class ResumeError(ValueError):
    """A job that cannot be resumed, with the reason in plain words."""


def checkpoints_root(data_root: Path) -> Path:
    return Path(data_root) / "checkpoints"


def checkpoint_dir(data_root: Path, job_id: str) -> Path:
    return checkpoints_root(data_root) / job_id


def latest(data_root: Path, job_id: str) -> dict | None:
    """``{"epoch", "dir", "path"}`` of a job's last complete checkpoint, or None."""
    d = checkpoint_dir(data_root, job_id)
    try:
        info = json.loads((d / LATEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    path = d / info.get("dir", "")
    if not (path / "state.pkl").is_file():
        return None
    return {**info, "path": path}


def remove(data_root: Path, job_id: str) -> bool:
    """Delete a job's checkpoints (finished job, or the user discards it). True if there were any."""
    d = checkpoint_dir(data_root, job_id)
    if not d.exists():
        return False
    trash = d.with_name(f".deleting-{job_id}")
    os.replace(d, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def resumed_by(data_root: Path, job_id: str) -> str | None:
    """The id of the job that resumed ``job_id`` (None when nobody did)."""
    try:
        return json.loads((checkpoint_dir(data_root, job_id) / RESUMED_BY).read_text())["job_id"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None


def mark_resumed(data_root: Path, job_id: str, new_job_id: str) -> None:
    """Record (exclusively) that ``new_job_id`` resumes ``job_id``; ResumeError when one already does."""
    path = checkpoint_dir(data_root, job_id) / RESUMED_BY
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ResumeError(f"Job {job_id} was already resumed as job {resumed_by(data_root, job_id)}.") from None
    with os.fdopen(fd, "w") as fh:
        json.dump({"job_id": new_job_id, "time": time.time()}, fh)


def release(data_root: Path, job_id: str) -> None:
    """Undo :func:`mark_resumed` (the resuming job failed: the checkpoint may be resumed again)."""
    try:
        (checkpoint_dir(data_root, job_id) / RESUMED_BY).unlink()
    except FileNotFoundError:
        pass


# -- RNG state ----------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    import tensorflow as tf

    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    try:
        state["tf_global"] = tf.random.get_global_generator().state.numpy()
    except Exception:  # noqa: BLE001 - no global generator yet
        pass
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import tensorflow as tf

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "tf_global" in state:
        tf.random.get_global_generator().state.assign(state["tf_global"])


# -- the trainer's side -------------------------------------------------------------------
class Checkpointer:
    """Writes a checkpoint at every epoch end and restores one for a resumed job.

    ``model`` is the model being fitted (compiled); ``best_path`` the best-weights file of the
    trainer's ModelCheckpoint (copied into the checkpoint and back).
    """

    def __init__(self, ctx: Any, model: Any, best_path: Path):
        self.ctx = ctx
        self.model = model
        self.best_path = Path(best_path)
        self.root = Path(ctx.store.root)
        self.job_id = getattr(ctx, "job_id", None)
        self.resume_from = getattr(ctx, "resume_from", None)
        self.initial_epoch = 0
        self.previous_history: dict[str, list[float]] = {}
        self.previous_epoch_seconds: list[float] = []
        self._callbacks: list = []

    # restore
    def restore(self, callbacks: list) -> int:
        """Load the resumed job's checkpoint into the model, optimizer, callbacks and RNGs.

        Returns the epoch to start at (0 for a fresh job). Raises ResumeError when the checkpoint
        is gone or does not fit this model."""
        self._callbacks = list(callbacks)
        if not self.resume_from:
            return 0
        info = latest(self.root, self.resume_from)
        if info is None:
            raise ResumeError(f"Job {self.resume_from} has no checkpoint any more: it was deleted. "
                              "Start a new training instead.")
        path = Path(info["path"])
        with open(path / "state.pkl", "rb") as fh:
            state = pickle.load(fh)
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.set_weights(_load_arrays(path / "model.npz"))
        except (ValueError, KeyError) as exc:
            raise ResumeError(f"The checkpoint of job {self.resume_from} does not fit this model "
                              f"(were the settings changed?): {exc}") from None
        self._load_optimizer(path / "optimizer.npz")
        best = _load_arrays(path / "best.npz") if (path / "best.npz").exists() else None
        for cb in self._callbacks:
            saved = state.get("callbacks", {}).get(type(cb).__name__, {})
            if hasattr(cb, "restore_state"):
                if saved:
                    cb.restore_state(saved)
            else:
                for attr, value in saved.items():
                    setattr(cb, attr, value)
            if best is not None and _keeps_best_weights(cb):
                cb.weights = best
        _set_rng_state(state["rng"])
        self.initial_epoch = int(state["epoch"])
        self.previous_history = state.get("history", {})
        self.previous_epoch_seconds = list(state.get("epoch_seconds", []))
        self.ctx.log(f"resumed from job {self.resume_from}'s checkpoint after epoch {self.initial_epoch}")
        return self.initial_epoch

    def _load_optimizer(self, path: Path) -> None:
        opt = self.model.optimizer
        if not opt.built:
            opt.build(self.model.trainable_variables)
        with np.load(path) as data:
            values = [data[f"v{i}"] for i in range(len(data.files))]
        if len(values) != len(opt.variables):
            raise ResumeError(f"The checkpoint's optimizer has {len(values)} variables, this model's "
                              f"{len(opt.variables)}: the settings changed since the job was interrupted.")
        for var, value in zip(opt.variables, values):
            var.assign(value)

    # save
    def full_history(self, history: dict[str, list]) -> dict[str, list[float]]:
        """This fit's history appended to the epochs done before the interruption."""
        out = {k: [float(v) for v in vals] for k, vals in self.previous_history.items()}
        for k, vals in history.items():
            out.setdefault(k, []).extend(float(v) for v in vals)
        return out

    def callback(self):
        """The Keras callback writing a checkpoint at each epoch end (append it after the others)."""
        import keras

        outer = self

        class EpochCheckpoint(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.history: dict[str, list[float]] = {}
                self.seconds: list[float] = []
                self._t = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(round(time.monotonic() - self._t, 3))
                for k, v in (logs or {}).items():
                    self.history.setdefault(k, []).append(float(v))
                outer.save(epoch + 1, outer.full_history(self.history),
                           outer.previous_epoch_seconds + self.seconds)

        return EpochCheckpoint()

    def save(self, epoch: int, history: dict, epoch_seconds: list[float]) -> Path | None:
        """Write the checkpoint of ``epoch`` epochs done (atomically); returns its folder."""
        if not self.job_id:
            return None
        d = checkpoint_dir(self.root, self.job_id)
        d.mkdir(parents=True, exist_ok=True)
        name = f"e{epoch:04d}"
        tmp = d / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _save_arrays(tmp / "model.npz", self.model.get_weights())
        opt_vars = {f"v{i}": np.asarray(v) for i, v in enumerate(self.model.optimizer.variables)}
        np.savez(tmp / "optimizer.npz", **opt_vars)
        for cb in self._callbacks:
            if _keeps_best_weights(cb) and cb.weights is not None:
                _save_arrays(tmp / "best.npz", cb.weights)
        cb_state = {}
        for cb in self._callbacks:
            if hasattr(cb, "checkpoint_state"):
                cb_state[type(cb).__name__] = cb.checkpoint_state()
                continue
            keep = {a: getattr(cb, a) for a in ("best", "wait", "best_epoch", "stopped_epoch")
                    if hasattr(cb, a) and isinstance(getattr(cb, a), (int, float, np.floating, np.integer))}
            if keep:
                cb_state[type(cb).__name__] = keep
        state = {"epoch": epoch, "history": history, "epoch_seconds": epoch_seconds, "callbacks": cb_state,
                 "rng": _rng_state(), "time": time.time()}
        with open(tmp / "state.pkl", "wb") as fh:
            pickle.dump(state, fh)
        final = d / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fd_tmp = d / ".latest.tmp"
        fd_tmp.write_text(json.dumps({"epoch": epoch, "dir": name}))
        os.replace(fd_tmp, d / LATEST)
        for old in d.glob("e*"):
            if old.name != name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return final


def _keeps_best_weights(cb) -> bool:
    """The best-weights callback (core.training.callbacks) keeps the best epoch's weights in memory."""
    return (type(cb).__name__ == "BestWeights" or getattr(cb, "keeps_best_weights", False)) \
        and hasattr(cb, "weights")


def _save_arrays(path: Path, arrays: list) -> None:
    np.savez(path, **{f"w{i}": np.asarray(a) for i, a in enumerate(arrays)})


def _load_arrays(path: Path) -> list:
    with np.load(path) as data:
        return [data[f"w{i}"] for i in range(len(data.files))]
