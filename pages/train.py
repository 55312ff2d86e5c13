"""Train: choose settings, start a training job, follow it live, cancel it, see past runs."""

import time

import pandas as pd
import streamlit as st

from core.jobs import Job, JobError, JobState
from core.training import weights as pretrained
from core.training.hparams import ClassificationHParams, DetectionHParams, hparams_for
from pages._shared import devices
from pages._shared import jobs as sj
from pages._shared import retrain, selection, state, widgets

MODELS_PAGE = "pages/models.py"
REFRESH_SECONDS = 2.0
KEY = "studio.train."

st.title("Train")
project = widgets.require_project()
store = state.get_store()
runner = sj.get_runner()
task = project.task.value
DEFAULTS = DetectionHParams() if task == "detection" else ClassificationHParams()

st.caption(f"Train a {task} model for **{project.name}** that runs on the Coral Edge TPU. Training runs "
           "in the background: you can leave this page and come back.")
widgets.show_flashes()

# -- presets ---------------------------------------------------------------------------------------
PRESETS = {
    "quick": "Quick run — a few minutes, to try things out",
    "full": "Full training — the best model",
}
QUICK = {
    "classification": {"image_size": 96, "epochs": 3, "batch_size": 16, "alpha": 0.35, "max_images": 200},
    "detection": {"image_size": 256, "epochs": 5, "batch_size": 8, "alpha": 0.35, "max_images": 100},
}
IMAGE_SIZES = {"classification": [96, 128, 160, 192, 224], "detection": [256, 300, 320]}
ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
BATCH_SIZES = [4, 8, 16, 32, 64]
WEIGHTS = {
    "imagenet": "ImageNet — pretrained, best with few photos (downloaded once, needs internet)",
    "none": "From scratch — no download, needs many more photos and epochs",
    "file": "A Keras weights file on the server",
}


FULL_MINUTES = 25  # detection's Full training preset is a time budget
FULL_EPOCHS_MEASURED = 66  # docs/BENCHMARKS.md, bench_detection 2026-12-08: epochs planned for 25 min on raccoon


def preset_values(preset: str) -> dict:
    values = DEFAULTS.to_dict()
    if preset == "quick":
        values.update(QUICK[task])
    elif task == "detection":
        values["minutes"] = FULL_MINUTES
    return values


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "–"


# -- one job: progress, curves, logs, cancel -------------------------------------------------------
def render_job(job: Job) -> None:
    icon = sj.STATE_ICONS.get(job.state, "")
    st.subheader(f"{icon} Training job {job.id}")
    st.caption(f"Started {when(job.started or job.created)} · {job.state.value}")
    if job.state is JobState.QUEUED:
        st.info("Waiting for the job before it to finish. It starts on its own.", icon=":material/schedule:")
    fraction = min(max(job.progress or 0.0, 0.0), 1.0)
    events = runner.events(job.id)
    where = devices.trained_on(events)
    if where:
        st.caption(f":material/memory: {'Training' if job.active else 'Trained'} on {where}")
    left = sj.seconds_left(job, events)
    parts = [f"{fraction * 100:.0f}%"]
    if job.total_epochs:
        parts.append(f"epoch {job.epoch or 0}/{job.total_epochs}")
    if left is not None:
        parts.append(f"about {sj.format_seconds(left)} left")
    st.progress(fraction, text=" · ".join(parts))
    c1, c2, c3 = st.columns(3)
    c1.metric("Epoch", f"{job.epoch or 0} / {job.total_epochs}" if job.total_epochs else "–")
    c2.metric("Running for" if job.active else "Ran for", sj.format_seconds(job.duration))
    c3.metric("Time left", sj.format_seconds(left) if left is not None else "–")
    if job.message and job.state is not JobState.FAILED:  # a failure is shown above, in full
        st.caption(job.message)

    curves = sj.epoch_curves(events)
    if curves:
        df = pd.DataFrame(curves).sort_index()
        df.index.name = "epoch"
        losses = [c for c in df.columns if "loss" in c]
        others = [c for c in df.columns if "loss" not in c and c not in ("lr", "learning_rate")]
        if len(df) < 2:  # one point makes no line: show the numbers
            last = df.iloc[-1]
            st.caption(f"After epoch {int(df.index[-1])}: "
                       + ", ".join(f"{sj.metric_name(c)} {last[c]:.4f}" for c in [*losses, *others]))
            losses, others = [], []
        left, right = st.columns(2) if len(losses) <= 2 else (st.container(), st.container())
        if losses:
            left.markdown("**Loss** (lower is better)")
            left.line_chart(df[losses].rename(columns=sj.metric_name), x_label="epoch")
        if others:
            right.markdown("**Metrics**")
            right.line_chart(df[others].rename(columns=sj.metric_name), x_label="epoch")
    elif job.active:
        st.caption("Curves appear after the first epoch.")

    if job.active:
        if st.button("Cancel training", key=f"{KEY}cancel.{job.id}", icon=":material/stop_circle:"):
            runner.cancel(job.id)
            st.toast("Cancelling… the job stops after the current batch.")
    known = pretrained.is_download_failure(job.error)  # explained above: the log is for the curious
    with st.expander("Log", expanded=job.state is JobState.FAILED and not known):
        lines = runner.logs(job.id, tail=60)
        st.code("\n".join(lines) if lines else "(nothing logged yet)", language=None)


