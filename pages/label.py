"""Label: draw and edit boxes on a canvas (detection) or give photos a class (classification).

Every change is saved as it arrives (the canvas itself forgets unsaved boxes when the page is
left or reloaded), against the revision the canvas was built from, so that two sessions
editing the same photo never silently overwrite each other.
"""

from __future__ import annotations

import streamlit as st

from core.data import labeling
from core.data.annotations import SPLITS, Project, Task
from core.data.store import Store, StoreError
from pages._shared import label_actions as actions
from pages._shared import label_state as ls
from pages._shared.label_actions import NO_CLASS
from pages._shared import retrain, state, widgets

STROKE = 2
NOTICE_ICONS = {"info": ":material/info:", "success": ":material/check_circle:", "warning": ":material/warning:",
                "error": ":material/error:"}


# -- shared parts ----------------------------------------------------------------------------
def _open_linked_image(store: Store, project: Project) -> None:
    """Open the photo a link named (the Dataset page's "Edit labels", a reload); when the
    filters would hide it, they are reset first (before they are drawn)."""
    prefix = ls.pop_pending_image()
    linked = next((i for i in store.image_ids(project) if i.startswith(prefix)), None) if prefix else None
    if linked is None:
        return
    now = _filter_args(*(ls.value(k, ls.ALL) for k in (ls.FILTER_SPLIT, ls.FILTER_CLASS, ls.FILTER_STATUS)))
    if linked not in store.image_ids(project, **now):
        for key in (ls.FILTER_SPLIT, ls.FILTER_CLASS, ls.FILTER_STATUS):
            ls.set_value(key, ls.ALL)
    ls.set_current(linked)


def _filter_args(split: str, label: str, status: str) -> dict:
    """Store filter keyword arguments for the three selectors' values."""
    return {
        "split": None if split == ls.ALL else split,
        "label": None if label == ls.ALL else label,
        "unlabelled": {"Unlabelled": True, "Labelled": False}.get(status),
        "unreviewed": True if status == "Unreviewed" else None,
    }


def _filters(classes: list[str]) -> dict:
    """Split / class / status selectors; returns Store filter keyword arguments."""
    c1, c2, c3 = st.columns(3)
    ls.ensure_choice(ls.FILTER_SPLIT, [ls.ALL, *SPLITS], ls.ALL)
    ls.ensure_choice(ls.FILTER_CLASS, [ls.ALL, *classes], ls.ALL)
    ls.ensure_choice(ls.FILTER_STATUS, list(ls.STATUSES), ls.ALL)
    split = c1.selectbox("Split", [ls.ALL, *SPLITS], key=ls.FILTER_SPLIT)
    label = c2.selectbox("Class", [ls.ALL, *classes], key=ls.FILTER_CLASS)
    status = c3.selectbox("Status", ls.STATUSES, key=ls.FILTER_STATUS,
                          help="Unreviewed: photos with model suggestions nobody accepted yet.")
    return _filter_args(split, label, status)


def _progress(store: Store, project: Project, where) -> None:
    total = store.count_images(project)
    labelled = store.count_images(project, unlabelled=False)
    unreviewed = store.count_images(project, unreviewed=True)
    text = labeling.progress_text(labelled, total)
    if unreviewed:
        text += f" · {unreviewed} to review"
    where.progress(labelled / total if total else 0.0, text=text)


def _add_class_row(store: Store, project: Project, where) -> None:
    # stacked: beside the canvas the panel is too narrow for the button's label next to the field
    where.text_input("New class", key=ls.NEW_CLASS_WIDGET, placeholder="e.g. raccoon")
    where.button("Add class", key=ls.P + "add_class", on_click=actions.add_class, args=(store, project),
                 icon=":material/add:", width="stretch")


def _save_again(store: Store, project: Project) -> None:
    c = ls.conflict()
    if c is not None and ls.save_annotations(store, project, c.pending, redraw=True):
        ls.notice("Saved.", "success")


