"""The Label page's callbacks: navigation, saving, relabelling, deleting, accepting suggestions,
undo and conflict handling. They run before the page script (Streamlit's on_click/on_change),
so they may set widget values; the page (pages/label.py) only draws."""

from __future__ import annotations

from core.data import labeling
from core.data.annotations import Project
from core.data.store import ConflictError, Store, StoreError
from pages._shared import label_state as ls
from pages._shared import retrain

NO_CLASS = "— no class —"


# -- callbacks (run before the script, so they may set widget values) ---------------------
def go(image_id: str) -> None:
    ls.set_current(image_id)


def next_unlabelled(store: Store, project: Project, ids: list[str], idx: int) -> None:
    nxt = labeling.next_unlabelled(ids, set(store.image_ids(project, unlabelled=True)), idx)
    if nxt is not None:
        ls.set_current(ids[nxt])


def next_useful(store: Store, project: Project, current: str) -> None:
    nxt, why = retrain.next_useful(store, project, current)
    if nxt is not None:
        ls.set_current(nxt)
    ls.notice(f"Next most useful photo: {why}" if nxt else why, "info")


def jump(ids: list[str], shown: int) -> None:
    n = int(ls.value(ls.JUMP_WIDGET) or 1)
    if n - 1 != shown:  # ignore a stale report of the number that was already shown
        ls.set_current(ids[labeling.clamp_index(n - 1, len(ids))])


def add_class(store: Store, project: Project) -> None:
    name = (ls.value(ls.NEW_CLASS_WIDGET) or "").strip()
    if not name:
        ls.notice("Type a name for the new class first.", "warning")
        return
    same = next((c for c in store.label_map(project).names if c.casefold() == name.casefold()), None)
    if same is not None:  # "Raccoon" beside "raccoon" would split one kind of object in two
        ls.notice(f"There is already a class **{same}**: it is selected for new boxes.", "warning")
        ls.choose_class(same)
        ls.set_value(ls.NEW_CLASS_WIDGET, "")
        return
    try:
        store.add_class(project, name)
    except StoreError as exc:
        ls.notice(str(exc), "error")
        return
    ls.choose_class(name)
    ls.set_value(ls.NEW_CLASS_WIDGET, "")
    ls.notice(f"Class **{name}** added: new boxes get it.", "success")


def box_still_there(image_id: str, revision: int, index: int) -> ls.Sync | None:
    """The sync record when box ``index`` of ``image_id`` at ``revision`` is what the user saw.

    Widget callbacks can fire late (e.g. a selector's value arriving with the click that
    opened another photo): they must never touch a different photo or a newer version."""
    s = ls.SYNC.get()
    if s is None or s.image_id != image_id or s.revision != revision:
        return None
    if not 0 <= index < sum(1 for a in s.baseline if a.box is not None):
        return None
    return s


def relabel(store: Store, project: Project, image_id: str, revision: int, index: int,
             key: str) -> None:
    s = box_still_there(image_id, revision, index)
    label = ls.value(key)
    if s is None or not label:
        return
    if [a for a in s.baseline if a.box is not None][index].label == label:
        return
    ls.save_annotations(store, project, labeling.relabel(s.baseline, index, label), redraw=True)


def delete(store: Store, project: Project, image_id: str, revision: int, index: int) -> None:
    s = box_still_there(image_id, revision, index)
    if s is not None:
        ls.save_annotations(store, project, labeling.remove_box(s.baseline, index), redraw=True)


def accept(store: Store, project: Project) -> None:
    s = ls.SYNC.get()
    if s is not None and ls.save_annotations(store, project, labeling.accept_all(s.baseline),
                                             redraw=True):
        ls.notice("Predictions accepted: this photo is reviewed.", "success")


def accept_and_next(store: Store, project: Project, ids: list[str], idx: int) -> None:
    """Accept this photo's suggestions, then open the next photo that still has some."""
    accept(store, project)
    if ls.conflict() is not None:
        return
    nxt = labeling.next_unlabelled(ids, set(store.image_ids(project, unreviewed=True)), idx)
    if nxt is not None and nxt != idx:
        ls.set_current(ids[nxt])
    else:
        ls.notice("Every photo here is reviewed.", "success")


def suggest(store: Store, project: Project, models: list[dict]) -> None:
    """Replace the photo's unreviewed boxes by the chosen model's predictions."""
    s = ls.SYNC.get()
    by_id = {m["id"]: m for m in models}
    model = by_id.get(ls.value(ls.MODEL_WIDGET))
    if s is None or model is None:
        return
    rec = store.get_image(project, s.image_id)
    try:
        pred = ls.predict(model["path"], store.read_image_bytes(rec.id))
    except Exception as exc:  # noqa: BLE001 - a broken model must not break labelling
        ls.notice(f"The model could not run on this photo: {exc}", "error")
        return
    suggested = labeling.predictions_to_annotations(
        pred, min_score=float(ls.value(ls.MIN_SCORE_WIDGET, 0.3)), image_size=(rec.width, rec.height))
    kept = [a for a in s.baseline if a.reviewed]
    if ls.save_annotations(store, project, kept + suggested, redraw=True):
        ls.notice(f"{len(suggested)} suggested box{'es' if len(suggested) != 1 else ''} added "
                  "(dashed): check them, fix what is wrong, then press Accept.", "info")


def undo(store: Store, project: Project) -> None:
    s = ls.SYNC.get()
    if s is None:
        return
    try:
        store.undo(project, s.image_id, expected_revision=s.revision)
    except ConflictError as exc:
        if ls.conflict() is None:  # keep an unsaved version already waiting for a decision
            ls.set_conflict(ls.Conflict(s.image_id, list(s.baseline), str(exc)))
        return
    except StoreError as exc:
        ls.notice(str(exc), "warning")
        return
    rec = store.get_image(project, s.image_id)
    ls.saved(list(rec.annotations), rec.revision, redraw=True)
    ls.notice("Undone.", "info")


def load_theirs(store: Store, project: Project) -> None:
    c = ls.conflict()
    if c is not None:
        ls.reload(store.get_image(project, c.image_id))
        ls.set_conflict(None)


def keep_mine(store: Store, project: Project) -> None:
    c, s = ls.conflict(), ls.SYNC.get()
    if c is None or s is None:
        return
    s.revision = store.get_image(project, c.image_id).revision
    if ls.save_annotations(store, project, c.pending, redraw=True):
        ls.notice("Your version was saved over the other change.", "success")


def bulk_assign(store: Store, project: Project) -> None:
    picked = sorted(ls.grid_selected())
    choice = ls.value(ls.GRID_BULK_CLASS)
    if not picked or not choice:
        return
    label = None if choice == NO_CLASS else choice
    n = store.set_class_label(project, picked, label)
    ls.clear_picks()
    what = f"class **{label}**" if label else "no class"
    ls.notice(f"{n} photo{'s' if n != 1 else ''} now {'have' if n != 1 else 'has'} {what}.", "success")


def set_one_class(store: Store, project: Project, image_id: str, key: str) -> None:
    choice = ls.value(key)
    if not choice:
        return
    label = None if choice == NO_CLASS else choice
    try:
        current = store.get_image(project, image_id).class_label
    except StoreError:
        return
    if label != current:
        store.set_class_label(project, [image_id], label)
