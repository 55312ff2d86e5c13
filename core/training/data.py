"""Classification data from the store: examples per split, upright decoding, tf.data pipelines.

Images are decoded once with PIL (EXIF orientation applied — ``tf.image.decode_jpeg``
ignores it), resized to the model's square input and kept as a uint8 array (in memory,
or a memory-mapped file in the job's work folder for large sets). The training pipeline
shuffles, augments, batches and prefetches from that cache.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from core.data.annotations import SPLITS, ImageRecord, Project
from core.data.imaging import ImageDecodeError, open_upright
from core.data.store import Store

MEMMAP_ABOVE_BYTES = 512 * 1024 * 1024


class DatasetError(ValueError):
    """The project's data cannot be used for training, with a message for the user."""


@dataclass(frozen=True)
class Example:
    image_id: str
    filename: str
    label: int
    split: str


@dataclass
class ClassificationSet:
    """Labelled examples of a project, by split, with the model's class list."""

    labels: list[str]
    train: list[Example]
    val: list[Example]
    test: list[Example]
    unreviewed: int = 0  # images whose only class label is an unconfirmed prediction (left out)

    def split(self, name: str) -> list[Example]:
        if name == "all":
            return self.train + self.val + self.test
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def class_counts(self, split: str = "train") -> list[int]:
        counts = [0] * len(self.labels)
        for e in self.split(split):
            counts[e.label] += 1
        return counts


def _rank(seed: int, image_id: str) -> str:
    return hashlib.sha256(f"cap:{seed}:{image_id}".encode()).hexdigest()


def collect_examples(store: Store, project: Project, *, labels: Sequence[str] | None = None,
                     train_on: str = "split", max_images: int | None = None,
                     seed: int = 0) -> ClassificationSet:
    """Labelled images of ``project`` grouped by split.

    ``labels`` fixes the class order (an existing model's); by default the classes that
    have at least one labelled image, in label-map order. ``train_on="all"`` trains on
    every image (val/test stay as they are, for monitoring). ``max_images`` keeps a
    deterministic sample of that many images (splits in proportion).
    """
    labelled: list[tuple[ImageRecord, str]] = []
    unreviewed = 0
    for r in store.list_images(project):
        label = reviewed_class(r)
        if label is not None:
            labelled.append((r, label))
        elif r.class_label is not None:
            unreviewed += 1
    if labels is None:
        used = {lab for _, lab in labelled}
        labels = [n for n in store.label_map(project).names if n in used]
    index = {n: i for i, n in enumerate(labels)}
    labelled = [(r, lab) for r, lab in labelled if lab in index]
    if max_images is not None and max_images < len(labelled):
        labelled = sorted(labelled, key=lambda rl: _rank(seed, rl[0].id))[:max(0, int(max_images))]
    by_split: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for r, lab in labelled:
        split = r.split if r.split in SPLITS else "train"
        by_split[split].append(Example(r.id, r.filename, index[lab], split))
    train = by_split["train"]
    if train_on == "all":
        train = by_split["train"] + by_split["val"] + by_split["test"]
    return ClassificationSet(list(labels), train, by_split["val"], by_split["test"], unreviewed)


def reviewed_class(record: ImageRecord) -> str | None:
    """The image's class for training: its image-level label, unless that is an unconfirmed prediction."""
    for a in record.annotations:
        if a.box is None:
            return a.label if a.reviewed else None
    return None


def load_image(store: Store, example: Example, size: int) -> np.ndarray:
    """One image, upright (EXIF), RGB, resized to ``size``×``size``: uint8 array (size, size, 3).

    Raises :class:`DatasetError` naming the image when it cannot be decoded.
    """
    try:
        im = open_upright(str(store.image_path(example.image_id)))
        im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"Image {example.filename!r} ({example.image_id[:12]}…) is missing from the "
                           "store's image folder.") from None
    except (ImageDecodeError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"Image {example.filename!r} ({example.image_id[:12]}…) cannot be read: "
                           f"{exc}. Remove or replace it and train again.") from None


