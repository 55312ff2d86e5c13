"""Live video frames -> model input (coral_runtime.frames, Predictor.predict_frame) on real PyAV frames."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coral_runtime import adapters as A
from coral_runtime import frames as F
from coral_runtime.predictor import Predictor
from tests.coral_runtime import models as M

av = pytest.importorskip("av", reason="PyAV comes with streamlit-webrtc (the live webcam)")


def _photo(raccoon_dir: Path, i: int = 0, size=(640, 480)) -> Image.Image:
    path = sorted((raccoon_dir / "images").glob("*.jpg"))[i]
    with Image.open(path) as im:
        return im.convert("RGB").resize(size, Image.Resampling.BILINEAR)


def _frame(image: Image.Image, fmt: str = "yuv420p"):
    """A decoded video frame as aiortc hands it over (VP8/H.264 decode: yuv420p)."""
    return av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(format=fmt)


@pytest.mark.parametrize("mode", A.RESIZE_MODES)
def test_scaled_frame_matches_the_fair_resize(raccoon_dir, mode):
    diffs_rgb, diffs_yuv = [], []
    for i in range(4):
        photo = _photo(raccoon_dir, i)
        for size in ((224, 224), (320, 320), (96, 160)):
            fair, tr = A.resize_image(photo, size, mode)
            buf = np.full((*size, 3), 99, np.uint8)  # stale content must not leak into the padding
            assert F.scale_frame_into(_frame(photo, "rgb24"), buf, mode) == tr  # same geometry, same boxes
            diffs_rgb.append(np.abs(buf.astype(np.int16) - fair).ravel())
            F.scale_frame_into(_frame(photo), buf, mode)
            diffs_yuv.append(np.abs(buf.astype(np.int16) - fair).ravel())
            nw, nh, _ = A.fit(640, 480, size, mode)
            assert not buf[nh:].any() and not buf[:, nw:].any()
    rgb, yuv = np.concatenate(diffs_rgb), np.concatenate(diffs_yuv)
    # swscale's bilinear widens its filter when shrinking: the trainers' antialiased resize, not a
    # 2-tap sample (that one differs by ~7 levels on average on these photos)
    assert rgb.mean() < 0.5 and np.percentile(rgb, 99) <= 2
    # the camera's 4:2:0 chroma, interpolated in full (1.8 / 6 levels without swscale's chroma flags)
    assert yuv.mean() < 0.8 and np.percentile(yuv, 99) <= 3


def test_frame_rgb_is_the_frame(raccoon_dir):
    photo = _photo(raccoon_dir)
    got = F.frame_rgb(_frame(photo, "rgb24"))
    assert got.shape == (480, 640, 3) and np.array_equal(got, np.asarray(photo))
    yuv = F.frame_rgb(_frame(photo)).astype(np.int16)
    assert np.abs(yuv - np.asarray(photo)).mean() < 1.5


def test_consecutive_frames_reuse_one_scaler_per_thread(raccoon_dir):
    photos = [_photo(raccoon_dir, i) for i in range(3)]
    buf = np.empty((224, 224, 3), np.uint8)
    for photo in photos:  # new frame objects, as a stream delivers them, interleaved with the drawing
        frame = _frame(photo)
        F.scale_frame_into(frame, buf, "stretch")
        assert np.abs(buf.astype(np.int16) - A.resize_image(photo, (224, 224))[0]).mean() < 0.8
        assert F.frame_rgb(frame).shape == (480, 640, 3)
    n = F.SCALER_THREADS  # one context per purpose (and thread count)
    assert set(F._local.scalers) == {("model", n), ("full", n)}  # noqa: SLF001
    seen: list = []
    t = threading.Thread(target=lambda: (F.frame_rgb(_frame(photos[0])), seen.append(dict(F._local.scalers))))  # noqa: SLF001
    t.start()
    t.join()
    assert set(seen[0]) == {("full", n)} and seen[0][("full", n)] is not F._local.scalers[("full", n)]  # noqa: SLF001


@pytest.mark.parametrize("mode", A.RESIZE_MODES)
def test_slice_threads_give_the_same_pixels(raccoon_dir, mode):
    assert F.SCALER_THREADS >= 1
    for i, size in ((0, (224, 224)), (1, (320, 320)), (2, (96, 160))):
        frame = _frame(_photo(raccoon_dir, i, size=(651, 417)))  # odd sizes: uneven slices
        one, two = np.empty((*size, 3), np.uint8), np.empty((*size, 3), np.uint8)
        assert F.scale_frame_into(frame, one, mode, threads=1) == F.scale_frame_into(frame, two, mode, threads=2)
        assert np.array_equal(one, two)
        assert {("model", 1), ("model", 2)} <= set(F._local.scalers)  # noqa: SLF001 - a context per count
        assert np.abs(one.astype(np.int16) - A.resize_image(_photo(raccoon_dir, i, size=(651, 417)), size,
                                                             mode)[0]).mean() < 0.8


def test_bad_buffers_and_frames_are_refused(raccoon_dir):
    frame = _frame(_photo(raccoon_dir, size=(64, 48)))
    with pytest.raises(ValueError, match="uint8"):
        F.scale_frame_into(frame, np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="resize"):
        F.scale_frame_into(frame, np.zeros((32, 32, 3), np.uint8), "crop")

    class Empty:
        width, height = 0, 480

    with pytest.raises(ValueError, match="empty"):
        F.scale_frame_into(Empty(), np.zeros((32, 32, 3), np.uint8))


def test_predict_frame_classifies_camera_colours_as_photos(colour_cls_int8, tmp_path):
    labels = list(M.COLOURS)
    p = Predictor(M.write_artefact(tmp_path / "cls", colour_cls_int8.read_bytes(), task="classification",
                                   labels=labels, input_size=32), device="cpu")
    right = 0
    for label, im in M.colour_images(4, size=48, seed=7):
        big = im.resize((640, 480), Image.Resampling.NEAREST)
        live = p.predict_frame(_frame(big), top_k=1)  # red must stay red: no channel swap in the YUV path
        photo = p.predict(big, top_k=1)
        assert live.classes[0].label == photo.classes[0].label
        assert live.image_size == (640, 480) and live.latency_ms >= live.invoke_ms > 0
        right += live.classes[0].label == label
    assert right == 12


def test_predict_frame_boxes_are_in_frame_pixels(detector_int8, tmp_path, raccoon_dir):
    p = Predictor(M.write_artefact(tmp_path / "det", detector_int8.read_bytes(), task="detection",
                                   labels=["raccoon", "cat"], input_size=32, resize="letterbox"), device="cpu")
    # a frame already at the letterbox size: no scaling, so exactly the photo's answer
    small = _photo(raccoon_dir, 1, size=(32, 24))
    assert p.predict_frame(_frame(small, "rgb24"), threshold=0.0).detections == \
        p.predict(small, threshold=0.0).detections
    # a camera frame: the same boxes the photo gives, mapped to the 640x480 frame
    big = small.resize((640, 480), Image.Resampling.NEAREST)
    live = p.predict_frame(_frame(big, "rgb24"), threshold=0.0)
    assert live.image_size == (640, 480) and live.detections
    for d in live.detections:
        x0, y0, x1, y1 = d.box.as_tuple()
        assert 0 <= x0 <= x1 <= 640 and 0 <= y0 <= y1 <= 480
    assert max(d.box.x_max for d in live.detections) > 32  # frame pixels, not model pixels
