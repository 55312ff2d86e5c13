"""Training data for the detector: examples from the store, a tf.data pipeline, and the resize
shared by training, evaluation and int8 calibration.

Images are decoded upright (EXIF orientation applied, ``core.data.imaging.open_upright``), downscaled
once to at most ``cache_side`` pixels on the long side and kept in memory when they fit in the
budget (else decoded again each time). Boxes are normalised ``(ymin, xmin, ymax, xmax)`` of the
upright image.

Resize to the square model input (recorded in the manifest as ``"resize"``):

- ``"stretch"`` (default, as the TF OD API's ``fixed_shape_resizer`` for SSD): the whole image is
  resized to ``S x S``; the model's normalised boxes are then directly normalised to the image.
- ``"letterbox"``: the image keeps its aspect ratio, is placed at the **top-left** of the square
  and the rest is zero (as ``pycoral.adapters.common.set_resized_input``); a normalised model box
  times ``max(width, height)`` gives pixels of the original image.

Both use ``tf.image.resize(..., antialias=True)``, bilinear, in training and evaluation alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from core.data.annotations import ImageRecord
from core.data.imaging import open_upright

RESIZE_MODES = ("stretch", "letterbox")


@dataclass
class Example:
    image_id: str
    filename: str
    width: int  # upright original size
    height: int
    boxes: np.ndarray  # [K, 4] float32 normalised ymin, xmin, ymax, xmax
    labels: np.ndarray  # [K] int32 class index


def examples_from_records(records: Sequence[ImageRecord], labels: Sequence[str]) -> list[Example]:
    """Examples with the boxes of known classes (zero-area boxes and image-level labels skipped).

    Images without any box stay in (they teach "background").
    """
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for r in records:
        bs, ls = [], []
        for a in r.annotations:
            if a.box is None or a.label not in index or a.box.area <= 0:
                continue
            b = a.box.clip(r.width, r.height)
            if b.area <= 0:
                continue
            bs.append(b.to_tflite(r.width, r.height))
            ls.append(index[a.label])
        out.append(Example(r.id, r.filename, r.width, r.height,
                           np.asarray(bs, np.float32).reshape(-1, 4), np.asarray(ls, np.int32)))
    return out


class ImageCache:
    """Upright RGB uint8 arrays of store images, downscaled to ``max_side``, kept within a budget."""

    def __init__(self, store: Any, max_side: int, budget_bytes: int = 1 << 30):
        self.store = store
        self.max_side = int(max_side)
        self.budget = budget_bytes
        self.used = 0
        self._cache: dict[str, np.ndarray] = {}

    def load(self, image_id: str) -> np.ndarray:
        arr = self._cache.get(image_id)
        if arr is not None:
            return arr
        im = open_upright(self.store.read_image_bytes(image_id))
        w, h = im.size
        scale = self.max_side / max(w, h)
        if scale < 1:
            from PIL import Image

            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
        if self.used + arr.nbytes <= self.budget:
            self._cache[image_id] = arr
            self.used += arr.nbytes
        return arr


def resize_tf(image: Any, boxes: Any, size: int, mode: str = "stretch"):
    """Resize a float image ``[H, W, 3]`` to ``[size, size, 3]`` and move the boxes with it."""
    import tensorflow as tf

    if mode == "stretch":
        img = tf.image.resize(image, [size, size], antialias=True)
        return img, boxes
    if mode != "letterbox":
        raise ValueError(f"unknown resize mode {mode!r}")
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_max(shape)
    nh = tf.maximum(1, tf.cast(tf.round(shape[0] * scale), tf.int32))
    nw = tf.maximum(1, tf.cast(tf.round(shape[1] * scale), tf.int32))
    nh, nw = tf.minimum(nh, size), tf.minimum(nw, size)
    img = tf.image.resize(image, tf.stack([nh, nw]), antialias=True)
    img = tf.pad(img, [[0, size - nh], [0, size - nw], [0, 0]])
    img = tf.ensure_shape(img, [size, size, 3])
    fy, fx = tf.cast(nh, tf.float32) / size, tf.cast(nw, tf.float32) / size
    b = boxes * tf.stack([fy, fx, fy, fx])
    return img, b


def model_input(image: np.ndarray, size: int, mode: str = "stretch") -> np.ndarray:
    """An upright uint8 image -> the uint8 ``[size, size, 3]`` model input (eval, calibration)."""
    import tensorflow as tf

    img, _ = resize_tf(tf.convert_to_tensor(image, tf.float32), tf.zeros([0, 4]), size, mode)
    return np.clip(np.round(img.numpy()), 0, 255).astype(np.uint8)


def boxes_to_pixels(boxes: np.ndarray, width: int, height: int, mode: str = "stretch") -> np.ndarray:
    """Normalised model-frame ``(ymin, xmin, ymax, xmax)`` -> original-image pixel
    ``(x_min, y_min, x_max, y_max)``, clipped to the image."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if mode == "letterbox":
        sy = sx = float(max(width, height))
    else:
        sy, sx = float(height), float(width)
    out = np.stack([b[:, 1] * sx, b[:, 0] * sy, b[:, 3] * sx, b[:, 2] * sy], axis=1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def make_dataset(examples: Sequence[Example], cache: ImageCache, anchors: np.ndarray,
                 num_classes: int, image_size: int, batch_size: int, *, augment: bool = False,
                 resize: str = "stretch", shuffle: bool = True, seed: int = 0,
                 pos_iou: float = 0.5, neg_iou: float = 0.4, augment_config: Any = None):
    """``(images [B,S,S,3] float 0..255, (box_targets [B,N,5], cls_targets [B,N,C+1]))`` batches."""
    import tensorflow as tf

    from core.training.detection import anchors as anchors_mod
    from core.training.detection import augment as augment_mod
    from core.training.detection.matching import assign_targets

    exs = list(examples)
    rng = np.random.default_rng(seed)
    anchors_t = tf.constant(anchors, tf.float32)
    corners_t = tf.constant(anchors_mod.to_corners(anchors), tf.float32)

    def gen() -> Iterator:
        order = rng.permutation(len(exs)) if shuffle else np.arange(len(exs))
        for i in order:
            e = exs[i]
            yield cache.load(e.image_id), e.boxes, e.labels

    sig = (tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, 4], tf.float32),
           tf.TensorSpec([None], tf.int32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(exs)))

    def prepare(img, boxes, labels):
        img = tf.cast(img, tf.float32)
        if augment:
            img, boxes, labels = augment_mod.augment(img, boxes, labels, augment_config)
        img, boxes = resize_tf(img, boxes, image_size, resize)
        box_t, cls_t = assign_targets(boxes, labels, anchors_t, corners_t, num_classes,
                                      pos_iou=pos_iou, neg_iou=neg_iou)
        return img, (box_t, cls_t)

    ds = ds.map(prepare, num_parallel_calls=2, deterministic=False)
    return ds.batch(batch_size).prefetch(2)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
