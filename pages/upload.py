"""Upload: bring photos (and their labels, in any common format) into the current project."""

import logging

import streamlit as st

from core.data.annotations import Task
from core.data.exporter import formats_for
from core.data.importer import import_paths, import_uploads
from pages._shared import state, widgets

log = logging.getLogger("studio")

FORMATS = {
    "auto": "Detect automatically (recommended)",
    "voc": "Pascal VOC — one .xml per photo",
    "coco": "COCO — one .json for all photos",
    "yolo": "YOLO — one .txt per photo (+ classes list)",
    "csv": "CSV — Coral / AutoML style",
    "folders": "Folders — one folder per class",
    "images": "Photos only — no labels yet",
}
ACCEPTED = ["zip", "jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff",
            "xml", "json", "txt", "csv", "yaml", "yml"]

store = state.get_store()  # first: asks for the password when needed
st.title("Upload")
project = widgets.require_project()
st.caption(f"Add photos to **{project.name}** ({project.task.value}). Photos you already added are "
           "recognised and skipped, so importing the same files twice is safe.")
widgets.show_flashes()


def _run_import(label: str, do_import) -> None:
    """Run an import with a progress display; keep its report for the next runs."""
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

        try:
            report = do_import(progress).to_dict()
        except Exception as exc:  # noqa: BLE001 - shown to the user, logged for the admin
            log.exception("import failed")
            report = {"refused": f"The import failed: {exc}", "issues": []}
        bar.progress(1.0, text="Finished")
        if report.get("refused"):
            status.update(label="Import refused", state="error", expanded=False)
        else:
            status.update(label=f"Import finished: {report.get('images_added', 0):,} new images",
                          state="complete", expanded=False)
    report["project"] = project.name
    state.UPLOAD_REPORT.set(report)


with st.expander("What can I upload?", icon=":material/help:"):
    if project.task is Task.DETECTION:
        st.markdown(
            "- **Photos with their boxes** from another tool: Pascal VOC (`photo.jpg` + `photo.xml`), "
            "COCO (one `.json`), YOLO (`photo.txt` per photo + `classes.txt`) or a Coral/AutoML CSV.\n"
            "- **Just photos** (JPEG, PNG, …): draw the boxes afterwards on the Label page.\n"
            "- Put many files in **one zip** — folders inside are fine.")
    else:
        st.markdown(
            "- **A zip with one folder per class**, e.g. `ball/…jpg`, `cup/…jpg` — the folder name is "
            "the label.\n"
            "- A Coral/AutoML **CSV** with the photos.\n"
            "- **Just photos**: give them a class afterwards on the Label page.")
choices = [f for f in FORMATS if f in ("auto", "images") or f in formats_for(project.task.value)]
fmt_label = st.selectbox("Annotation format", choices, format_func=FORMATS.get,
                         key="studio.upload.format",
                         help="Leave on automatic unless the studio guesses wrong.")
fmt = None if fmt_label == "auto" else fmt_label

up_tab, path_tab = st.tabs([":material/upload: Upload files", ":material/dns: Folder on the server"])
with up_tab:
    files = st.file_uploader(
        "Photos, annotation files, or zip files", type=ACCEPTED, accept_multiple_files=True,
        key=f"studio.upload.files.{state.UPLOAD_NONCE.get()}",
        help="Select photos together with their annotation files (for example raccoon-1.jpg and "
             "raccoon-1.xml), or one zip file with everything inside.",
    )
    if files:
        total_mb = sum(f.size for f in files) / 1e6
        if st.button(f"Import {len(files):,} file{'s' if len(files) != 1 else ''} ({total_mb:,.1f} MB)",
                     type="primary", icon=":material/download:", key="studio.upload.go"):
            payload = [(f.name, f.getvalue()) for f in files]
            _run_import("Importing your files…",
                        lambda progress: import_uploads(store, project, payload, fmt, progress=progress))
            state.UPLOAD_NONCE.set(state.UPLOAD_NONCE.get() + 1)  # a fresh, empty uploader
            st.rerun()
    else:
        st.caption("Nothing selected yet. Drag photos or a zip onto the box above.")
with path_tab:
    st.write("For big datasets: import a folder or a zip file that is already on the computer running "
             "the studio, without uploading it through the browser.")
    path = st.text_input("Folder or zip path on the server", key="studio.upload.path",
                         placeholder="/home/me/datasets/raccoon")
    if st.button("Import from this path", icon=":material/drive_folder_upload:", key="studio.upload.path_go",
                 disabled=not (path or "").strip()):
        _run_import(f"Importing {path.strip()}…",
                    lambda progress: import_paths(store, project, [path.strip()], fmt, progress=progress))

report = state.UPLOAD_REPORT.get()
if report is not None and report.get("project") == project.name:
    st.divider()
    st.subheader("Last import")
    widgets.show_import_report(report, project.task.value)
    ignored = report.get("files_ignored", 0)
    if ignored:
        st.caption(f"{ignored:,} file{' was' if ignored == 1 else 's were'} neither a photo nor a label file "
                   "(notes, READMEs, system files…) and left out: the rows marked *ignored* say which. "
                   "Nothing is wrong with them, they are just not needed.")
    if report.get("images_added"):
        nxt = st.columns(3)
        with nxt[0]:
            widgets.page_link(widgets.DATASET_PAGE, "See the photos on the Dataset page", ":material/photo_library:")
        with nxt[1]:
            widgets.page_link(widgets.LABEL_PAGE, "Check or add labels on the Label page", ":material/label:")
        with nxt[2]:
            widgets.page_link("pages/train.py", "Train a model", ":material/model_training:")
