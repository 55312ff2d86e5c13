"""Cached previews of stored images with their labels drawn (core.render under st.cache_data)."""

from __future__ import annotations

import streamlit as st

from core import render
from core.annotations import ImageRecord
from core.store import Store


@st.cache_data(max_entries=4000, show_spinner=False)
def _preview(image_id: str, revision: int, labels: tuple, size: tuple[int, int], max_side: int | None,
             _store: Store) -> bytes:
    # keyed by content id + revision + labels: an edit makes a new entry, never a stale one
    try:
        data = _store.read_image_bytes(image_id)
    except OSError:
        return render.placeholder(max_side or 320, "image file missing")
    return render.render(data, labels, size, max_side=max_side)


def preview(store: Store, record: ImageRecord, max_side: int | None = 320) -> bytes:
    """JPEG bytes of the image (at most ``max_side`` pixels wide/high) with its labels drawn."""
    return _preview(record.id, record.revision, render.label_tuples(record.annotations),
                    (record.width, record.height), max_side, store)
