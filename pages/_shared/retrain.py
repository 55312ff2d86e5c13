"""Retraining widgets shared by the Train, Models, Label and Dataset pages: resume, start from a
model, class balance, lineage and dataset versions, what to label next / likely mistakes."""

from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd
import streamlit as st

from core.data import artefacts
from core.data import versions
from core.jobs import Job, JobState
from core.data.store import Store
from core.training import class_balance
from core.training.continue_from import ContinueError, check_compatible, parent_manifest

KEY = "studio.retrain."


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "–"


def headline(m: dict) -> str:
    """``mAP@0.5 0.812`` / ``accuracy 0.930`` of a manifest (float, on its own evaluation split)."""
    f = (m.get("metrics") or {}).get("float") or {}
    if f.get("mAP50") is not None:
        return f"mAP@0.5 {f['mAP50']:.3f}"
    if f.get("accuracy") is not None:
        return f"accuracy {f['accuracy']:.3f}"
    return "no metrics"


# -- Train page -------------------------------------------------------------------------------
def resume_controls(store: Store, job: Job, submit: Callable[[dict], None]) -> None:
    """Resume / discard buttons for an interrupted training job (``submit(params)`` starts the resume)."""
    from core.training.resume import discard_checkpoint, prepare_resume, resumable

    if job.state is not JobState.INTERRUPTED or job.kind != "train":
        return
    ok, why = resumable(store, job.id)
    if not ok:
        st.caption(why)
        return
    a, b = st.columns(2)
    if a.button(f"Resume ({why})", key=f"{KEY}resume.{job.id}", type="primary", icon=":material/play_arrow:"):
        try:
            params = prepare_resume(store, job.id)
        except ValueError as exc:
            st.error(str(exc))
        else:
            submit(params)
    if b.button("Discard its checkpoint", key=f"{KEY}discard.{job.id}", icon=":material/delete:"):
        discard_checkpoint(store, job.id)
        st.rerun()


def start_from_options(store: Store, project_name: str, task: str) -> dict[str | None, str]:
    """``{None: "ImageNet or nothing (the setting below)", model_id: "model #… (date, classes, mAP)"}``."""
    out: dict[str | None, str] = {None: "A new model (starting weights below)"}
    for m in artefacts.list_artefacts(store.root, project_name):
        if m.get("task") != task:
            continue
        size = (m.get("input_size") or ["?"])[0]
        alpha = (m.get("model") or {}).get("alpha", "?")
        out[m["id"]] = (f"model {m['id']} ({_when(m.get('created'))}, {len(m.get('labels') or [])} classes: "
                        f"{', '.join((m.get('labels') or [])[:4])}, {headline(m)}, {size}px, width {alpha})")
    return out


def check_start_from(store: Store, model_id: str | None, task: str, image_size: int, alpha: float) -> str | None:
    """The refusal to show when continuing from ``model_id`` cannot work with these settings."""
    if not model_id:
        return None
    try:
        check_compatible(parent_manifest(store, model_id)[1], task, image_size, alpha)
    except ContinueError as exc:
        return str(exc)
    return None


def class_balance_panel(store: Store, project: Any) -> None:
    """The training split's class counts and a warning for classes with very few examples."""
    counts = class_balance.class_counts(store, project)
    if not counts:
        return
    what = "boxes" if project.task.value == "detection" else "photos"
    with st.expander(f"Class balance (training {what} per class)", expanded=bool(class_balance.few_warnings(counts))):
        top = max(counts.values()) or 1
        st.markdown("\n".join(f"- **{name}**: {n:,} " + "▮" * max(1 if n else 0, round(20 * n / top))
                               for name, n in sorted(counts.items(), key=lambda kv: -kv[1])))
        for msg in class_balance.few_warnings(counts):
            st.warning(msg, icon=":material/balance:")


BALANCE = {
    "classification": {"auto": "Class weights (rare classes count more in the loss)", "none": "None"},
    "detection": {"none": "None (each photo once per epoch)",
                  "sampling": "Class-balanced sampling (photos of rare classes repeated)"},
}