def _conflict_box(store: Store, project: Project) -> None:
    c = ls.conflict()
    if c is None:
        return
    if c.busy:
        st.error("**Not saved: the database is busy or the disk is full** — another program held it for too "
                 f"long ({c.message}). Your boxes are kept on this page: **Save again** when it is free.",
                 icon=":material/sync_problem:")
        st.button("Save again", key=ls.P + "save_again", on_click=_save_again, args=(store, project),
                  icon=":material/save:")
        return
    st.error("**Not saved: someone else changed this photo** (in another tab or window) after you opened it. "
             "**Load their version** to see their change, or **Keep mine** to replace it with yours.",
             icon=":material/sync_problem:")
    a, b, _ = st.columns([1, 1, 2])
    a.button("Load their version", key=ls.P + "load_theirs", on_click=actions.load_theirs,
             args=(store, project), icon=":material/download:")
    b.button("Keep mine (overwrite)", key=ls.P + "keep_mine", on_click=actions.keep_mine,
             args=(store, project), icon=":material/save:")


def _visible_ids(store: Store, project: Project, flt: dict) -> list[str]:
    """Matching images; the open one stays listed until the user moves on (so labelling an
    image under the "Unlabelled" filter does not whisk it away mid-edit)."""
    ids = store.image_ids(project, **flt)
    cur = ls.current_id()
    same_filter = ls.filters_unchanged(flt)
    if same_filter and cur and cur not in ids:
        keep = set(ids) | {cur}
        ids = [i for i in store.image_ids(project) if i in keep]
    return ids


