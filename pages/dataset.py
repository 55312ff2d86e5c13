"""Dataset: browse the photos with their labels, check class balance, edit splits, export."""

import math
import time

import pandas as pd
import streamlit as st

from core.data.annotations import SPLITS, Task
from core.data.store import StoreError
from pages._shared import exports, retrain, state, thumbs, widgets

PER_PAGE = 24
COLUMNS = 6
SPLIT_NAMES = {"train": "Training", "val": "Validation", "test": "Test"}
STATUS = {
    "all": "All images",
    "labelled": "Labelled",
    "unlabelled": "Not labelled yet",
    "unreviewed": "Suggestions to review",
    "mistakes": "Likely mistakes (the newest model disagrees)",
}
EXPORT_FORMATS = {
    "voc": "Pascal VOC (XML per image)",
    "coco": "COCO (one JSON)",
    "yolo": "YOLO (TXT per image)",
    "csv": "CSV (Coral / AutoML)",
    "folders": "Folders (one per class)",
}
ALL = "__all__"

store = state.get_store()  # first: asks for the password when needed
st.title("Dataset")
project = widgets.require_project()
detection = project.task is Task.DETECTION

st.caption(f"**{project.name}** · {project.task.value}")
widgets.show_flashes()

# cheap counts only (indexed queries): the page must open in well under a second at 10,000 images
n_images = store.count_images(project)
if n_images == 0:
    st.info("No images yet — upload some on the Upload page.", icon=":material/photo_library:")
    widgets.page_link(widgets.UPLOAD_PAGE, "Go to Upload", ":material/upload:")
    st.stop()
split_counts = {s: store.count_images(project, split=s) for s in SPLITS}
class_names = store.label_map(project).names

m = st.columns(5)
m[0].metric("Images", f"{n_images:,}")
m[1].metric("Labelled", f"{store.count_images(project, unlabelled=False):,}",
            help="Images with at least one box (detection) or a class (classification).")
m[2].metric("Classes", f"{len(class_names):,}")
m[3].metric("Train / val / test", " / ".join(f"{split_counts[s]:,}" for s in SPLITS),
            help="Training images teach the model; validation images check it while it learns; "
                 "test images give the final score.")
m[4].metric("To review", f"{store.count_images(project, unreviewed=True):,}",
            help="Images with suggested labels nobody has confirmed yet.")

VIEWS = {"gallery": ":material/photo_library: Gallery", "classes": ":material/bar_chart: Classes",
         "split": ":material/call_split: Split", "export": ":material/download: Export"}
view = st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, default="gallery", required=True,
                            key="studio.dataset.view", label_visibility="collapsed")

# -- class management (the Classes view) -----------------------------------------------------
def manage_classes(per_class: dict) -> None:
    """Rename a class, or delete it (its labels deleted or moved to another class)."""
    what = "boxes" if detection else "photo labels"
    with st.expander("Rename or delete a class", icon=":material/edit:"):
        names = list(per_class)
        pick = st.selectbox("Class", names, key="studio.dataset.class_pick")
        used = per_class[pick]["annotations"]
        left, right = st.columns(2)
        with left.form("studio.dataset.rename_class", border=True):
            new = st.text_input("New name", key="studio.dataset.class_new_name")
            if st.form_submit_button("Rename", icon=":material/edit:"):
                new = (new or "").strip()
                clash = next((n for n in names if n.casefold() == new.casefold() and n != pick), None)
                if clash:
                    st.error(f"There is already a class **{clash}**. To merge **{pick}** into it, delete "
                             f"**{pick}** and move its {what} to **{clash}**.")
                else:
                    try:
                        store.rename_class(project, pick, new)
                    except StoreError as exc:
                        st.error(str(exc))
                    else:
                        state.flash(f"Class **{pick}** is now **{new}**.", "success")
                        st.rerun()
        with right.form("studio.dataset.delete_class", border=True):
            moves = {"": f"delete its {used:,} {what}"} if used else {"": "it has no labels"}
            moves.update({n: f"move its {used:,} {what} to {n}" for n in names if n != pick and used})
            target = st.selectbox("And its labels", list(moves), format_func=moves.get,
                                  key="studio.dataset.class_move_to")
            sure = st.checkbox(f"Yes, delete the class {pick}", key="studio.dataset.class_delete_sure")
            if st.form_submit_button("Delete class", icon=":material/delete:"):
                if not sure:
                    st.error("Tick the box to confirm first.")
                else:
                    n = store.delete_class(project, pick, reassign_to=target or None)
                    moved = f"; {n:,} {what} moved to **{target}**" if target else (
                        f"; its {n:,} {what} were deleted" if n else "")
                    state.flash(f"Class **{pick}** deleted{moved}.", "success")
                    st.rerun()