# -- Models page ------------------------------------------------------------------------------
def lineage_section(store: Store, project: Any, m: dict) -> None:
    """Parent → child with metrics on the current validation split; the dataset version and its changes."""
    from core.training.lineage import chain, evaluate_current

    try:
        ch = versions.changes_since(versions.read_version(m["path"]), store, project)
        st.markdown(f"**Dataset:** {versions.describe(ch)}.")
        has_version = True
    except versions.VersionError as exc:
        st.caption(str(exc))
        has_version = False
    models = chain(store.root, m["id"])
    if len(models) > 1:
        st.markdown("**Lineage** (newest first): " + " ← ".join(
            f"`{x['id']}`" + (" (deleted)" if x.get("missing") else "") for x in models))
    split = st.selectbox("Compare on the current split", ["val", "test", "all"],
                         key=f"{KEY}lineage.split.{m['id']}")
    if st.button("Evaluate on the current split", key=f"{KEY}lineage.eval.{m['id']}", icon=":material/compare:",
                 help="Every model of the lineage is evaluated on the same photos, as the dataset is now."):
        rows = []
        with st.spinner("Evaluating…"):
            for x in models:
                if x.get("missing"):
                    continue
                try:
                    r = evaluate_current(store, x["id"], project, split)
                except Exception as exc:  # noqa: BLE001 - one unreadable model must not hide the others
                    r = {"error": str(exc)}
                rows.append({"model": x["id"], "trained": _when(x.get("created")), **r})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if has_version:
        with st.expander("Restore or export the exact dataset this model was trained on"):
            name = st.text_input("New project name", f"{project.name} @ {m['id']}", key=f"{KEY}restore.{m['id']}")
            if st.button("Restore into a new project", key=f"{KEY}restore.go.{m['id']}", icon=":material/restore:"):
                try:
                    p = versions.restore(store, versions.read_version(m["path"]), name.strip())
                except (versions.VersionError, ValueError) as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Restored into project **{p.name}** ({store.count_images(p)} photos, dataset hash "
                               f"{store.dataset_hash(p)[:12]}). Export it from its Dataset page.")


# -- Label / Dataset pages --------------------------------------------------------------------
@st.cache_data(show_spinner="Running the model over the photos…", max_entries=4)
def _ranking(root: str, project_name: str, model_id: str, dataset_hash: str) -> dict:
    from core.training.active_learning import rank_photos

    store = Store(root)
    return rank_photos(store, store.get_project(project_name), model_id)


def latest_model(store: Store, project: Any) -> str | None:
    models = [m for m in artefacts.list_artefacts(store.root, project.name) if m.get("task") == project.task.value]
    return models[0]["id"] if models else None


def ranking(store: Store, project: Any, model_id: str | None = None) -> dict | None:
    """The newest model's ranking of this project's photos (cached until the dataset changes)."""
    model_id = model_id or latest_model(store, project)
    if model_id is None:
        return None
    return _ranking(str(store.root), project.name, model_id, store.dataset_hash(project))


def mistakes_gallery(store: Store, project: Any, columns: int, thumb: Callable, edit_link: Callable) -> None:
    """The Dataset page's *likely mistakes* filter: photos whose labels the newest model disputes."""
    r = ranking(store, project)
    if r is None:
        st.info("Train a model first: it is what finds the likely mistakes.", icon=":material/info:")
        return
    items = r["mistakes"][:60]
    st.caption(f"{len(r['mistakes'])} photos whose labels model {r['model']} disputes, most suspicious first "
               "(showing up to 60).")
    for row in range(0, len(items), columns):
        cols = st.columns(columns)
        for col, item in zip(cols, items[row:row + columns]):
            with col:
                rec = store.get_image(project, item["image_id"])
                st.image(thumb(rec), width="stretch")
                st.caption(f"{rec.filename} · score {item['score']:.2f}  \n" + "  \n".join(item["reasons"][:3]))
                edit_link(rec)


def next_useful(store: Store, project: Any, current: str | None) -> tuple[str | None, str]:
    """The next most useful photo to label (not ``current``) and why."""
    r = ranking(store, project)
    if r is None:
        return None, "Train a model first: it ranks the photos."
    for item in r["next"]:
        if item["image_id"] != current:
            return item["image_id"], f"the model is unsure here (uncertainty {item['score']:.2f})"
    for item in r["mistakes"]:
        if item["image_id"] != current:
            return item["image_id"], "; ".join(item["reasons"][:2])
    return None, "Nothing left to label or check."


# -- dense photos on the Label page -----------------------------------------------------------
CAPTIONS_WIDGET = KEY + "label.captions"


def caption_font_size(canvas_w: int, n_boxes: int, show: bool = True) -> int:
    """Box caption size for the canvas: scales with the shown photo, shrinks on crowded photos; 1 px
    (a dot) when captions are hidden -- the canvas has no switch for them and the label must stay."""
    if not show:
        return 1
    size = max(9, min(18, round(canvas_w / 45)))
    if n_boxes >= 20:
        size = max(8, round(size * 0.7))
    return size


def captions_toggle(where: Any, n_boxes: int) -> bool:
    """The "Box captions" toggle (off by default on photos with 20+ boxes)."""
    if CAPTIONS_WIDGET not in st.session_state:
        st.session_state[CAPTIONS_WIDGET] = n_boxes < 20
    return where.toggle("Box captions", key=CAPTIONS_WIDGET,
                        help="Hide the class names on the boxes when a photo has many of them.")
