"""Keras callbacks tying training to a job: progress events with ETA, cancellation every batch."""

from __future__ import annotations

import math
import time
from typing import Any


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_eta(seconds: float | None) -> str:
    """``"1 min 05 s"`` style remaining time ("" when unknown)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def make_progress_callback(ctx, total_epochs: int, steps_per_epoch: int, *, every_n_batches: int = 10,
                           fraction_range: tuple[float, float] = (0.0, 1.0)):
    """A Keras callback reporting to ``ctx`` (a core.jobs.JobContext).

    Calls ``ctx.check_cancelled()`` at every batch (JobCancelled then stops ``fit``),
    ``ctx.progress`` every ``every_n_batches`` batches (fraction, step, ETA) and at every
    epoch end (epoch, metrics incl. val_*). Fractions map into ``fraction_range`` of the job.
    """
    import keras

    lo, hi = fraction_range

    class JobProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.total_epochs = max(1, int(total_epochs))
            self.steps = max(1, int(steps_per_epoch))
            self.every = max(1, int(every_n_batches))
            self.epoch = 0
            self.t0 = None
            self.done_steps = 0

        def _fraction(self) -> float:
            done = min(1.0, self.done_steps / (self.total_epochs * self.steps))
            return lo + (hi - lo) * done

        def _eta(self) -> float | None:
            if not self.t0 or not self.done_steps:
                return None
            rate = (time.monotonic() - self.t0) / self.done_steps
            return rate * (self.total_epochs * self.steps - self.done_steps)

        def on_train_begin(self, logs=None):
            self.t0 = time.monotonic()
            ctx.check_cancelled()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            ctx.check_cancelled()

        def on_train_batch_end(self, batch, logs=None):
            self.done_steps = self.epoch * self.steps + batch + 1
            ctx.check_cancelled()
            if (batch + 1) % self.every == 0:
                eta = format_eta(self._eta())
                loss = _num((logs or {}).get("loss"))
                msg = f"epoch {self.epoch + 1}/{self.total_epochs}, batch {batch + 1}/{self.steps}"
                if loss is not None:
                    msg += f", loss {loss:.4f}"
                if eta:
                    msg += f", about {eta} left"
                ctx.progress(fraction=self._fraction(), epoch=self.epoch + 1, total_epochs=self.total_epochs,
                             step=batch + 1, total_steps=self.steps, message=msg)

        def on_epoch_end(self, epoch, logs=None):
            self.done_steps = (epoch + 1) * self.steps
            metrics = {k: v for k, v in ((k, _num(v)) for k, v in (logs or {}).items()) if v is not None}
            eta = format_eta(self._eta()) if epoch + 1 < self.total_epochs else ""
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if k in ("loss", "accuracy", "val_loss", "val_accuracy"))
            msg = f"epoch {epoch + 1}/{self.total_epochs} done" + (f": {shown}" if shown else "")
            if eta:
                msg += f" (about {eta} left at most)"
            ctx.progress(fraction=self._fraction(), epoch=epoch + 1, total_epochs=self.total_epochs,
                         step=self.steps, total_steps=self.steps, metrics=metrics, message=msg)
            ctx.check_cancelled()

    return JobProgress()


def make_best_weights_callback(path: str, monitor: str = "val_loss"):
    """Keep the weights of the epoch where ``monitor`` was lowest and put them back when training ends.

    Kept in memory, not written to ``path`` (kept in the signature for callers that load it when it
    exists): no disk I/O per epoch, and no HDF5 file left half-written — h5py crashes the process
    when such a file is freed after the disk filled up (see docs/FAULTS.md).
    """
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = float("inf")
            self.weights = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is not None and float(value) < self.best:
                self.best = float(value)
                self.weights = self.model.get_weights()

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

    return BestWeights()


def make_epoch_timer():
    """A callback recording each epoch's wall time in ``.seconds`` (for throughput figures)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._t = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.monotonic() - self._t)

    return EpochTimer()