@st.fragment(run_every=REFRESH_SECONDS)
def live_job(job_id: str) -> None:
    """Redrawn every few seconds while the job runs; a full rerun once it has ended."""
    job = runner.get(job_id)
    render_job(job)
    if job.state.finished:
        st.rerun()


def finished_job(job: Job) -> None:
    """The outcome first (with the way on to the model), then the run's details."""
    if job.state is JobState.SUCCEEDED:
        res = sj.result_metric(job, store)
        shown = f" — {res[0]} {res[1]:.3f}" if res else ""
        st.success(f"Training finished{shown}. The model is **{job.artefact_id}**.", icon=":material/check:")
        hint = sj.weak_result_hint(res[0], res[1], len(store.label_map(project).names)) if res else None
        hint = _manifest_advice(job) or hint
        if hint:
            st.warning(hint, icon=":material/trending_flat:")
        selection.set_current_model(job.artefact_id)
        widgets.page_link(MODELS_PAGE, "See its metrics and Edge TPU check on the Models page",
                          ":material/inventory_2:")
    elif job.state is JobState.FAILED and pretrained.is_download_failure(job.error):
        weights_failed(job)
    elif job.state is JobState.FAILED:
        st.error(job.message or "Training failed.", icon=":material/error:")
    elif job.state is JobState.CANCELLED:
        st.info("This training was cancelled. Nothing was saved.", icon=":material/stop_circle:")
    elif job.state is JobState.INTERRUPTED:
        st.warning(job.message or "The app stopped during this training. Start it again.",
                   icon=":material/warning:")
        retrain.resume_controls(store, job, lambda params: start_training(runner, params, "Training resumed."))
    render_job(job)
    if st.button("Dismiss", key=f"{KEY}dismiss.{job.id}"):
        sj.set_current_job(project.name, None)
        st.rerun()


def _manifest_advice(job: Job) -> str | None:
    """The trainer's own advice for a weak detector (likely reason, what to try), if any."""
    from core.data import artefacts

    if task != "detection" or not job.artefact_id:
        return None
    try:
        m = artefacts.load_manifest(artefacts.artefact_path(store.root, job.artefact_id))
    except (artefacts.ArtefactError, OSError, ValueError):
        return None
    return (m.get("training") or {}).get("advice")


def start_training(target, params: dict, started: str = "Training started.") -> None:
    """Submit a training job to ``target`` (this machine's runner or the Ray cluster's), follow it on
    this page and say whether it started or waits behind another job; a refusal is shown here."""
    busy = [j for j in runner.list(limit=50) if j.active and j.kind not in sj.LANES
            and j.runner != "ray"] if target is runner else []
    try:
        job_id = target.submit("train", params, project=project.name)
    except JobError as exc:
        st.error(str(exc))
        return
    sj.set_current_job(project.name, job_id)
    state.flash("Training queued: it starts when the running job has finished." if busy else started,
                "info" if busy else "success")
    st.rerun()


