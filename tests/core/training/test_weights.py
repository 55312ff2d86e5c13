"""Pretrained weights: exact Keras file names, a clear message offline, local files."""

from __future__ import annotations

import time

import pytest

from core.training.weights import WeightsUnavailableError, resolve_weights, weights_filename


def test_weights_file_names_match_keras():
    assert weights_filename(0.35, 96) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert weights_filename(1, 224) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert weights_filename(0.5, 64).endswith("_0.5_224_no_top.h5")  # no 64 px checkpoint: keras uses 224


def test_none_and_local_files(tmp_path):
    assert resolve_weights("none", 0.35, 96) is None
    assert resolve_weights(None, 0.35, 96) is None
    f = tmp_path / "w.h5"
    f.write_bytes(b"x")
    assert resolve_weights(str(f), 0.35, 96) == str(f)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        resolve_weights(str(tmp_path / "missing.h5"), 0.35, 96)
    with pytest.raises(WeightsUnavailableError, match="alpha"):
        resolve_weights("imagenet", 0.6, 96)


def test_imagenet_offline_says_what_to_do(tmp_path, weights_offline):
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_weights("imagenet", 0.35, 96, timeout=3)
    assert time.monotonic() - t0 < 60
    msg = str(err.value)
    assert "could not be downloaded" in msg
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in msg
    assert str(tmp_path / "keras-home" / "models") in msg
    assert "from scratch" in msg
    assert weights_offline.is_download_failure(msg) and not weights_offline.is_download_failure("Cancelled")


def test_cached_weights_file_is_used_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / weights_filename(0.5, 128)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    assert resolve_weights("imagenet", 0.5, 128) == str(cached)