# -- detection -------------------------------------------------------------------------------
def detection_page(store: Store, project: Project) -> None:
    classes = store.label_map(project).names
    progress_slot = st.empty()
    _open_linked_image(store, project)
    flt = _filters(classes)
    ids = _visible_ids(store, project, flt)
    if not ids:
        _progress(store, project, progress_slot)
        if store.count_images(project):
            st.info("No photos match these filters.", icon=":material/filter_alt_off:")
        else:
            st.info("This project has no photos yet.", icon=":material/image:")
            widgets.page_link(widgets.UPLOAD_PAGE, "Add photos", ":material/upload:")
        return
    cur = ls.current_id()
    if cur not in ids:
        cur = ids[0]
        ls.set_current(cur)
    idx = ids.index(cur)
    n = len(ids)

    # navigation
    unlabelled = set(store.image_ids(project, unlabelled=True))
    nxt = labeling.next_unlabelled(ids, unlabelled, idx)
    c = st.columns([1.2, 1.2, 1.3, 1.6, 3], vertical_alignment="bottom")
    c[0].button("Previous", key=ls.P + "prev", on_click=actions.go, args=(ids[idx - 1],) if idx else (cur,),
                disabled=idx == 0, icon=":material/chevron_left:", width="stretch")
    c[1].button("Next", key=ls.P + "next", on_click=actions.go, args=(ids[min(idx + 1, n - 1)],),
                disabled=idx >= n - 1, icon=":material/chevron_right:", width="stretch")
    ls.set_value(ls.JUMP_WIDGET, idx + 1)
    c[2].number_input(f"Photo (of {n})", min_value=1, max_value=n, step=1, key=ls.JUMP_WIDGET,
                      on_change=actions.jump, args=(ids, idx))
    c[3].button("Next unlabelled", key=ls.P + "next_unlabelled", on_click=actions.next_unlabelled,
                args=(store, project, ids, idx),
                disabled=nxt is None or nxt == idx, icon=":material/skip_next:",
                width="stretch")
    c[4].button("Next most useful photo", key=ls.P + "next_useful", on_click=actions.next_useful,
                args=(store, project, cur), icon=":material/psychology:",
                help="The newest model's pick: the unlabelled photo it is least sure about, then photos "
                     "whose labels it disputes.")

    rec = store.get_image(project, cur)
    s = ls.sync_for(rec)

    # the class new boxes get, and adding a class on the spot
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    if classes:
        class_key = ls.class_widget_key()
        ls.ensure_choice(class_key, classes, classes[0])
        if len(classes) <= 8:
            current_class = left.radio("Class for new boxes", classes, key=class_key, horizontal=True)
        else:
            current_class = left.selectbox("Class for new boxes", classes, key=class_key)
    else:
        current_class = ""
        left.warning("Add a class to start drawing boxes.", icon=":material/label_off:")
    with right.expander("Add a class", expanded=not classes):
        _add_class_row(store, project, st)

    conflict_slot = st.container()

    ls.ensure_choice(ls.SIZE_WIDGET, list(ls.SIZES), "Medium")
    max_w, max_h = ls.SIZES[ls.value(ls.SIZE_WIDGET)]
    mapping = labeling.DisplayMapping.fit(rec.width, rec.height, max_w, max_h)
    colors = ls.class_colors(classes)
    ls.fresh_canvas(s)
    shown = s.drawing_for((mapping.canvas_w, mapping.canvas_h))
    drawing = labeling.annotations_to_drawing(shown, mapping, colors=colors, stroke_width=STROKE)
    background = ls.canvas_image(store, rec.id, mapping.canvas_w, mapping.canvas_h)

    from streamlit_drawable_canvas import st_canvas  # needs a running Streamlit

    show_captions = retrain.captions_toggle(st, len(shown))

    if mapping.canvas_w <= ls.SIDE_PANEL_MAX_CANVAS:
        canvas_col, side = st.columns([max(mapping.canvas_w, 300), 340])
    else:
        canvas_col, side = st.container(), st.container()
    with canvas_col:
        result = st_canvas(
            drawing_mode="labeled_rect", label=current_class, initial_drawing=drawing,
            background_image=background, width=mapping.canvas_w, height=mapping.canvas_h,
            stroke_width=STROKE, stroke_color=colors.get(current_class, "#ffcc00"),
            fill_color="rgba(0, 0, 0, 0)", key=ls.canvas_key(s),
            font_size=retrain.caption_font_size(mapping.canvas_w, len(shown), show_captions),
            disabled=not classes,
        )

    # save what the canvas sent, or follow a change made elsewhere
    change = labeling.canvas_to_annotations(result.boxes, mapping, default_label=current_class,
                                            baseline=s.baseline, stroke_width=STROKE)
    if not labeling.same_annotations(change.annotations, s.baseline):
        epoch = s.epoch
        if ls.save_annotations(store, project, change.annotations, redraw=change.dropped > 0):
            if ls.SYNC.get().epoch != epoch:  # a redraw (a dropped click, or merged with another tab's save)
                st.rerun()
    elif ls.conflict() is None and rec.revision != s.revision:
        ls.reload(rec)
        ls.notice("This photo was changed in another session; showing the latest version.", "info")
        st.rerun()
    elif change.dropped:
        ls.redraw()  # a click without a drag: clear the tiny box it left on the canvas
        st.rerun()
    s = ls.SYNC.get()
    rec = store.get_image(project, cur)
    with conflict_slot:
        _conflict_box(store, project)

    with canvas_col:
        scale = f"shown at {mapping.canvas_w}×{mapping.canvas_h}" + (
            f" ({100 * mapping.sx:.0f}%)" if mapping.canvas_w != rec.width else "")
        st.caption(f"**{rec.filename}** · {rec.width}×{rec.height} px, {scale} · split "
                   f"**{rec.split}** · drag to draw; the toolbar's pencil toggles move/resize, its "
                   "bin deletes the selected box.")
    with side:
        _box_list(store, project, s, classes, colors)
        st.divider()
        a, b = st.columns(2)
        a.button("Undo", key=ls.P + "undo", on_click=actions.undo, args=(store, project),
                 disabled=not store.can_undo(project, rec.id), icon=":material/undo:",
                 width="stretch", help="Undo the last saved change on this photo.")
        unreviewed = [x for x in s.baseline if not x.reviewed]
        b.button("Accept", key=ls.P + "accept", on_click=actions.accept, args=(store, project),
                 disabled=not unreviewed, icon=":material/done_all:", type="primary",
                 width="stretch",
                 help="Mark the model's suggested boxes on this photo as reviewed.")
        if unreviewed or store.count_images(project, unreviewed=True):
            st.button("Accept & next to review", key=ls.P + "accept_next", on_click=actions.accept_and_next,
                      args=(store, project, ids, idx), disabled=not unreviewed,
                      icon=":material/fast_forward:", width="stretch")
        st.select_slider("Canvas size", list(ls.SIZES), key=ls.SIZE_WIDGET)
        _suggest_panel(store, project)
    _progress(store, project, progress_slot)
    ls.write_query(project, rec.id)


