"""Session state of the Label page (keys prefixed ``studio.label.``) and its cached images.

The canvas forgets unsaved boxes whenever it is remounted, so the page saves every
change as it arrives. What this module keeps per session is only *which* image is open
and the revision/annotations the open canvas was built from (the "sync" record), which
is what lets the page detect edits made elsewhere and refuse to overwrite them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.data import labeling
from core.data.annotations import Annotation, ImageRecord, Project
from core.data.store import Store
from pages._shared.state import PREFIX, StateKey

P = PREFIX + "label."

# widget keys
CANVAS_PREFIX = P + "canvas."          # + epoch: a fresh canvas for every (re)load
CLASS_WIDGET = P + "class"             # + "." + version: the class new boxes get (see choose_class)
NEW_CLASS_WIDGET = P + "new_class"
FILTER_SPLIT = P + "f_split"
FILTER_CLASS = P + "f_class"
FILTER_STATUS = P + "f_status"
JUMP_WIDGET = P + "jump"
SIZE_WIDGET = P + "size"
BOX_PREFIX = P + "box."                # + epoch + "." + index: per-box class selectors
GRID_PAGE = P + "grid_page"
GRID_PER_PAGE = P + "grid_per_page"
GRID_BULK_CLASS = P + "grid_bulk"
PICK_PREFIX = P + "pick."              # + image id: grid selection checkboxes
GRID_CLASS_PREFIX = P + "gcls."        # + image id + "." + revision: per-image class selectors
MODEL_WIDGET = P + "model"             # model for suggestions
MIN_SCORE_WIDGET = P + "min_score"

ALL = "All"
STATUSES = ("All", "Unlabelled", "Labelled", "Unreviewed")
SIZES = {"Small": (480, 400), "Medium": (640, 540), "Large": (1000, 760),
         "Zoom 2x": (2000, 1520)}  # wider than the page: the canvas scrolls (dense photos)
SIDE_PANEL_MAX_CANVAS = 700  # wider canvases get the box list below instead of beside them


@dataclass
class Sync:
    """The open image: its stored revision and annotations (``baseline``, updated on every
    save) and what its canvas was built from (``shown``, fixed per ``epoch``).

    The canvas reloads itself whenever its ``initial_drawing`` changes, losing the selection
    and its own undo history, so the drawing is built from ``shown`` and only rebuilt (with a
    new epoch, hence a new canvas) when a change comes from outside the canvas.
    """

    image_id: str
    revision: int
    baseline: list[Annotation]
    epoch: int
    shown: list[Annotation] = field(default_factory=list)
    size: tuple[int, int] | None = None  # the canvas size the drawing was built for

    def bump(self) -> None:
        """A fresh canvas showing the current annotations."""
        self.epoch = EPOCH.get() + 1
        EPOCH.set(self.epoch)
        self.shown = list(self.baseline)

    def drawing_for(self, size: tuple[int, int]) -> list[Annotation]:
        """The annotations to draw on a canvas of ``size`` (a new size means a new canvas)."""
        if self.size != size:
            if self.size is not None:
                self.bump()
            self.size = size
        return self.shown


@dataclass
class Conflict:
    """A save refused because the image changed elsewhere; ``pending`` is the user's version."""

    image_id: str
    pending: list[Annotation]
    message: str
    busy: bool = False  # not a conflict: the database was locked (or full); "Save again" retries


CURRENT: StateKey[str | None] = StateKey(P + "current", lambda: None)
SYNC: StateKey[Sync | None] = StateKey(P + "sync", lambda: None)
EPOCH: StateKey[int] = StateKey(P + "epoch", lambda: 0)
CONFLICT: StateKey[Conflict | None] = StateKey(P + "conflict", lambda: None)
NOTICES: StateKey[list[tuple[str, str]]] = StateKey(P + "notices", list)
GRID_SELECTED: StateKey[set[str]] = StateKey(P + "grid_selected", set)
QUERY_READ: StateKey[bool] = StateKey(P + "query_read", lambda: False)
CLASS_VERSION: StateKey[int] = StateKey(P + "class_version", lambda: 0)
LAST_LINK: StateKey[str | None] = StateKey(P + "last_link", lambda: None)
LINK_PARAM = "link"  # a link's own id in the URL (see read_query)
PENDING_IMAGE: StateKey[str | None] = StateKey(P + "pending_image", lambda: None)
LAST_FILTERS: StateKey[tuple | None] = StateKey(P + "last_filters", lambda: None)


# -- current image -------------------------------------------------------------------
def current_id() -> str | None:
    return CURRENT.get()


