"""coral_runtime.decode (the one image decode of the studio and the robot image) and
Predictor.predict_bytes: reduced-scale JPEG decode (``Image.draft``) mapped back to the original
pixels, EXIF orientation as core.data.imaging applies it, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.imaging import open_upright
from coral_runtime.decode import DecodeError, ImageTooLarge, decode_image, draft_request
from coral_runtime.predictor import Predictor
from tests.coral_runtime import models as M


def _jpeg(im: Image.Image, orientation: int | None = None, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    im.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_jpeg(raccoon_jpeg) -> bytes:
    """The raccoon photo as a 1600x1024 camera-sized JPEG."""
    im = Image.open(io.BytesIO(raccoon_jpeg)).convert("RGB").resize((1600, 1024), Image.Resampling.BICUBIC)
    return _jpeg(im)


def test_large_jpeg_is_decoded_at_reduced_scale(big_jpeg, raccoon_jpeg):
    # a 48 px model: 1600x1024 needs no more than 96x96 -> libjpeg's 1/8 scale, 200x128
    d = decode_image(big_jpeg, (48, 48))
    assert d.original_size == (1600, 1024) and d.scale == 8.0 and d.image.size == (200, 128)
    assert d.image.mode == "RGB" and d.array.shape == (128, 200, 3) and d.array.dtype == np.uint8
    # never below twice the model input: a 224 px model gets 1/2 scale, a 320 px one the full image
    assert decode_image(big_jpeg, (224, 224)).scale == 2.0
    assert decode_image(big_jpeg, (320, 320)).scale == 1.0
    small = decode_image(raccoon_jpeg, (48, 48))
    w, h = Image.open(io.BytesIO(raccoon_jpeg)).size
    assert small.original_size == (w, h)
    assert min(small.image.size) >= 2 * 48 and small.image.size == (int(w // small.scale), int(h // small.scale))


def test_full_size_when_not_a_jpeg_no_target_or_draft_off(big_jpeg):
    png = _png(Image.open(io.BytesIO(big_jpeg)))
    for d in (decode_image(png, (48, 48)), decode_image(big_jpeg, None), decode_image(big_jpeg, (48, 48), draft=False)):
        assert d.scale == 1.0 and d.image.size == (1600, 1024) == d.original_size


def test_letterbox_needs_only_the_part_the_image_fills():
    # a 4:1 panorama into a square 48 px input: stretched it needs 96x96, letterboxed only 96x24
    assert draft_request((1600, 400), (48, 48)) == (96, 96)
    assert draft_request((1600, 400), (48, 48), "letterbox") == (96, 24)
    data = _jpeg(Image.new("RGB", (1600, 400), (90, 120, 30)))
    assert decode_image(data, (48, 48)).scale == 4.0  # 1/8 would be 50 px high < 96
    assert decode_image(data, (48, 48), resize="letterbox").scale == 8.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_core_imaging_applies_it(raccoon_jpeg, orientation):
    im = Image.open(io.BytesIO(raccoon_jpeg)).convert("RGB").resize((400, 300))
    data = _jpeg(im, orientation=orientation)
    full = decode_image(data, None)
    assert np.array_equal(np.asarray(full.image), np.asarray(open_upright(data)))  # pixel for pixel
    upright = (300, 400) if orientation in (5, 6, 7, 8) else (400, 300)
    assert full.original_size == upright == full.image.size
    reduced = decode_image(data, (48, 48))
    assert reduced.scale == 2.0 and reduced.original_size == upright
    assert reduced.image.size == (upright[0] // 2, upright[1] // 2)


def test_exif_rotated_large_jpeg_is_upright_at_reduced_scale(raccoon_jpeg):
    im = Image.open(io.BytesIO(raccoon_jpeg)).convert("RGB").resize((1600, 1000))
    # stored landscape with orientation 6 (rotate 90° clockwise to view): upright it is 1000x1600
    d = decode_image(_jpeg(im, orientation=6), (48, 48))
    assert d.original_size == (1000, 1600) and d.scale > 1
    assert d.image.size == (1000 // d.scale, 1600 // d.scale)


def test_reduced_decode_gives_the_model_the_same_input(big_jpeg):
    """What the model sees after the resize is (nearly) the same from the reduced decode as from the
    full one: the reduced decode only skips pixels the resize would average away."""
    for size in (48, 224):
        reduced, full = decode_image(big_jpeg, (size, size)), decode_image(big_jpeg, (size, size), draft=False)
        assert reduced.scale > 1
        a = np.asarray(reduced.image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0), np.int16)
        b = np.asarray(full.image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0), np.int16)
        diff = np.abs(a - b)
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 6, (size, diff.mean(), np.percentile(diff, 99))


def test_bad_and_too_large_images(big_jpeg):
    with pytest.raises(DecodeError, match="empty"):
        decode_image(b"", (48, 48))
    with pytest.raises(DecodeError, match="not a readable image"):
        decode_image(b"this is not an image", (48, 48))
    with pytest.raises(DecodeError, match="not a readable image"):
        decode_image(big_jpeg[: len(big_jpeg) // 2], (48, 48))  # truncated
    with pytest.raises(ImageTooLarge, match="1600x1024"):
        decode_image(big_jpeg, (48, 48), max_pixels=1600 * 1024 - 1)
    assert decode_image(big_jpeg, (48, 48), max_pixels=1600 * 1024).original_size == (1600, 1024)
    assert issubclass(ImageTooLarge, DecodeError) and issubclass(DecodeError, ValueError)


# -- Predictor.predict_bytes ---------------------------------------------------------------------
@pytest.fixture
def det_artefact(detector_int8, tmp_path):
    return M.write_artefact(tmp_path / "det", detector_int8.read_bytes(), task="detection",
                            labels=["raccoon", "cat"], input_size=32, resize="letterbox")


@pytest.fixture
def cls_artefact(small_cls_int8, tmp_path):
    return M.write_artefact(tmp_path / "cls", small_cls_int8.read_bytes(), task="classification",
                            labels=["cat", "dog", "eel"], input_size=32)


def test_predict_bytes_boxes_are_in_original_pixels_after_a_reduced_decode(det_artefact, big_jpeg):
    p = Predictor(det_artefact, device="cpu")
    d = p.decode(big_jpeg)
    assert d.scale == 8.0 and d.image.size == (200, 128)  # letterbox 32 px: 1600x1024 decodes at 1/8
    out = p.predict_bytes(big_jpeg, threshold=0.0)
    assert out.image_size == (1600, 1024) and out.latency_ms >= out.invoke_ms > 0
    # the Predictor on the reduced image, its boxes scaled by 8: predict_bytes' boxes exactly
    reduced = p.predict(d.image, threshold=0.0)
    assert out.detections and len(out.detections) == len(reduced.detections)
    for got, det in zip(out.detections, reduced.detections):
        b = det.box
        want = (min(b.x_min * 8, 1600), min(b.y_min * 8, 1024), min(b.x_max * 8, 1600), min(b.y_max * 8, 1024))
        assert got.label == det.label and got.score == det.score
        assert got.box.as_tuple() == pytest.approx(want, abs=1e-6)
        assert got.box.is_inside(1600, 1024)


def test_predict_bytes_without_reduction_is_the_full_decode_answer(det_artefact, cls_artefact, raccoon_jpeg,
                                                                   big_jpeg):
    """A PNG, or a JPEG with draft off: exactly Predictor.predict on core.data.imaging.open_upright."""
    png = _png(Image.open(io.BytesIO(big_jpeg)))
    for folder in (det_artefact, cls_artefact):
        p = Predictor(folder, device="cpu")
        for data, draft in ((png, True), (big_jpeg, False), (_jpeg(Image.open(io.BytesIO(raccoon_jpeg)), 6), False)):
            got = p.predict_bytes(data, threshold=0.0, draft=draft)
            want = p.predict(open_upright(data), threshold=0.0)
            assert got.image_size == want.image_size
            assert got.classes == want.classes and got.detections == want.detections


def test_predict_bytes_raises_decode_errors(cls_artefact, big_jpeg):
    p = Predictor(cls_artefact, device="cpu")
    with pytest.raises(DecodeError):
        p.predict_bytes(b"not an image")
    with pytest.raises(ImageTooLarge):
        p.predict_bytes(big_jpeg, max_pixels=1000)
