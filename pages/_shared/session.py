"""Session-state primitives: typed keys (``StateKey``), widget values and one-run flash messages.

The bottom of ``pages/_shared/``: imports no sibling, so ``auth`` and ``state`` can both build on
it without importing each other in a circle. ``state`` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import streamlit as st

T = TypeVar("T")
PREFIX = "studio."


@dataclass(frozen=True)
class StateKey(Generic[T]):
    """One session-state entry: a prefixed name and a factory for its default value."""

    name: str
    default: Callable[[], T]

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"session-state keys start with {PREFIX!r}: {self.name!r}")

    def get(self) -> T:
        """The value, creating it from the default on first use."""
        if self.name not in st.session_state:
            st.session_state[self.name] = self.default()
        return st.session_state[self.name]

    def set(self, value: T) -> None:
        st.session_state[self.name] = value

    def clear(self) -> None:
        st.session_state.pop(self.name, None)


# -- keys used by the Projects / Upload / Dataset pages and the shell ------------------------
PROJECT: StateKey[str | None] = StateKey("studio.project", lambda: None)  # current project's name
AUTHENTICATED: StateKey[bool] = StateKey("studio.auth.ok", lambda: False)
FLASH: StateKey[list[tuple[str, str]]] = StateKey("studio.flash", list)  # (kind, message) shown once
UPLOAD_NONCE: StateKey[int] = StateKey("studio.upload.nonce", lambda: 0)  # bump to clear the uploader
FRAMED: StateKey[bool] = StateKey("studio.framed", lambda: False)  # app.py ran in this browser session
UPLOAD_REPORT: StateKey[dict | None] = StateKey("studio.upload.report", lambda: None)
DATASET_SELECTED: StateKey[set[str]] = StateKey("studio.dataset.selected", set)

PICKER_WIDGET = "studio.picker"  # the sidebar project selectbox
DATASET_PAGE_WIDGET = "studio.dataset.page"  # the gallery's page number input
PICK_PREFIX = "studio.dataset.pick."  # gallery selection checkboxes: PICK_PREFIX + image id


# -- widget values ------------------------------------------------------------------------
def widget_value(key: str, default: Any = None) -> Any:
    """The current value of the widget with ``key`` (``default`` before it was first drawn)."""
    return st.session_state.get(key, default)


def set_widget_value(key: str, value: Any) -> None:
    """Set a widget's value; only before the widget is drawn in this run, or in a callback."""
    st.session_state[key] = value


def clear_widgets(prefix: str) -> None:
    """Forget the state of every widget whose key starts with ``prefix``."""
    if not prefix.startswith(PREFIX):
        raise ValueError(f"only studio widgets can be cleared, not {prefix!r}")
    for key in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


# -- flash messages (survive one st.rerun) -------------------------------------------------
def flash(message: str, kind: str = "success") -> None:
    """Queue a message to show at the top of the next run (``success|info|warning|error``)."""
    FLASH.get().append((kind, message))


def pop_flashes() -> list[tuple[str, str]]:
    msgs = list(FLASH.get())
    FLASH.set([])
    return msgs