# -- gallery -----------------------------------------------------------------------------
if view == "gallery":
    f = st.columns([2, 2, 2, 1])
    reset_page = lambda: state.set_widget_value(state.DATASET_PAGE_WIDGET, 1)  # noqa: E731
    label = f[0].selectbox("Class", [ALL, *class_names], key="studio.dataset.class", on_change=reset_page,
                           format_func=lambda c: "All classes" if c == ALL else c)
    split = f[1].selectbox("Split", [ALL, *SPLITS], key="studio.dataset.split", on_change=reset_page,
                           format_func=lambda s: "All splits" if s == ALL else SPLIT_NAMES[s])
    status = f[2].selectbox("Show", list(STATUS), format_func=STATUS.get, key="studio.dataset.status",
                            on_change=reset_page)
    if status == "mistakes":
        retrain.mistakes_gallery(store, project, COLUMNS, lambda rec: thumbs.preview(store, rec),
                                 lambda rec: widgets.page_link(widgets.LABEL_PAGE, "Edit labels", ":material/edit:",
                                                               query_params={"project": project.name,
                                                                             "image": rec.id,
                                                                             "link": f"{time.time_ns():x}"}))
        st.stop()
    filters = dict(
        label=None if label == ALL else label,
        split=None if split == ALL else split,
        unlabelled={"labelled": False, "unlabelled": True}.get(status),
        unreviewed=True if status == "unreviewed" else None,
    )
    total = store.count_images(project, **filters)
    pages = max(1, math.ceil(total / PER_PAGE))
    if (state.widget_value(state.DATASET_PAGE_WIDGET, 1) or 1) > pages:
        state.set_widget_value(state.DATASET_PAGE_WIDGET, pages)
    page = f[3].number_input("Page", min_value=1, max_value=pages, step=1, key=state.DATASET_PAGE_WIDGET)
    first = (page - 1) * PER_PAGE
    if total == 0:
        st.info("No images match these filters.", icon=":material/filter_alt_off:")
    else:
        st.caption(f"{total:,} matching images · showing {first + 1:,}–{min(first + PER_PAGE, total):,} "
                   f"· page {page} of {pages:,}")
        records = store.list_images(project, **filters, offset=first, limit=PER_PAGE)
        link_id = f"{time.time_ns():x}"  # new on every drawing: the Label page follows each click once
        selected = state.selected_images()
        for row in range(0, len(records), COLUMNS):
            cols = st.columns(COLUMNS)
            for col, rec in zip(cols, records[row:row + COLUMNS]):
                with col:
                    st.image(thumbs.preview(store, rec), width="stretch")
                    if detection:
                        what = f"{len(rec.boxes)} box{'es' if len(rec.boxes) != 1 else ''}"
                    else:
                        what = rec.class_label or "no class"
                    review = " · :orange[review]" if not rec.reviewed else ""
                    st.caption(f"{rec.filename}  \n{SPLIT_NAMES[rec.split]} · {what}{review}")
                    state.sync_pick(rec.id)
                    st.checkbox("Select", key=state.PICK_PREFIX + rec.id, on_change=state.toggle_selected,
                                args=(rec.id,))
                    widgets.page_link(widgets.LABEL_PAGE, "Edit labels", ":material/edit:",
                                      query_params={"project": project.name, "image": rec.id,
                                                    "link": link_id})
        s = st.columns([2, 2, 4])
        s[0].button("Select this page", key="studio.dataset.select_page", icon=":material/select_all:",
                    on_click=state.select_images, args=([r.id for r in records],))
        s[1].button("Clear selection", key="studio.dataset.clear_selection", icon=":material/deselect:",
                    on_click=state.clear_selection, disabled=not selected)
        s[2].caption(f"{len(selected):,} selected — move them to another split in the Split view.")

