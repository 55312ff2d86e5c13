"""Training for a time budget, with the weights picked by validation mAP.

One Keras callback (:func:`make_budget_callback`) does four things a fixed-epoch ``fit`` cannot:

- **Learning rate**: linear warmup then cosine decay to 1 % (``lr_at``), set before every batch
  from the *current* plan, so the schedule ends when the run ends.
- **Plan**: with ``budget_seconds``, after every epoch the number of epochs is re-fitted from the
  measured epoch times (mean of the epochs after the first, which includes graph tracing; the
  validation passes are inside those times): the run stops at the epoch end closest to the
  budget. Without a budget the plan is the given number of epochs.
- **Selection**: every ``eval_every`` epochs (and at the last one) ``evaluate()`` gives the
  validation mAP@0.5; each new best is kept in memory (``.weights``; never an HDF5 file, which
  h5py crashes on when the disk fills up). The value is added to the
  epoch's logs as ``val_mAP50`` (the job's curves show it beside the losses).
- **Early stop** only on an mAP plateau -- no gain for ``patience`` epochs (at least a third of
  the plan) -- and never before ``min_fraction`` of the plan (of the budget) has run. Under a
  cosine schedule the gains come late, at a low rate: the 25-minute raccoon run of 2026-12-07 with
  a quarter-plan patience after half the budget stopped at 59 % of it (best epoch 22 of 38).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, final: float = 0.01) -> float:
    """Warmup from 10 % to ``base_lr`` over ``warmup_steps``, then cosine to ``final * base_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (0.1 + 0.9 * step / warmup_steps)
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return base_lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class BudgetState:
    """What the callback decided (recorded in the manifest)."""

    planned_epochs: int
    epoch_seconds: list[float] = field(default_factory=list)
    val_map: dict[int, float] = field(default_factory=dict)  # epoch (1-based) -> mAP@0.5
    best_epoch: int | None = None
    best_map: float | None = None
    stopped_early: bool = False
    stop_reason: str = ""
    plan_history: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"planned_epochs": self.planned_epochs, "val_mAP50": {str(k): v for k, v in self.val_map.items()},
                "best_epoch": self.best_epoch, "best_val_mAP50": self.best_map,
                "stopped_early": self.stopped_early, "stop_reason": self.stop_reason}


def plan_epochs(done: int, elapsed: float, epoch_seconds: list[float], budget: float) -> int:
    """Total epochs that end closest to ``budget`` seconds, given the epochs done so far.

    The first epoch includes graph tracing: from it alone only "one more, to measure" is planned.
    """
    if len(epoch_seconds) < 2:
        return done + 1 if elapsed < budget else done
    steady = epoch_seconds[1:]
    per = sum(steady[-10:]) / len(steady[-10:])
    remaining = budget - elapsed
    return done + max(0, int(math.floor(remaining / per + 0.5)))


