"""Models: the trained models of the current project — metrics float vs int8, curves, confusion
matrix, per-class table, Edge TPU preflight, downloads."""

import shlex
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from builder import runtime_pins
from core.data import artefacts
from core.training import report
from coral_runtime import compiler
from pages._shared import jobs as sj
from pages._shared import retrain, selection, state, widgets

KEY = "studio.models."
TRAIN_PAGE = "pages/train.py"
PREVIEW_PAGE = "pages/preview.py"
DEPLOY_PAGE = "pages/deploy.py"

st.title("Models")
project = widgets.require_project()
store = state.get_store()

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
            continue
        delta = (r["int8"] - r["float"]) if isinstance(r["int8"], float) and isinstance(r["float"], float) else None
        if delta is None:
            col.metric(f"{r['metric']} (int8)", fmt(r["int8"]))
        elif round(delta, 3) == 0:  # no change: no arrow, no colour
            col.metric(f"{r['metric']} (int8)", fmt(r["int8"]), delta=f"no change vs float {r['float']:.3f}",
                       delta_color="off", delta_arrow="off")
        else:
            col.metric(f"{r['metric']} (int8)", fmt(r["int8"]), delta=f"{delta:+.3f} vs float {r['float']:.3f}",
                       delta_color="normal")
    if (m.get("metrics") or {}).get("split"):
        where, flattering = report.measured_on(m)
        (st.warning if flattering else st.caption)(where)
    n_eval = report.evaluated_photos(m)
    if n_eval is not None and n_eval < report.FEW_PHOTOS:
        many = "no photos at all" if n_eval == 0 else f"only {n_eval} photo{'s' if n_eval != 1 else ''}"
        st.warning(f"These scores are measured on {many}, so they are not reliable: one photo more or less "
                   "changes them a lot. Add more photos (or move some to the test split on the Dataset page) "
                   f"so that at least {report.FEW_PHOTOS} — better 20 or more — are kept for testing, and train "
                   "again.",
                   icon=":material/warning:")
else:
    st.warning("This model has no evaluation metrics.")
nxt = st.columns(3)
with nxt[0]:
    widgets.page_link(PREVIEW_PAGE, "Try it on photos (Preview)", ":material/visibility:")
with nxt[1]:
    widgets.page_link(DEPLOY_PAGE, "Build a robot image (Deploy)", ":material/smart_toy:")


def _how_to_compile(m: dict) -> None:
    """How to compile the int8 model where the Edge TPU compiler exists (coral_runtime.compiler's recipe)."""
    folder = Path(m["path"])
    int8 = folder / ((m.get("files") or {}).get("int8") or artefacts.INT8_MODEL)
    st.markdown("**How to compile it.** The compiler exists only for x86-64 Debian or Ubuntu computers, from "
                "Coral's apt repository (`apt-get install edgetpu-compiler`). On such a computer, with the studio "
                "installed, compile the model folder:")
    st.code(f"studio compile {shlex.quote(str(folder))}", language="bash")
    st.markdown(f"It writes `{artefacts.EDGETPU_MODEL}` into the model folder. Compiled on another computer? "
                f"Copy that file into `{folder}` here: Preview and the robot image (Deploy) use it from then on.")
    with st.expander("Or use the compiler container (any x86-64 computer with Docker and internet)"):
        cmds = compiler.docker_commands(int8, folder)
        st.markdown("Save this as `Dockerfile` in an empty folder:")
        st.code(compiler.DOCKERFILE, language="dockerfile")
        st.markdown("Then build the image in that folder and run it on the model:")
        st.code(shlex.join(cmds["build"]) + "\n" + shlex.join(cmds["run"]), language="bash")


tab_summary, tab_lineage, tab_curves, tab_classes, tab_tpu, tab_files = st.tabs(
    ["Summary", "Lineage & dataset", "Training curves", "Per class", "Edge TPU check", "Downloads"])

with tab_lineage:
    retrain.lineage_section(store, project, m)

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
            frame = frame.assign(metric=frame["metric"].map(sj.metric_name))
            chart = alt.Chart(frame).mark_line(point=True).encode(
                x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
                y=alt.Y("value:Q", title=title.lower(), axis=alt.Axis(tickCount=6)),
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
        # one sentence per paragraph: a single newline would run them together in Markdown
        said = "\n\n".join(widgets.preflight_sentences(pf))
        if pf.get("compilable") is False:
            st.error(said or "The Edge TPU compiler will refuse this model.")
        elif pf.get("first_cpu_op"):
            st.warning(said)
        else:
            st.success(said or "Every operation is expected to run on the Edge TPU.")
        if isinstance(pf.get("tpu_share"), (int, float)):
            st.metric("Ops on the Edge TPU", f"{pf['tpu_share']:.0%}")
        ops, first_row = report.preflight_table(m)
        if ops:
            frame = pd.DataFrame(ops)

            def _highlight(row):
                on = first_row is not None and row.name == first_row
                return ["background-color: #ffd6d6; font-weight: bold" if on else ""] * len(row)

            st.dataframe(frame.style.apply(_highlight, axis=1), hide_index=True, width="stretch")
    st.caption(runtime_pins.compiler_and_runtime_note(m))
    comp = m.get("compiler")
    st.subheader("Edge TPU compiler")
    if comp and comp.get("ok"):
        ops = (f": {comp['ops_on_tpu']} of {comp['total_ops']} operations on the Edge TPU"
               if comp.get("total_ops") else "")
        st.success(f"Compiled for the Edge TPU{ops}. Preview and the robot image use "
                   f"`{artefacts.EDGETPU_MODEL}` on a Coral Edge TPU.")
    elif comp:
        error = str(comp.get("error") or "").rstrip(".")
        st.error("The Edge TPU compiler could not compile this model" + (f": {error}." if error else ".")
                 + (f"\n\n{comp['advice']}" if comp.get("advice") else ""))
    else:
        installed = compiler.find_compiler() is not None
        st.info("**Not compiled for the Edge TPU.** "
                + ("The Edge TPU compiler was not run for this model. " if installed else
                   "The Edge TPU compiler (`edgetpu_compiler`) is not installed on this computer, so this model "
                   "was not compiled here. ")
                + "Until it is compiled, Preview and the robot image run the int8 model on the CPU, "
                  "even with a Coral Edge TPU plugged in.", icon=":material/info:")
        _how_to_compile(m)
    if comp:
        with st.expander("What the compiler reported"):
            st.json(comp, expanded=False)

with tab_files:
    for f in report.download_files(m["path"], m):
        st.download_button(f"Download {f['name']}", data=f["data"], file_name=f["name"], mime=f["mime"],
                           key=KEY + "dl." + f["key"])
    st.caption(f"Folder on the server: `{m['path']}`")