def set_current(image_id: str | None) -> None:
    """Open another image (its canvas is rebuilt from the store on the next run)."""
    if image_id != CURRENT.get():
        CURRENT.set(image_id)
        CONFLICT.set(None)


def class_widget_key() -> str:
    """The key of the "Class for new boxes" selector (it changes when the page picks a class)."""
    return f"{CLASS_WIDGET}.{CLASS_VERSION.get()}"


def choose_class(name: str) -> None:
    """Make ``name`` the class for new boxes (in a callback). A new selector is drawn: the browser
    may still send the old one's value with a rerun already on its way (a canvas report), which
    would undo a value set on the same selector."""
    CLASS_VERSION.set(CLASS_VERSION.get() + 1)
    st.session_state[class_widget_key()] = name


def notice(message: str, kind: str = "info") -> None:
    """A message shown once at the top of the next run (``info|success|warning|error``)."""
    NOTICES.get().append((kind, message))


def pop_notices() -> list[tuple[str, str]]:
    out = list(NOTICES.get())
    NOTICES.set([])
    return out


# -- the sync record ------------------------------------------------------------------
def sync_for(rec: ImageRecord) -> Sync:
    """The sync record of the open image; a new one (and a fresh canvas) when it changed."""
    s = SYNC.get()
    if s is None or s.image_id != rec.id:
        s = reload(rec)
    return s


def reload(rec: ImageRecord) -> Sync:
    """Rebuild the canvas from the stored annotations of ``rec``."""
    epoch = EPOCH.get() + 1
    EPOCH.set(epoch)
    s = Sync(rec.id, rec.revision, list(rec.annotations), epoch, list(rec.annotations))
    SYNC.set(s)
    return s


def saved(annotations: list[Annotation], revision: int, *, redraw: bool = False) -> None:
    """Record a successful save (``redraw`` rebuilds the canvas, e.g. after a change made
    outside it: class change, undo, accept)."""
    s = SYNC.get()
    assert s is not None
    s.baseline, s.revision = list(annotations), revision
    if redraw:
        s.bump()
    CONFLICT.set(None)


def fresh_canvas(s: Sync) -> None:
    """Before the canvas is drawn: when it mounts afresh — its widget state is gone, as after a
    visit to another page — it must show what is saved, not what this epoch's canvas started
    from (it reports its drawing back at once, and that would be taken for an edit)."""
    if canvas_key(s) not in st.session_state and not labeling.same_annotations(s.shown, s.baseline):
        s.bump()


def redraw() -> None:
    """A fresh canvas with the same content (drops what the store refused, e.g. click-boxes)."""
    s = SYNC.get()
    if s is not None:
        s.bump()


def canvas_key(s: Sync) -> str:
    return f"{CANVAS_PREFIX}{s.epoch}"


def conflict() -> Conflict | None:
    return CONFLICT.get()


def set_conflict(c: Conflict | None) -> None:
    CONFLICT.set(c)


def save_annotations(store: Store, project: Project, annotations: list[Annotation], *,
                     redraw: bool = False) -> bool:
    """Save the open image's annotations against the revision the canvas was built from.

    Returns False (and records the conflict for the page to show) when someone else saved
    the image in the meantime -- nothing is overwritten then.
    """
    from core.data.store import ConflictError

    s = SYNC.get()
    assert s is not None
    try:
        rev = store.set_annotations(project, s.image_id, annotations, expected_revision=s.revision)
    except ConflictError as exc:
        if _save_both(store, project, s, annotations):
            return True
        CONFLICT.set(Conflict(s.image_id, list(annotations), str(exc)))
        return False
    except sqlite3.OperationalError as exc:  # locked by another program past the wait, or the disk is full
        CONFLICT.set(Conflict(s.image_id, list(annotations), str(exc), busy=True))
        return False
    saved(annotations, rev, redraw=redraw)
    return True


def _save_both(store: Store, project: Project, s: Sync, mine: list[Annotation]) -> bool:
    """Someone else saved first: when this session only added boxes, save theirs + mine and say so."""
    from core.data.label_merge import merge_additions
    from core.data.store import ConflictError

    theirs = store.get_image(project, s.image_id)
    merged = merge_additions(s.baseline, mine, theirs.annotations)
    if merged is None:
        return False
    try:
        rev = store.set_annotations(project, s.image_id, merged, expected_revision=theirs.revision)
    except ConflictError:
        return False
    saved(merged, rev, redraw=True)
    notice("Someone else changed this photo (in another tab or window) while you were drawing: your new "
           "box was added to their version, so both are kept.", "warning")
    return True


