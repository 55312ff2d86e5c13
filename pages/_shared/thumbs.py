"""Cached previews of stored images with their labels drawn (core.data.render under st.cache_data)."""

from __future__ import annotations

import hashlib

import streamlit as st

from core.data import render
from core.data.annotations import ImageRecord
from core.data.store import Store


@st.cache_data(max_entries=4000, show_spinner=False)
def _preview(key: str, _image_id: str, _labels: tuple, _size: tuple[int, int], _max_side: int | None,
             _store: Store) -> bytes:
    # Only ``key`` is hashed (hashing 24 nested label tuples per run costs more than drawing them);
    # it holds everything the picture depends on: content id, revision, a digest of the labels, size.
    try:
        data = _store.read_image_bytes(_image_id)
    except OSError:
        return render.placeholder(_max_side or 320, "image file missing")
    return render.render(data, _labels, _size, max_side=_max_side)


def preview(store: Store, record: ImageRecord, max_side: int | None = 256) -> bytes:
    """JPEG bytes of the image (at most ``max_side`` pixels wide/high) with its labels drawn."""
    labels = render.label_tuples(record.annotations)
    digest = hashlib.blake2b(repr(labels).encode(), digest_size=12).hexdigest()
    key = f"{record.id}:{record.revision}:{digest}:{record.width}x{record.height}:{max_side}"
    return _preview(key, record.id, labels, (record.width, record.height), max_side, store)