# -- classes -----------------------------------------------------------------------------
elif view == "classes":
    with st.spinner("Counting labels per class…"):
        stats = store.stats(project)
    per_class = stats["per_class"]
    if not per_class:
        st.info("No classes yet. Classes appear when you import labelled photos or label them on the "
                "Label page.", icon=":material/label:")
    else:
        df = pd.DataFrame(
            {"class": list(per_class),
             ("boxes" if detection else "labels"): [v["annotations"] for v in per_class.values()],
             "images": [v["images"] for v in per_class.values()]}
        ).set_index("class")
        st.bar_chart(df[["boxes" if detection else "images"]], horizontal=len(df) > 12,
                     y_label="boxes" if detection else "images")
        st.dataframe(df, width="stretch")
        few = [c for c, v in per_class.items() if v["images"] < 10]
        if few:
            st.warning("These classes have fewer than 10 images, which is usually too few to learn from: "
                       + ", ".join(few) + ". Add more photos of them if you can.", icon=":material/warning:")
        unlabelled = stats["images"] - stats["labelled_images"]
        if unlabelled:
            st.caption(f"{unlabelled:,} images have no labels yet; "
                       + ("they teach the model what background looks like." if detection
                          else "they are left out of training until they get a class."))
        manage_classes(per_class)

# -- split ------------------------------------------------------------------------------
elif view == "split":
    st.write("The studio keeps some photos aside to check the model honestly: **validation** photos while "
             "it learns, **test** photos for the final score. Each class is spread evenly over the three.")
    with st.form("studio.dataset.resplit"):
        c = st.columns(3)
        val_pct = c[0].slider("Validation %", 0, 40, 10, step=5)
        test_pct = c[1].slider("Test %", 0, 40, 10, step=5)
        seed = c[2].number_input("Shuffle number (seed)", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                 help="The same number always gives the same split.")
        include_locked = st.checkbox("Also re-split images I moved by hand")
        if st.form_submit_button("Re-split", icon=":material/shuffle:"):
            train_pct = 100 - val_pct - test_pct
            if train_pct <= 0:
                st.error("Leave some photos for training: validation + test must be under 100%.")
            else:
                counts = store.assign_splits(project, (train_pct / 100, val_pct / 100, test_pct / 100),
                                             seed=int(seed), include_locked=include_locked)
                state.flash("New split: " + ", ".join(f"{counts[s]:,} {SPLIT_NAMES[s].lower()}" for s in SPLITS)
                            + ".")
                st.rerun()
    st.markdown("**Move selected images**")
    selected = state.selected_images()
    if not selected:
        st.caption("Select images in the Gallery view first (tick **Select** under a photo).")
    else:
        c = st.columns([2, 3])
        target = c[0].selectbox("Move to", list(SPLITS), format_func=SPLIT_NAMES.get,
                                key="studio.dataset.move_to")
        if c[1].button(f"Move {len(selected):,} selected image{'s' if len(selected) != 1 else ''}",
                       key="studio.dataset.move", icon=":material/drive_file_move:"):
            try:
                n = store.set_split(project, sorted(selected), target)
            except StoreError as exc:
                st.error(str(exc))
            else:
                state.clear_selection()
                state.flash(f"Moved {n:,} images to {SPLIT_NAMES[target].lower()}. Re-splitting later "
                            "leaves them where you put them.")
                st.rerun()

# -- export ------------------------------------------------------------------------------
else:  # export
    st.write("Download the photos with their labels, to keep a copy or use them in another tool. "
             "Importing the download again gives the same dataset.")
    fmts = [f for f in EXPORT_FORMATS if detection or f in ("folders", "csv")]
    c = st.columns([3, 2])
    fmt = c[0].selectbox("Format", fmts, format_func=EXPORT_FORMATS.get, key="studio.dataset.export_fmt")
    if c[1].button("Prepare download", key="studio.dataset.export", icon=":material/archive:"):
        with st.spinner(f"Packing {n_images:,} images…"):
            try:
                name, data, summary = exports.export_zip(store, project, fmt)
            except ImportError:
                st.warning("Export is not available in this version of the studio yet.")
            except Exception as exc:  # noqa: BLE001 - shown as a message, not a traceback
                st.error(f"The export failed: {exc}")
            else:
                st.download_button(f"Download {name} ({len(data) / 1e6:,.1f} MB)", data, file_name=name,
                                   mime="application/zip", type="primary", icon=":material/download:",
                                   on_click="ignore", key="studio.dataset.download")
