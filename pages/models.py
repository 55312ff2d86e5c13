"""Models: the trained models of the current project — metrics float vs int8, curves, confusion
matrix, per-class table, Edge TPU preflight, downloads."""

import altair as alt
import pandas as pd
import streamlit as st

from core.training import report
from pages._shared import selection, state, widgets

KEY = "studio.models."
TRAIN_PAGE = "pages/train.py"
PREVIEW_PAGE = "pages/preview.py"
DEPLOY_PAGE = "pages/deploy.py"

project = widgets.require_project()
store = state.get_store()

st.title("Models")
st.caption(f"Trained models of **{project.name}**. Each one holds a float Keras model and the int8 "
           "TensorFlow Lite model for the Coral Edge TPU.")
widgets.show_flashes()

models = report.project_models(store.root, project.name)
if not models:
    st.info("No trained model for this project yet. Start one on the Train page.", icon=":material/info:")
    widgets.page_link(TRAIN_PAGE, "Go to Train", ":material/model_training:")
    st.stop()

by_id = {m["id"]: m for m in models}
selection.model_picker_default(KEY + "model", list(by_id))
chosen = st.selectbox("Model", list(by_id), format_func=lambda i: report.model_label(by_id[i]), key=KEY + "model",
                      on_change=selection.remember_pick, args=(KEY + "model",))
m = by_id.get(chosen) or models[0]
selection.set_current_model(m["id"])
detection = m.get("task") == "detection"


def fmt(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


# -- headline metrics ------------------------------------------------------------------------------
rows = report.metric_comparison(m)
if rows:
    cols = st.columns(len(rows))
    for col, r in zip(cols, rows):
        if r["float"] is None:
            col.metric(r["metric"], fmt(r["int8"]))
        else:
            delta = (r["int8"] - r["float"]) if isinstance(r["int8"], float) and isinstance(r["float"], float) else None
            col.metric(f"{r['metric']} (int8)", fmt(r["int8"]),
                       delta=None if delta is None else f"{delta:+.3f} vs float {r['float']:.3f}",
                       delta_color="normal")
    split = (m.get("metrics") or {}).get("split")
    if split:
        st.caption(f"Measured on the **{split}** split, float Keras model and int8 TFLite model on the same images.")
else:
    st.warning("This model has no evaluation metrics.")
nxt = st.columns(3)
with nxt[0]:
    widgets.page_link(PREVIEW_PAGE, "Try it on photos (Preview)", ":material/visibility:")
with nxt[1]:
    widgets.page_link(DEPLOY_PAGE, "Build a robot image (Deploy)", ":material/smart_toy:")

tab_summary, tab_curves, tab_classes, tab_tpu, tab_files = st.tabs(
    ["Summary", "Training curves", "Per class", "Edge TPU check", "Downloads"])

with tab_summary:
    st.dataframe(pd.DataFrame(report.summary_rows(m)), hide_index=True, width="stretch")

with tab_curves:
    hist = pd.DataFrame(report.history_rows(m))
    if hist.empty:
        st.info("No training history was recorded for this model.")
    else:
        loss = hist[hist["metric"].str.contains("loss")]
        other = hist[~hist["metric"].str.contains("loss")]
        for title, frame in (("Loss", loss), ("Metrics", other)):
            if frame.empty:
                continue
            chart = alt.Chart(frame).mark_line(point=True).encode(
                x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=title.lower()),
                color=alt.Color("metric:N", title=None), tooltip=["epoch", "metric", "value"],
            ).properties(title=title, height=260)
            st.altair_chart(chart, width="stretch")

with tab_classes:
    per_class = pd.DataFrame(report.per_class_rows(m))
    if not per_class.empty:
        st.dataframe(per_class, hide_index=True, width="stretch")
    if detection:
        pr = pd.DataFrame(report.pr_curve_rows(m))
        if not pr.empty:
            st.altair_chart(alt.Chart(pr).mark_line().encode(
                x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1])),
                y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1])), color="class:N",
            ).properties(title="Precision–recall", height=300), width="stretch")
    else:
        kind = st.radio("Confusion matrix of", ["int8", "float"], horizontal=True, key=KEY + "cm_kind")
        cm = pd.DataFrame(report.confusion_rows(m, kind))
        if cm.empty:
            st.info("No confusion matrix recorded.")
        else:
            labels = m.get("labels") or None
            base = alt.Chart(cm).encode(
                x=alt.X("predicted:N", sort=labels, title="predicted"),
                y=alt.Y("true:N", sort=labels, title="true class"))
            heat = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
                                           tooltip=["true", "predicted", "count"])
            text = base.mark_text().encode(text="count:Q")
            st.altair_chart((heat + text).properties(title=f"Confusion matrix ({kind})", height=320),
                            width="stretch")

with tab_tpu:
    pf = m.get("preflight")
    if not pf:
        st.info("No Edge TPU check recorded for this model (it runs after training when the Coral "
                "runtime is installed).")
    else:
        summary = pf.get("summary")
        if pf.get("compilable") is False:
            st.error(summary or "The Edge TPU compiler will refuse this model.")
        elif pf.get("first_cpu_op"):
            first = pf["first_cpu_op"]
            st.warning(f"First op that runs on the CPU: **{first.get('op')}** (#{first.get('index')}) — "
                       f"{first.get('reason') or ''}. It and everything after it run on the CPU.")
        else:
            st.success(summary or "Every op maps to the Edge TPU.")
        if isinstance(pf.get("tpu_share"), (int, float)):
            st.metric("Ops on the Edge TPU", f"{pf['tpu_share']:.0%}")
        ops, first_row = report.preflight_table(m)
        if ops:
            frame = pd.DataFrame(ops)

            def _highlight(row):
                on = first_row is not None and row.name == first_row
                return ["background-color: #ffd6d6; font-weight: bold" if on else ""] * len(row)

            st.dataframe(frame.style.apply(_highlight, axis=1), hide_index=True, width="stretch")
    comp = m.get("compiler")
    if comp:
        st.subheader("Edge TPU compiler")
        st.json(comp, expanded=False)

with tab_files:
    for f in report.download_files(m["path"], m):
        st.download_button(f"Download {f['name']}", data=f["data"], file_name=f["name"], mime=f["mime"],
                           key=KEY + "dl." + f["key"])
    st.caption(f"Folder on the server: `{m['path']}`")