def weights_failed(job: Job) -> None:
    """The pretrained weights could not be downloaded: say it plainly, offer the way on."""
    st.error("**Training did not start: the pretrained ImageNet weights could not be downloaded.** "
             "This computer seems to have no internet access. Train from scratch instead (it needs more "
             "photos and epochs to do as well), or copy the weights file onto this computer.",
             icon=":material/cloud_off:")
    if st.button("Train from scratch instead", key=f"{KEY}scratch.{job.id}", type="primary",
                 icon=":material/play_arrow:"):
        start_training(runner, {**job.params, "hparams": {**job.params.get("hparams", {}), "weights": "none"}},
                       "Training started, from scratch.")
    with st.expander("Use the pretrained weights without internet"):
        st.markdown(job.error or "")


current = sj.current_job(runner, project.name)
if current is not None:
    with st.container(border=True):
        if current.active:
            live_job(current.id)
        else:
            finished_job(current)

# -- is the dataset ready? -------------------------------------------------------------------------
stats = store.stats(project)
errors, warnings = sj.dataset_problems(stats, task)
for msg in errors:
    st.error(msg, icon=":material/block:")
for msg in warnings:
    st.warning(msg, icon=":material/warning:")
if errors:
    widgets.page_link("pages/label.py", "Label images", ":material/label:")
    widgets.page_link("pages/upload.py", "Upload photos", ":material/upload:")
    widgets.page_link("pages/dataset.py", "Rename or delete classes (Dataset page, Classes view)",
                      ":material/bar_chart:")