# -- widgets' values ---------------------------------------------------------------------
def value(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def set_value(key: str, v: Any) -> None:
    """Set a widget's value (before it is drawn in this run, or in a callback)."""
    st.session_state[key] = v


def ensure_choice(key: str, options: list[Any], default: Any) -> None:
    """Reset a selector whose stored value is no longer among ``options``."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def filters_unchanged(filters: dict) -> bool:
    """True when ``filters`` are the same as in the previous run (and remember them)."""
    key = tuple(sorted(filters.items()))
    same = LAST_FILTERS.get() == key
    LAST_FILTERS.set(key)
    return same


# -- grid selection ------------------------------------------------------------------------
def grid_selected() -> set[str]:
    return GRID_SELECTED.get()


def toggle_pick(image_id: str) -> None:
    sel = GRID_SELECTED.get()
    if st.session_state.get(PICK_PREFIX + image_id):
        sel.add(image_id)
    else:
        sel.discard(image_id)


def pick(image_ids: list[str], on: bool = True) -> None:
    sel = GRID_SELECTED.get()
    for iid in image_ids:
        (sel.add if on else sel.discard)(iid)
        st.session_state[PICK_PREFIX + iid] = on


def clear_picks() -> None:
    for iid in list(GRID_SELECTED.get()):
        st.session_state.pop(PICK_PREFIX + iid, None)
    GRID_SELECTED.set(set())


# -- the URL (reload keeps the project and image) -------------------------------------------
def read_query() -> str | None:
    """The project named in the URL when the URL is a way in: a session's first run (a reload, a
    bookmark) or a link from another page ("Edit labels" on the Dataset page), which carries a
    fresh ``link`` value each time it is drawn. Not the URL this page writes itself: a rerun can
    arrive with the URL of a moment ago (the canvas reporting while the browser's address is being
    updated), and following it would reopen the previous photo.

    The image named there is kept for :func:`pop_pending_image`."""
    first = not QUERY_READ.get()
    QUERY_READ.set(True)
    link = st.query_params.get(LINK_PARAM)
    if not first and (not link or link == LAST_LINK.get()):
        return None
    LAST_LINK.set(link)
    PENDING_IMAGE.set(st.query_params.get("image"))
    return st.query_params.get("project")


def pop_pending_image() -> str | None:
    """The image id prefix from the URL of a reload, once."""
    v = PENDING_IMAGE.get()
    PENDING_IMAGE.set(None)
    return v


def write_query(project: Project, image_id: str | None) -> None:
    want = {"project": project.name}
    if image_id:
        want["image"] = image_id[:12]
    if {k: st.query_params.get(k) for k in want} != want or (
            not image_id and "image" in st.query_params):
        st.query_params.clear()
        st.query_params.update(want)


# -- cached display images ------------------------------------------------------------------
@st.cache_data(max_entries=48, show_spinner=False)
def canvas_image(_store: Store, image_id: str, width: int, height: int) -> bytes:
    """The upright image at canvas size (display copy; the stored file is untouched).

    Cached by image id, which is the hash of the image's bytes."""
    return labeling.display_image(_store.read_image_bytes(image_id), width, height)


@st.cache_data(max_entries=2000, show_spinner=False)
def grid_thumbnail(_store: Store, image_id: str, size: int = 160) -> bytes:
    """An upright thumbnail for the classification grid (cached by image id)."""
    return labeling.thumbnail(_store.read_image_bytes(image_id), size)


def class_colors(names: list[str]) -> dict[str, str]:
    """Hex colour per class, the same as on the other pages when ``core.data.render`` is there."""
    try:
        from core.data.render import color_for
    except ImportError:  # pragma: no cover - render module missing
        return labeling.class_colors(names)
    return {n: "#%02x%02x%02x" % color_for(n) for n in names}


# -- model-assisted labelling -----------------------------------------------------------------
def models_for(store: Store, project: Project) -> list[dict]:
    """Published models of this project with its task (manifests, newest first)."""
    from core.data import artefacts

    try:
        found = artefacts.list_artefacts(store.root, project.name)
    except (OSError, artefacts.ArtefactError):
        return []
    return [m for m in found if m.get("task") == project.task.value]


def predict(model_path: str, image_bytes: bytes) -> Any:
    """Run a published model on one photo (upright), through the Preview page's cached
    Predictor: the Edge TPU when one is attached, else the CPU."""
    from pages._shared.preview import get_predictor

    return get_predictor(model_path, "auto").predict_bytes(image_bytes)
