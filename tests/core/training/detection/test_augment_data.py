"""Augmentation keeps boxes on their objects; resize modes; EXIF-upright decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.training.detection.augment import AugmentConfig, augment, random_crop, random_flip, random_zoom_out
from core.training.detection.data import (ImageCache, boxes_to_pixels, examples_from_records, model_input,
                                          resize_tf)


def _scene(h=120, w=160):
    """Black image with two white rectangles; their boxes (normalised)."""
    img = np.zeros((h, w, 3), np.float32)
    px = [(10, 20, 50, 70), (60, 90, 110, 150)]  # y0, x0, y1, x1
    for y0, x0, y1, x1 in px:
        img[y0:y1, x0:x1] = 255
    boxes = np.array([[y0 / h, x0 / w, y1 / h, x1 / w] for y0, x0, y1, x1 in px], np.float32)
    return img, boxes, np.array([0, 1], np.int32)


def _white_inside(img, boxes) -> list[float]:
    h, w = img.shape[:2]
    out = []
    for y0, x0, y1, x1 in boxes:
        a, b = int(round(y0 * h)), int(round(y1 * h))
        c, d = int(round(x0 * w)), int(round(x1 * w))
        patch = img[a + 1:b - 1, c + 1:d - 1]
        out.append(float((patch.mean(axis=-1) > 127).mean()) if patch.size else 1.0)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_geometric_augmentations_keep_boxes_on_objects(seed):
    import tensorflow as tf

    tf.random.set_seed(seed)
    img, boxes, labels = _scene()
    cfg = AugmentConfig(crop_probability=1.0, zoom_out_probability=1.0)
    x, b, lab = random_zoom_out(tf.constant(img), tf.constant(boxes), tf.constant(labels), cfg)
    x, b, lab = random_crop(x, b, lab, cfg)
    x, b, lab = random_flip(x, b, lab)
    x, b = x.numpy(), b.numpy()
    assert len(b) == len(lab.numpy()) >= 1  # min_object_covered keeps at least one object
    assert np.all(b >= 0) and np.all(b <= 1) and np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
    assert min(_white_inside(x, b)) > 0.9


def test_colour_jitter_keeps_range_and_boxes():
    import tensorflow as tf

    tf.random.set_seed(3)
    img, boxes, labels = _scene()
    x, b, lab = augment(tf.constant(img), tf.constant(boxes), tf.constant(labels))
    x = x.numpy()
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255
    assert b.shape[1] == 4


def test_flip_twice_is_identity():
    import tensorflow as tf

    img, boxes, labels = _scene()
    b = tf.constant(boxes)
    flipped = tf.stack([b[:, 0], 1 - b[:, 3], b[:, 2], 1 - b[:, 1]], axis=1)
    assert np.allclose(tf.stack([flipped[:, 0], 1 - flipped[:, 3], flipped[:, 2], 1 - flipped[:, 1]], 1), boxes)


@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
def test_resize_modes_move_boxes_with_the_image(mode):
    import tensorflow as tf

    img, boxes, _ = _scene(120, 200)
    x, b = resize_tf(tf.constant(img), tf.constant(boxes), 64, mode)
    x, b = x.numpy(), b.numpy()
    assert x.shape == (64, 64, 3)
    assert min(_white_inside(x, b)) > 0.85
    # model-frame boxes back to original pixels
    px = boxes_to_pixels(b, 200, 120, mode)
    expected = boxes_to_pixels(boxes, 200, 120, "stretch")
    assert np.allclose(px, expected, atol=2.0)  # letterbox rounds the scaled size to whole pixels
    if mode == "letterbox":
        assert x[40:].max() == 0  # padding at the bottom (image placed top-left)


def test_model_input_is_uint8_square():
    img = (np.random.default_rng(0).uniform(0, 255, (50, 80, 3))).astype(np.uint8)
    x = model_input(img, 32, "stretch")
    assert x.shape == (32, 32, 3) and x.dtype == np.uint8


def test_images_are_decoded_upright(store):
    from core.data.annotations import Annotation
    from core.data.boxes import Box
    from core.data.imaging import probe_image
    from core.data.store import NewImage

    # a 40x20 (w x h) image stored rotated with EXIF orientation 6 (upright it is 20 wide, 40 high)
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 10, 20))  # white left strip -> top strip when upright
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    data = buf.getvalue()
    info = probe_image(data)
    assert (info.width, info.height) == (20, 40)
    p = store.create_project("exif", "detection")
    store.add_images(p, [NewImage(data, "r.jpg", info.width, info.height,
                                  [Annotation("thing", Box(0, 0, 20, 10))])])
    rec = store.list_images(p)[0]
    (ex,) = examples_from_records([rec], ["thing"])
    assert np.allclose(ex.boxes, [[0, 0, 0.25, 1.0]])
    arr = ImageCache(store, max_side=100).load(rec.id)
    assert arr.shape == (40, 20, 3)
    assert arr[:8].mean() > 200 and arr[14:].mean() < 60  # the white strip is on top
