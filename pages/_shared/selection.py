"""The model the user is working with, kept across pages (Train → Models → Preview → Deploy).

Streamlit forgets a page's widget values when another page is shown, so each page's model
picker starts from this session-state entry and writes its choice back to it.
"""

from __future__ import annotations

import streamlit as st

from pages._shared.state import StateKey

CURRENT_MODEL: StateKey[str | None] = StateKey("studio.model.current", lambda: None)


def set_current_model(model_id: str | None) -> None:
    """Remember ``model_id`` as the model the next page opens with."""
    CURRENT_MODEL.set(model_id)


def model_picker_default(widget_key: str, ids: list[str]) -> None:
    """Before drawing a model selectbox keyed ``widget_key``: select the current model when it is
    one of ``ids`` (a pick on any page changes the current model through ``remember_pick``)."""
    current = CURRENT_MODEL.get()
    if current in ids and st.session_state.get(widget_key) != current:
        st.session_state[widget_key] = current


def remember_pick(widget_key: str) -> None:
    """``on_change`` of a model selectbox: its value becomes the current model."""
    CURRENT_MODEL.set(st.session_state.get(widget_key))
