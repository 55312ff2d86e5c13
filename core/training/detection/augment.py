"""Box-aware augmentation with ``tf.image`` (random crop, zoom-out, horizontal flip, colour jitter).

Why tf.image rather than albumentations: it adds no dependency (TensorFlow is already the training
engine), it runs inside the tf.data graph in parallel with training (no Python GIL per image, no
``py_function``), and ``tf.image.sample_distorted_bounding_box`` is the same box-aware crop the
TF OD API's SSD preprocessing uses. Albumentations would offer more transforms, but needs numpy
round trips through ``tf.numpy_function`` and another package in the robot-free training image.

All functions take a float32 image ``[H, W, 3]`` in 0..255, boxes ``[K, 4]`` normalised
``(ymin, xmin, ymax, xmax)`` and labels ``[K]``, and return the same triple.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AugmentConfig:
    crop_probability: float = 0.5
    min_object_covered: float = 0.5
    crop_area: tuple[float, float] = (0.3, 1.0)
    crop_aspect: tuple[float, float] = (0.5, 2.0)
    min_box_visible: float = 0.4  # a cropped box keeps this share of its area, else it is dropped
    zoom_out_probability: float = 0.3
    max_zoom_out: float = 2.0
    flip: bool = True
    brightness: float = 0.15 * 255
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.8, 1.2)
    hue: float = 0.03


def random_crop(image: Any, boxes: Any, labels: Any, cfg: AugmentConfig, seed: Any = None):
    """Crop a random window that still covers part of a box; boxes are cut to it."""
    import tensorflow as tf

    def crop():
        shape = tf.shape(image)
        begin, size, window = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.reshape(boxes, [1, -1, 4]),
            min_object_covered=cfg.min_object_covered, aspect_ratio_range=cfg.crop_aspect,
            area_range=cfg.crop_area, max_attempts=50, use_image_if_no_bounding_boxes=True)
        img = tf.slice(image, begin, size)
        w = tf.reshape(window, [4])
        wh = tf.stack([w[2] - w[0], w[3] - w[1], w[2] - w[0], w[3] - w[1]])
        origin = tf.stack([w[0], w[1], w[0], w[1]])
        b = (boxes - origin) / tf.maximum(wh, 1e-6)
        clipped = tf.clip_by_value(b, 0.0, 1.0)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        keep = kept >= cfg.min_box_visible * tf.maximum(area, 1e-9)
        return img, tf.boolean_mask(clipped, keep), tf.boolean_mask(labels, keep)

    go = tf.random.uniform([]) < cfg.crop_probability
    return tf.cond(go, crop, lambda: (image, boxes, labels))


def random_zoom_out(image: Any, boxes: Any, labels: Any, cfg: AugmentConfig):
    """Place the image on a larger grey canvas (objects get smaller: SSD's "expand")."""
    import tensorflow as tf

    def zoom():
        shape = tf.shape(image)
        h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        ratio = tf.random.uniform([], 1.0, cfg.max_zoom_out)
        nh, nw = tf.cast(h * ratio, tf.int32), tf.cast(w * ratio, tf.int32)
        top = tf.random.uniform([], 0, nh - shape[0] + 1, dtype=tf.int32)
        left = tf.random.uniform([], 0, nw - shape[1] + 1, dtype=tf.int32)
        canvas = tf.pad(image - 127.5, [[top, nh - shape[0] - top], [left, nw - shape[1] - left], [0, 0]])
        canvas = canvas + 127.5
        fh, fw = tf.cast(nh, tf.float32), tf.cast(nw, tf.float32)
        t, l = tf.cast(top, tf.float32), tf.cast(left, tf.float32)
        b = tf.stack([(boxes[:, 0] * h + t) / fh, (boxes[:, 1] * w + l) / fw,
                      (boxes[:, 2] * h + t) / fh, (boxes[:, 3] * w + l) / fw], axis=1)
        return canvas, b, labels

    go = tf.random.uniform([]) < cfg.zoom_out_probability
    return tf.cond(go, zoom, lambda: (image, boxes, labels))


def random_flip(image: Any, boxes: Any, labels: Any):
    import tensorflow as tf

    def flip():
        b = tf.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], axis=1)
        return tf.image.flip_left_right(image), b, labels

    return tf.cond(tf.random.uniform([]) < 0.5, flip, lambda: (image, boxes, labels))


def colour_jitter(image: Any, cfg: AugmentConfig) -> Any:
    import tensorflow as tf

    img = tf.image.random_brightness(image, cfg.brightness)
    img = tf.image.random_contrast(img, *cfg.contrast)
    img = tf.clip_by_value(img, 0.0, 255.0) / 255.0
    img = tf.image.random_saturation(img, *cfg.saturation)
    img = tf.image.random_hue(img, cfg.hue)
    return tf.clip_by_value(img * 255.0, 0.0, 255.0)


def augment(image: Any, boxes: Any, labels: Any, cfg: AugmentConfig | None = None):
    """The training augmentation: zoom-out, crop, flip, colour jitter (before the resize)."""
    cfg = cfg or AugmentConfig()
    image, boxes, labels = random_zoom_out(image, boxes, labels, cfg)
    image, boxes, labels = random_crop(image, boxes, labels, cfg)
    if cfg.flip:
        image, boxes, labels = random_flip(image, boxes, labels)
    return colour_jitter(image, cfg), boxes, labels