def make_budget_callback(*, base_lr: float, steps_per_epoch: int, epochs: int,
                         budget_seconds: float | None, evaluate: Callable[[], float | None] | None,
                         best_path: str, eval_every: int = 0, warmup_fraction: float = 0.03,
                         patience: int = 0, min_fraction: float = 0.5, progress: Any = None,
                         clock: Callable[[], float] = time.monotonic):
    """The callback (see the module docstring); its ``.state`` is a :class:`BudgetState`.

    ``epochs``: the plan without a budget, the cap with one. ``eval_every`` 0 picks it from the
    measured cost (a validation pass at most ~15 % of the training time). ``progress``: the job's
    progress callback, whose ``total_epochs`` follows the plan.
    """
    import keras

    class BudgetCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            guess = epochs if budget_seconds is None else min(epochs, 100)
            self.state = BudgetState(planned_epochs=guess)
            self.eval_every = int(eval_every)
            self.eval_seconds: float | None = None
            self.weights: list | None = None  # the best epoch's weights
            self.keeps_best_weights = True  # core.training.checkpoint saves and restores .weights
            self.step_offset = 0  # optimizer steps done before a resume (the schedule continues)
            self.time_offset = 0.0  # training seconds spent before a resume (the budget continues)

        # -- resume (core.training.checkpoint) --------------------------------------------------------
        def checkpoint_state(self) -> dict:
            return {"state": self.state, "eval_every": self.eval_every, "eval_seconds": self.eval_seconds,
                    "step": self.step, "elapsed": clock() - self.t0}

        def restore_state(self, saved: dict) -> None:
            self.state = saved["state"]
            self.eval_every, self.eval_seconds = saved["eval_every"], saved["eval_seconds"]
            self.step_offset, self.time_offset = int(saved["step"]), float(saved["elapsed"])

        # -- learning rate ------------------------------------------------------------------------
        def _lr(self, step: int) -> float:
            total = self.state.planned_epochs * steps_per_epoch
            warm = max(steps_per_epoch, int(round(warmup_fraction * total)))
            return lr_at(step, base_lr, min(warm, total // 2), total)

        def on_train_begin(self, logs=None):
            self.t0 = clock() - self.time_offset
            self.t_epoch = clock()
            self.step = self.step_offset

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate = self._lr(self.step)
            self.step += 1

        # -- per epoch ----------------------------------------------------------------------------
        def _evaluate(self, epoch: int, logs: dict) -> None:
            t = clock()
            opt = self.model.optimizer
            ema = bool(getattr(opt, "use_ema", False)) and getattr(opt, "built", False)
            if ema:  # evaluate (and keep) the moving average of the weights, then train on
                live = [v.numpy() for v in self.model.trainable_variables]
                opt._overwrite_model_variables_with_average_value(self.model.trainable_variables)  # noqa: SLF001
            try:
                value = evaluate() if evaluate else None
                st = self.state
                if value is not None:
                    st.val_map[epoch] = float(value)
                    logs["val_mAP50"] = float(value)
                    if st.best_map is None or value > st.best_map:
                        st.best_map, st.best_epoch = float(value), epoch
                        self.weights = self.model.get_weights()
            finally:
                if ema:
                    for v, x in zip(self.model.trainable_variables, live):
                        v.assign(x)
            self.eval_seconds = clock() - t

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            st = self.state
            done = epoch + 1
            now = clock()
            st.epoch_seconds.append(round(now - self.t_epoch, 3))
            if budget_seconds is not None:
                st.planned_epochs = max(done, min(epochs, plan_epochs(done, now - self.t0, st.epoch_seconds,
                                                                      budget_seconds)))
                st.plan_history.append(st.planned_epochs)
            last = done >= st.planned_epochs
            every = self.eval_every
            if every <= 0:  # from the measured cost of a pass vs an epoch
                per_epoch = st.epoch_seconds[-1] if len(st.epoch_seconds) < 2 else st.epoch_seconds[1]
                cost = self.eval_seconds if self.eval_seconds is not None else 0.0
                every = max(1, min(10, math.ceil(cost / max(0.15 * per_epoch, 1e-6)))) if cost else 1
            if evaluate is not None and (last or done % every == 0 or done == 1):
                self._evaluate(done, logs)
            if not last and st.best_epoch is not None and patience > 0:
                wait = max(patience, st.planned_epochs // 3)
                past_half = (now - self.t0 >= min_fraction * budget_seconds) if budget_seconds else \
                    done >= min_fraction * st.planned_epochs
                if past_half and done - st.best_epoch >= wait:
                    st.stopped_early = True
                    st.stop_reason = f"no validation mAP gain for {done - st.best_epoch} epochs"
                    last = True
            if last:
                self.model.stop_training = True
                if not st.stop_reason:
                    st.stop_reason = "time budget used" if budget_seconds is not None else "all epochs run"
            if progress is not None:
                progress.total_epochs = max(done, st.planned_epochs) if not last else done
            self.t_epoch = now  # the next epoch's time includes this epoch's validation pass

    return BudgetCallback()