def _suggest_panel(store: Store, project: Project) -> None:
    """Model-assisted labelling: predictions become dashed, unreviewed boxes to accept."""
    models = ls.models_for(store, project)
    if not models:
        return
    with st.expander("Suggest boxes with a model", icon=":material/auto_awesome:"):
        ids = [m["id"] for m in models]
        ls.ensure_choice(ls.MODEL_WIDGET, ids, ids[0])
        names = {m["id"]: _model_name(m) for m in models}
        st.selectbox("Model", ids, key=ls.MODEL_WIDGET, format_func=names.get)
        if ls.value(ls.MIN_SCORE_WIDGET) is None:
            ls.set_value(ls.MIN_SCORE_WIDGET, 0.3)
        st.slider("Minimum score", 0.05, 0.95, step=0.05, key=ls.MIN_SCORE_WIDGET)
        st.button("Suggest boxes for this photo", key=ls.P + "suggest", on_click=actions.suggest,
                  args=(store, project, models), icon=":material/auto_awesome:", width="stretch",
                  help="Replaces this photo's unreviewed suggestions; your own boxes stay.")


def _model_name(m: dict) -> str:
    metrics = (m.get("metrics") or {}).get("int8") or (m.get("metrics") or {}).get("float") or {}
    score = metrics.get("mAP50", metrics.get("accuracy"))
    return m["id"] + (f" · {score:.2f}" if isinstance(score, (int, float)) else "")


def _box_list(store: Store, project: Project, s: ls.Sync, classes: list[str],
              colors: dict[str, str]) -> None:
    boxes = [a for a in s.baseline if a.box is not None]
    unreviewed = sum(1 for a in boxes if not a.reviewed)
    head = f"**{len(boxes)} box{'es' if len(boxes) != 1 else ''}**"
    if unreviewed:
        head += f" · :orange[{unreviewed} suggested, not reviewed]"
    st.markdown(head)
    if not boxes:
        st.caption("No boxes yet: drag on the photo to draw one.")
    for i, a in enumerate(boxes):
        key = f"{ls.BOX_PREFIX}{s.epoch}.{s.revision}.{i}"
        r1, r2, r3 = st.columns([3, 3, 1], vertical_alignment="center")
        b = a.box
        tag = "" if a.reviewed else f" · suggested {a.score:.2f}" if a.score is not None else " · suggested"
        r1.markdown(f":material/crop_square: {i + 1}  \n"
                    f"<small>{b.x_min:.0f},{b.y_min:.0f} {b.width:.0f}×{b.height:.0f}{tag}</small>",
                    unsafe_allow_html=True)
        options = classes if a.label in classes else [*classes, a.label]
        r2.selectbox(f"Class of box {i + 1}", options, index=options.index(a.label), key=key,
                     label_visibility="collapsed", on_change=actions.relabel,
                     args=(store, project, s.image_id, s.revision, i, key))
        r3.button("", key=f"{key}.del", icon=":material/delete:", help=f"Delete box {i + 1}",
                  on_click=actions.delete, args=(store, project, s.image_id, s.revision, i))