# -- settings ----------------------------------------------------------------------------------------
if not errors:
    n_img, n_cls = stats["labelled_images"], stats["classes"]
    st.markdown(f"**Dataset:** {n_img} labelled image{'s' if n_img != 1 else ''} in {n_cls} "
                f"class{'es' if n_cls != 1 else ''} "
                f"(train {stats['per_split'].get('train', 0)}, val {stats['per_split'].get('val', 0)}, "
                f"test {stats['per_split'].get('test', 0)}).")
    retrain.class_balance_panel(store, project)
    preset = st.radio("Preset", list(PRESETS), format_func=PRESETS.get, horizontal=True, key=f"{KEY}preset")
    # the form starts from the project's last run with this preset (Streamlit forgets the values of
    # widgets that were not on the page), and proposes "From scratch" after a failed ImageNet download
    recent = runner.list(limit=50)  # newest first
    v = {**preset_values(preset), **sj.last_settings(recent, project.name, task, preset)}
    k = f"{KEY}{task}.{preset}."  # each preset/task keeps its own widget values
    offline = sj.imagenet_download_failed(recent)
    weights_default = v.get("weights_choice") or ("imagenet" if v["weights"] == "imagenet" else "none")
    if offline and weights_default == "imagenet":
        weights_default = "none"
    with st.form(f"{KEY}form", border=True):
        st.markdown("**Settings**")
        a, b, c = st.columns(3)
        sizes = IMAGE_SIZES[task]
        image_size = a.selectbox("Image size (pixels)", sizes, index=sizes.index(v["image_size"])
                                 if v["image_size"] in sizes else len(sizes) - 1, key=k + "image_size",
                                 help="Photos are resized to this square. Smaller is faster, larger sees "
                                      "more detail.")
        epochs = b.number_input("Epochs", 1, 500, int(v["epochs"]), key=k + "epochs",
                                help="How many times training goes through all photos.")
        batch_size = c.selectbox("Batch size", BATCH_SIZES, index=BATCH_SIZES.index(v["batch_size"])
                                 if v["batch_size"] in BATCH_SIZES else 2, key=k + "batch_size")
        a, b, c = st.columns(3)
        learning_rate = a.number_input("Learning rate", 1e-6, 1.0, float(v["learning_rate"]), step=1e-4,
                                       format="%.5f", key=k + "learning_rate")
        alpha = b.selectbox("Model width (alpha)", ALPHAS, index=ALPHAS.index(v["alpha"]), key=k + "alpha",
                            help="MobileNetV2 width: 0.35 is small and fast, 1.0 is the standard size.")
        max_images = c.number_input("Use at most this many images (0 = all)", 0, 1_000_000,
                                    int(v.get("max_images") or 0), key=k + "max_images")
        minutes = 0.0
        if task == "detection":
            minutes = st.number_input(
                "Train for … minutes (0 = use the epochs above)", 0.0, 24 * 60.0, float(v.get("minutes") or 0.0),
                step=5.0, key=k + "minutes",
                help="The run ends on time: the number of epochs and the learning-rate schedule follow the "
                     "clock, and the weights with the best validation mAP are kept.")
            st.caption(f"For scale: {FULL_MINUTES} minutes plan about {FULL_EPOCHS_MEASURED} epochs on the raccoon set "
                       "(160 photos, 320 px, width 0.35) on a 2-core CPU. The job shows its planned epochs once "
                       "the first ones are timed.")
        augment = st.checkbox("Augment photos (random flips, crops, colour changes)", bool(v["augment"]),
                              key=k + "augment")
        train_all = st.checkbox("Train on all images (also validation and test)", v["train_on"] == "all",
                                key=k + "train_all",
                                help="Uses every labelled photo for training. The reported accuracy is then "
                                     "measured on photos the model has seen, so it looks better than it is.")
        start_options = retrain.start_from_options(store, project.name, task)
        start_from = st.selectbox("Start from", list(start_options), format_func=start_options.get,
                                  key=k + "start_from",
                                  help="Continue from a model of this project: it keeps what it learnt (new "
                                       "classes start fresh). It needs the same image size and width.")
        balance_opts = retrain.BALANCE[task]
        balance = st.radio("Class balance", list(balance_opts), format_func=balance_opts.get, horizontal=True,
                           key=k + "class_balance")
        # a new selector once the download has failed: the browser would keep showing ImageNet otherwise
        weights_choice = st.radio("Starting weights", list(WEIGHTS), format_func=WEIGHTS.get,
                                  index=list(WEIGHTS).index(weights_default),
                                  key=k + ("weights.offline" if offline else "weights"))
        if offline:
            st.caption(":material/cloud_off: The ImageNet weights could not be downloaded earlier (no internet?): "
                       "*From scratch* is proposed.")
        weights_file = st.text_input("Weights file path (only with 'A Keras weights file on the server')",
                                     v.get("weights_file", ""), key=k + "weights_file",
                                     placeholder="/data/weights/mobilenet_v2_….h5")
        extras: dict = {}
        if task == "detection":
            st.markdown("**Detection output**")
            a, b, c = st.columns(3)
            extras["score_threshold"] = a.slider("Minimum score", 0.01, 0.95, float(v["score_threshold"]), 0.01,
                                                 key=k + "score_threshold",
                                                 help="Boxes with a lower confidence are dropped inside the "
                                                      "model. Preview can hide more boxes later, never show "
                                                      "fewer-scored ones: keep it low to see what an early "
                                                      "model finds.")
            extras["iou_threshold"] = b.slider("Overlap (IoU) for merging boxes", 0.1, 0.9,
                                               float(v["iou_threshold"]), 0.05, key=k + "iou_threshold")
            extras["max_detections"] = c.number_input("Max boxes per photo", 0, 100,
                                                      int(v["max_detections"] or 0), key=k + "max_detections",
                                                      help="0 = from the data: twice the most boxes in one "
                                                           "training photo, 20 to 100.")
            if minutes:
                extras["minutes"] = float(minutes)
        st.markdown("**Device**")
        dv = devices.last_choice(recent, project.name)
        a, b = st.columns(2)
        device_choice = a.selectbox("Device", list(devices.DEVICES), format_func=devices.DEVICES.get,
                                    index=list(devices.DEVICES).index(dv["device"]), key=f"{KEY}device")
        mixed = b.checkbox("Mixed precision (GPU only)", dv["mixed_precision"], key=f"{KEY}mixed_precision",
                           help="float16 compute with float32 weights: faster on recent NVIDIA GPUs. Ignored on "
                                "the CPU. The Edge TPU model is exported from float32 as always.")
        st.caption(devices.machine_hint())
        ray_runner = sj.get_ray_runner()
        run_on, ray_node = "local", "cpu"
        if ray_runner is not None:
            run_on = st.radio("Run on", ["local", "ray"], horizontal=True, key=f"{KEY}run_on",
                              format_func={"local": "This machine",
                                           "ray": f"Ray cluster ({sj.cluster_address()})"}.get,
                              help="The cluster trains on its own CPUs/GPUs; the model comes back here.")
            ray_node = st.radio("Ray node", list(devices.RAY_NODES), horizontal=True, key=f"{KEY}ray_node",
                                index=list(devices.RAY_NODES).index(dv["ray_node"]),
                                format_func=devices.RAY_NODES.get,
                                help="A GPU node gets the GPU build of TensorFlow installed on first use.")
        busy_here = current is not None and current.active
        submitted = st.form_submit_button("Queue another training run" if busy_here else "Start training",
                                          type="secondary" if busy_here else "primary",
                                          icon=":material/play_arrow:")

    if submitted:
        weights = {"imagenet": "imagenet", "none": "none"}.get(weights_choice, (weights_file or "").strip())
        refusal = retrain.check_start_from(store, start_from, task, int(image_size), float(alpha))
        if refusal:
            st.error(refusal, icon=":material/block:")
        elif not weights:
            st.error("Give the path of the weights file, or choose ImageNet or from scratch.")
        else:
            hp = hparams_for(task, {
                "image_size": int(image_size), "epochs": int(epochs), "batch_size": int(batch_size),
                "learning_rate": float(learning_rate), "alpha": float(alpha), "augment": bool(augment),
                "weights": weights, "train_on": "all" if train_all else "split",
                "max_images": int(max_images) or None, "init_from": start_from, "class_balance": balance,
                **extras,
            }).to_dict()
            target = ray_runner if run_on == "ray" and ray_runner is not None else runner
            start_training(target, {"task": task, "project": project.name, "hparams": hp, "preset": preset,
                                    **devices.job_params(device_choice, mixed, target is not runner, ray_node)})