def load_images(store: Store, examples: Sequence[Example], size: int, *,
                cache_file: Path | None = None, workers: int = 2,
                on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Decode ``examples`` into one uint8 array (N, size, size, 3).

    Large sets go to a memory-mapped ``cache_file`` instead of RAM. ``on_progress(done, total)``
    is called after every image (it may raise to cancel).
    """
    n = len(examples)
    shape = (n, size, size, 3)
    nbytes = int(np.prod(shape))
    if cache_file is not None and nbytes > MEMMAP_ABOVE_BYTES:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(cache_file, mode="w+", dtype=np.uint8, shape=shape)
    else:
        out = np.empty(shape, dtype=np.uint8)
    if n == 0:
        return out
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, arr in enumerate(pool.map(lambda e: load_image(store, e, size), examples)):
            out[i] = arr
            if on_progress:
                on_progress(i + 1, n)
    return out


def one_hot(labels: Sequence[int], num_classes: int) -> np.ndarray:
    y = np.zeros((len(labels), num_classes), dtype=np.float32)
    if len(labels):
        y[np.arange(len(labels)), np.asarray(labels)] = 1.0
    return y


def augment_batch_fn(size: int, seed: int = 0):
    """A tf function on a batch ``(images float32 (B, S, S, 3) 0..255, labels) -> same``: per image a random
    horizontal flip, a random square crop of 85–100% resized back (one ``crop_and_resize`` for the
    whole batch), brightness and contrast jitter. Vectorised: much cheaper than per-image ops."""
    import tensorflow as tf

    def _aug(x, y):
        b = tf.shape(x)[0]
        flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
        scale = tf.random.uniform([b], 0.85, 1.0)
        y0 = tf.random.uniform([b]) * (1.0 - scale)
        x0 = tf.random.uniform([b]) * (1.0 - scale)
        boxes = tf.stack([y0, x0, y0 + scale, x0 + scale], axis=1)
        x = tf.image.crop_and_resize(x, boxes, tf.range(b), [size, size])
        x = x + tf.random.uniform([b, 1, 1, 1], -0.15 * 255.0, 0.15 * 255.0)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * tf.random.uniform([b, 1, 1, 1], 0.85, 1.15) + mean
        return tf.clip_by_value(x, 0.0, 255.0), y

    return _aug


def _to_float(x):
    import tensorflow as tf

    return tf.cast(x, tf.float32)


def _to_float_pair(x, y):
    return _to_float(x), y


def make_dataset(images: np.ndarray, labels: np.ndarray | None, batch_size: int, *,
                 training: bool = False, augment: bool = False, seed: int = 0):
    """A batched, prefetched tf.data pipeline over cached uint8 images (float32 0..255 out).

    Training pipelines are shuffled every epoch and augmented when ``augment``.
    """
    import tensorflow as tf

    n = len(images)
    size = int(images.shape[1]) if n else 0
    if isinstance(images, np.memmap):
        # memory-mapped cache: read rows by index instead of copying everything into a constant
        def _read(i):
            return np.asarray(images[int(i)])

        def _load(i):
            return tf.ensure_shape(tf.numpy_function(_read, [i], tf.uint8), (size, size, 3))

        def _load_pair(i, y):
            return _load(i), y

        idx = tf.data.Dataset.range(n)
        ds = idx if labels is None else tf.data.Dataset.zip((idx, tf.data.Dataset.from_tensor_slices(labels)))
        if training:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if labels is None:
            ds = ds.map(_load, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(_load_pair, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, labels) if labels is not None else images)
        if training:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if labels is None:
        ds = ds.map(_to_float)
    else:
        ds = ds.map(_to_float_pair)
        if training and augment:
            ds = ds.map(augment_batch_fn(size, seed), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def representative_images(images: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Up to ``count`` images spread over the set, for int8 calibration."""
    n = len(images)
    if n <= count:
        return images
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.choice(n, size=count, replace=False))]
