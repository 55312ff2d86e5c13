"""Small display helpers shared by the pages: empty states, one-shot messages, import reports."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.data.annotations import Project
from core.data.formats.registry import FORMATS
from pages._shared import state

PROJECTS_PAGE = "pages/projects.py"
UPLOAD_PAGE = "pages/upload.py"
DATASET_PAGE = "pages/dataset.py"
LABEL_PAGE = "pages/label.py"


def show_flashes() -> None:
    """Show (once) the messages queued with ``state.flash`` before the last rerun."""
    for kind, message in state.pop_flashes():
        getattr(st, kind if kind in ("success", "info", "warning", "error") else "info")(message)


def page_link(page: str, label: str, icon: str | None = None, query_params: dict | None = None) -> None:
    """A link to another page; silently nothing when that page is not part of this studio."""
    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except StreamlitAPIException:  # page missing from the navigation (not installed yet)
        pass


def require_project() -> Project:
    """The current project, or an explanation with a link to the Projects page (and stop)."""
    project = state.current_project()
    if project is None:
        st.info("There is no project yet. Create one (or a ready-made demo) on the Projects page.",
                icon=":material/info:")
        page_link(PROJECTS_PAGE, "Go to Projects", ":material/folder_open:")
        st.stop()
    return project


FORMAT_NAMES = {name: mod.TITLE for name, mod in FORMATS.items()}  # "voc" -> "Pascal VOC"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def show_import_report(report: dict, task: str | None = None) -> None:
    """Show an ImportReport (``to_dict()``): a verdict, counts, classes and the issues table.
    ``task`` (the project's) names the label count: boxes for detection, image labels else."""
    if report.get("refused"):
        st.error(f"Nothing was imported. {report['refused']}", icon=":material/block:")
    added, existing = report.get("images_added", 0), report.get("images_existing", 0)
    boxes, labels = report.get("boxes_added", 0), report.get("labels_added", 0)
    issues = report.get("issues") or []
    if not report.get("refused"):
        if added == 0 and existing == 0:
            st.warning("No images were found in what you imported. Upload photos (JPEG, PNG, …), "
                       "a zip of them, or photos together with their annotation files.",
                       icon=":material/image_not_supported:")
        elif added == 0:
            st.info(f"All {_plural(existing, 'image')} were already in this project: nothing new to add.")
        else:
            fmt = report.get("format") or ""
            names = [FORMAT_NAMES.get(f, f) for f in fmt.split("+") if f and f != "images"]
            how = f" (read as {' + '.join(names)})" if names else ""
            st.success(f"Imported {_plural(added, 'new image')}{how}.", icon=":material/check_circle:")
    cols = st.columns(4)
    cols[0].metric("Images added", f"{added:,}")
    cols[1].metric("Already in the project", f"{existing:,}")
    as_boxes = task == "detection" if task else bool(boxes or not labels)
    cols[2].metric("Boxes" if as_boxes else "Image labels", f"{(boxes if as_boxes else labels):,}")
    cols[3].metric("Classes", f"{len(report.get('classes') or []):,}")
    if report.get("classes"):
        new = set(report.get("classes_added") or [])
        st.caption("Classes: " + ", ".join(f"**{c}** (new)" if c in new else c for c in report["classes"]))
    unlabelled = report.get("images_unlabelled", 0)
    if unlabelled:
        st.info(f"{_plural(unlabelled, 'image')} came without labels. You can label them on the Label page.",
                icon=":material/label:")
    if issues:
        ignored = sum(1 for i in issues if i.get("action") == "ignored")
        handled = len(issues) - ignored
        parts = [f"{_plural(handled, 'item')} skipped or repaired"] if handled else []
        if ignored:
            n_files = int(report.get("files_ignored") or ignored)
            parts.append(f"{_plural(n_files, 'file')} ignored")
        st.markdown(f"**{' · '.join(parts)}** — the reason for each:")
        st.dataframe(
            pd.DataFrame(issues, columns=["item", "reason", "action"]),
            hide_index=True,
            width="stretch",
            column_config={
                "item": st.column_config.TextColumn("Item"),
                "reason": st.column_config.TextColumn("Reason", width="large"),
                "action": st.column_config.TextColumn("What happened"),
            },
        )


def preflight_sentences(pf: dict) -> list[str]:
    """An Edge TPU check (a preflight report's ``to_dict()``) in plain sentences, one per line."""
    if pf.get("compilable") is False:
        fatal = str(pf.get("fatal") or "").rstrip(".")
        return [f"The Edge TPU compiler will refuse this model: {fatal}." if fatal
                else "The Edge TPU compiler will refuse this model."]
    out = []
    on, total, share = pf.get("ops_on_tpu"), pf.get("total_ops"), pf.get("tpu_share")
    if isinstance(on, int) and isinstance(total, int) and total:
        out.append(f"The Edge TPU is expected to run {on} of the model's {total} operations ({on / total:.0%}).")
    elif isinstance(share, (int, float)):
        out.append(f"The Edge TPU is expected to run {share:.0%} of the model's operations.")
    before = pf.get("share_before_postprocess")
    if pf.get("has_postprocess") and isinstance(before, (int, float)):
        out.append(f"Before the last step, {before:.0%} of the operations run on the Edge TPU. The last step, "
                   "which picks the final boxes, always runs on the CPU: that is expected.")
    first = pf.get("first_cpu_op")
    if first:
        reason = str(first.get("reason") or "").rstrip(".")
        out.append(f"The first operation that runs on the CPU is **{first.get('op')}** (#{first.get('index')})"
                   + (f": {reason}." if reason else ".") + " It and everything after it run on the CPU.")
    return out
