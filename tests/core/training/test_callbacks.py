"""The job callback: cancel stops fit within a batch; progress events carry epochs, steps, metrics, ETA."""

from __future__ import annotations

import numpy as np
import pytest

from core.jobs import JobCancelled
from core.training.callbacks import format_eta, make_progress_callback
from tests.core.training.helpers import FakeContext


def _tiny_model():
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def test_progress_events_per_batch_and_epoch(store, tmp_path):
    ctx = FakeContext(store, tmp_path)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    cb = make_progress_callback(ctx, 2, 4, every_n_batches=2, fraction_range=(0.1, 0.9))
    _tiny_model().fit(x, y, batch_size=4, epochs=2, callbacks=[cb], verbose=0)
    steps = [e for e in ctx.events if e.get("step") and not e.get("metrics")]
    ends = [e for e in ctx.events if e.get("metrics")]
    assert [(e["epoch"], e["step"]) for e in steps] == [(1, 2), (1, 4), (2, 2), (2, 4)]
    assert [e["epoch"] for e in ends] == [1, 2]
    assert {"loss", "accuracy"} <= set(ends[0]["metrics"])
    fr = [e["fraction"] for e in ctx.events]
    assert fr == sorted(fr) and fr[0] > 0.1 and fr[-1] == pytest.approx(0.9)
    assert "left" in steps[0]["message"]
    assert ctx.checks >= 8  # at least once per batch


def test_cancel_stops_fit_at_the_next_batch(store, tmp_path):
    ctx = FakeContext(store, tmp_path)
    x = np.zeros((40, 4), "float32")
    y = np.eye(3, dtype="float32")[np.arange(40) % 3]
    cb = make_progress_callback(ctx, 5, 10, every_n_batches=1)
    calls = {"n": 0}
    orig = ctx.check_cancelled

    def check():
        calls["n"] += 1
        if calls["n"] == 4:
            ctx.cancel()
        orig()

    ctx.check_cancelled = check
    with pytest.raises(JobCancelled):
        _tiny_model().fit(x, y, batch_size=4, epochs=5, callbacks=[cb], verbose=0)
    assert max(e.get("step", 0) for e in ctx.events) <= 3


def test_format_eta():
    assert format_eta(None) == ""
    assert format_eta(5) == "5 s"
    assert format_eta(65) == "1 min 05 s"
    assert format_eta(3700) == "1 h 01 min"