# -- cluster -----------------------------------------------------------------------------------------
with st.expander("Train on a Ray cluster (optional)", icon=":material/hub:"):
    st.caption("Point the studio at a Ray cluster's dashboard address to train there (on its GPUs when it "
               "has them). The cluster's nodes need the studio's Python requirements. Turn on Ray's token "
               "authentication (RAY_AUTH_MODE=token) for any real cluster.")
    from core.data import settings as studio_settings

    saved = studio_settings.get_setting(store, studio_settings.RAY_ADDRESS) or ""
    with st.form(f"{KEY}cluster"):
        addr = st.text_input("Cluster address", saved, placeholder="http://ray-head.example:8265",
                             key=f"{KEY}cluster.address")
        token = st.text_input("Token (kept in memory for this session only)", type="password",
                              key=f"{KEY}cluster.token")
        if st.form_submit_button("Save"):
            studio_settings.set_setting(store, studio_settings.RAY_ADDRESS, addr.strip())
            if token:
                sj.RAY_TOKEN.set(token)
            st.rerun()
    address = sj.cluster_address()
    if address:
        status = sj.cluster_status(address, sj.cluster_token())
        if status["reachable"]:
            res = status["resources"]
            st.success(f"{status['message']} — {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs",
                       icon=":material/check_circle:")
        else:
            st.error(f"{status['message']}. Jobs sent to it wait in the queue and retry, then fail with "
                     "this reason.", icon=":material/cloud_off:")

# -- history -----------------------------------------------------------------------------------------
st.divider()
st.subheader("Past training runs")
history = [j for j in runner.list(project=project.name, limit=30) if j.kind == "train"]
if not history:
    st.caption("No training runs for this project yet.")
else:
    rows = []
    for j in history:
        res = sj.result_metric(j, store) if j.state is JobState.SUCCEEDED else None
        rows.append({
            "started": when(j.started or j.created),
            "state": j.state.value,
            "duration": sj.format_seconds(j.duration),
            "result": f"{res[0]} {res[1]:.3f}" if res else "",
            "epochs": j.params.get("hparams", {}).get("epochs"),
            "ran on": "Ray cluster" if j.runner == "ray" else "this machine",
            "device": devices.trained_on(runner.events(j.id)) or "",
            "model": j.artefact_id or "",
            "message": ("Could not download the ImageNet weights (no internet?)"
                        if pretrained.is_download_failure(j.error) else j.error or j.message),
            "job": j.id,
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    ids = [j.id for j in history]
    labels = {j.id: f"{when(j.started or j.created)} · {j.state.value} · {j.id}" for j in history}

    def _follow() -> None:
        pick = state.widget_value(f"{KEY}history.pick")
        if pick:
            sj.set_current_job(project.name, pick)

    st.selectbox("Show the details of a run", [None, *ids], index=0, on_change=_follow,
                 format_func=lambda i: "—" if i is None else labels[i], key=f"{KEY}history.pick")
    widgets.page_link(MODELS_PAGE, "All trained models are on the Models page", ":material/inventory_2:")