# -- classification --------------------------------------------------------------------------
def classification_page(store: Store, project: Project) -> None:
    classes = store.label_map(project).names
    progress_slot = st.empty()
    _open_linked_image(store, project)
    flt = _filters(classes)
    total = store.count_images(project, **flt)
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    with right.expander("Add a class", expanded=not classes):
        _add_class_row(store, project, st)
    if not total:
        _progress(store, project, progress_slot)
        st.info("No photos match these filters." if store.count_images(project)
                else "This project has no photos yet.", icon=":material/image:")
        return

    # paging
    ls.ensure_choice(ls.GRID_PER_PAGE, [24, 48, 96], 24)
    per_page = int(ls.value(ls.GRID_PER_PAGE))
    pages = labeling.page_count(total, per_page)
    if not 1 <= int(ls.value(ls.GRID_PAGE, 1) or 1) <= pages:
        ls.set_value(ls.GRID_PAGE, 1)
    page = int(ls.value(ls.GRID_PAGE, 1) or 1)

    # bulk assignment
    selected = ls.grid_selected()
    with left:
        b1, b2, b3 = st.columns([2, 2, 2], vertical_alignment="bottom")
        options = [*classes, NO_CLASS]
        ls.ensure_choice(ls.GRID_BULK_CLASS, options, options[0])
        b1.selectbox("Class for the selection", options, key=ls.GRID_BULK_CLASS)
        b2.button(f"Assign to {len(selected)} selected", key=ls.P + "bulk_assign",
                  on_click=actions.bulk_assign, args=(store, project), disabled=not selected,
                  type="primary", icon=":material/label:", width="stretch")
        b3.button("Clear selection", key=ls.P + "clear_sel", on_click=ls.clear_picks,
                  disabled=not selected, width="stretch")

    recs = store.list_images(project, **flt, offset=(page - 1) * per_page, limit=per_page)
    page_ids = [r.id for r in recs]
    n1, n2, n3, n4 = st.columns([1.2, 1.2, 1, 1], vertical_alignment="bottom")
    n1.button("Select this page", key=ls.P + "pick_page", on_click=ls.pick, args=(page_ids, True),
              icon=":material/select_all:", width="stretch")
    n2.button("Unselect this page", key=ls.P + "unpick_page", on_click=ls.pick,
              args=(page_ids, False), width="stretch")
    n3.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=ls.GRID_PAGE)
    n4.selectbox("Per page", [24, 48, 96], key=ls.GRID_PER_PAGE)

    cols = st.columns(6)
    for k, rec in enumerate(recs):
        with cols[k % 6]:
            with st.container(border=True):
                st.image(ls.grid_thumbnail(store, rec.id), caption=rec.filename,
                         width="stretch")
                pick_key = ls.PICK_PREFIX + rec.id
                if ls.value(pick_key) is None:
                    ls.set_value(pick_key, rec.id in selected)
                st.checkbox("Select", key=pick_key, on_change=ls.toggle_pick, args=(rec.id,))
                current = rec.class_label
                opts = [NO_CLASS, *classes] + ([current] if current and current not in classes else [])
                key = f"{ls.GRID_CLASS_PREFIX}{rec.id}.{rec.revision}"
                st.selectbox("Class", opts, index=opts.index(current) if current else 0, key=key,
                             label_visibility="collapsed", on_change=actions.set_one_class,
                             args=(store, project, rec.id, key))
    _progress(store, project, progress_slot)


# -- the page ------------------------------------------------------------------------------
def main() -> None:
    store = state.get_store()
    qp_project = ls.read_query()
    if qp_project and (state.current_project() is None or state.current_project().name != qp_project):
        try:
            store.get_project(qp_project)
        except StoreError:
            pass
        else:
            state.set_current_project(qp_project)
            st.rerun()
    st.title("Label")
    project = widgets.require_project()
    widgets.show_flashes()
    for kind, msg in ls.pop_notices():  # toasts: they outlive the reruns the canvas triggers on its own
        st.toast(msg, icon=NOTICE_ICONS.get(kind), duration="long" if kind in ("warning", "error") else "short")
    if project.task == Task.DETECTION:
        detection_page(store, project)
    else:
        classification_page(store, project)


main()
