"""Shared page state: the store handle, the current project, and typed session-state keys.

This module (with its siblings in ``pages/_shared/``) is the only code that touches
``st.session_state``. Keys are prefixed with ``studio.`` and declared once as
:class:`StateKey` objects, so a typo is a NameError rather than a silent new key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException, StreamlitDuplicateElementKey

from core.data.annotations import Project
from core.config import data_dir
from core.data.store import Store, StoreError
from pages._shared import auth
# re-exported: the pages use state.X for the session primitives too
from pages._shared.session import (AUTHENTICATED, DATASET_PAGE_WIDGET, DATASET_SELECTED, FLASH,  # noqa: F401
                                   FRAMED, PICK_PREFIX, PICKER_WIDGET, PREFIX, PROJECT, UPLOAD_NONCE,
                                   UPLOAD_REPORT, StateKey, clear_widgets, flash, pop_flashes,
                                   set_widget_value, widget_value)

# -- the store ------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> Store:
    return Store(root)


def get_store() -> Store:
    """The store of the data directory (``$STUDIO_DATA_DIR``, else ``./data``), one per process.

    Also the password gate's second line of defence: a page run without app.py (Streamlit
    does that for the very first request of a fresh server when a ``pages/`` folder exists)
    still asks for the password before it can reach any data.
    """
    rerun_through_frame()
    auth.require()
    return _store_at(str(data_dir()))


def mark_framed() -> None:
    """Called by app.py on every run: this session's pages run inside the studio's frame."""
    FRAMED.set(True)


def rerun_through_frame() -> None:
    """Rerun a page that Streamlit ran without app.py (the first request of a fresh server on a
    page's URL, "multipage v1" mode): its sidebar would list raw file names and lose the layout
    until the next rerun. Importing ``pages`` has already switched that mode off, so the rerun
    goes through app.py and lands on the same page. No-op outside a studio session (AppTest of a
    single page file)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or FRAMED.get() or Path(ctx.main_script_path).name != "app.py":
        return
    FRAMED.set(True)  # at most one rerun per session, whatever happens next
    st.rerun()


# -- the current project --------------------------------------------------------------------
def set_current_project(project: Project | str | None) -> None:
    """Make ``project`` (or its name) the current one; None clears the selection."""
    PROJECT.set(project.name if isinstance(project, Project) else project)


def current_project() -> Project | None:
    """The selected project; when none is selected (or it was deleted) the first project, if any."""
    store = get_store()
    name = PROJECT.get()
    if name is not None:
        try:
            return store.get_project(name)
        except StoreError:
            pass
    projects = store.list_projects()
    chosen = projects[0] if projects else None
    set_current_project(chosen)
    return chosen


def _on_pick() -> None:
    PROJECT.set(st.session_state.get(PICKER_WIDGET))


def select_project_widget(container: Any = None) -> Project | None:
    """A project picker (in the sidebar by default); returns the current project.

    Safe to call more than once per run: only the first call draws the widget.
    """
    store = get_store()
    current = current_project()
    names = [p.name for p in store.list_projects()]
    where = container if container is not None else st.sidebar
    if not names:
        return None
    try:
        # keep the widget in step with selections made elsewhere (Projects page, demo, deletion)
        if st.session_state.get(PICKER_WIDGET) != (current.name if current else None):
            st.session_state[PICKER_WIDGET] = current.name if current else names[0]
        where.selectbox("Project", names, key=PICKER_WIDGET, on_change=_on_pick,
                        help="The project every page works on. Create projects on the Projects page.")
    except (StreamlitDuplicateElementKey, StreamlitAPIException):
        pass  # already drawn in this run (by app.py); the selection is the same  # already drawn in this run (by app.py); the selection is the same
    return current


# -- dataset gallery selection ---------------------------------------------------------------
def selected_images() -> set[str]:
    """Image ids picked in the gallery (kept while paging and filtering)."""
    return DATASET_SELECTED.get()


def toggle_selected(image_id: str) -> None:
    """Checkbox callback: add or remove an image from the selection."""
    sel = DATASET_SELECTED.get()
    if st.session_state.get(PICK_PREFIX + image_id):
        sel.add(image_id)
    else:
        sel.discard(image_id)


def sync_pick(image_id: str) -> None:
    """Before drawing an image's checkbox: tick it when the image is selected (e.g. after paging)."""
    key = PICK_PREFIX + image_id
    if key not in st.session_state:
        st.session_state[key] = image_id in DATASET_SELECTED.get()


def select_images(image_ids: list[str]) -> None:
    """Add images to the selection (and tick their checkboxes)."""
    sel = DATASET_SELECTED.get()
    for iid in image_ids:
        sel.add(iid)
        st.session_state[PICK_PREFIX + iid] = True


def clear_selection() -> None:
    DATASET_SELECTED.set(set())
    clear_widgets(PICK_PREFIX)
