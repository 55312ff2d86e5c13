"""Preview: run a trained model on a photo — on a Coral Edge TPU when one is plugged in, else the CPU."""

from __future__ import annotations

import io
import os

import streamlit as st
from PIL import Image

from core.data import artefacts
from core.data.render import draw_labels
from core.data.store import StoreError
from core.data.truncated import whole_photo
from coral_runtime.decode import DecodeError, decode_image
from coral_runtime.frames import frame_rgb
from coral_runtime.interpreter import RuntimeUnavailable
from pages._shared import coral_status
from pages._shared import preview as pv
from pages._shared import selection, state, widgets

SOURCES = ("Sample from the project", "Upload a photo", "Take a photo (camera)", "Live webcam")
DISPLAY_SIDE = 720
MIN_DISPLAY_SIDE = 400  # small photos (e.g. 100x100) are enlarged so the drawn labels stay readable
DEPLOY_PAGE = "pages/deploy.py"
STUN_ENV = "STUDIO_WEBRTC_STUN"  # optional STUN server for the live webcam (none by default: no calls out)

store = state.get_store()
st.title("Preview")
st.caption("Try a trained model on photos and see what it finds and how fast. With a Coral USB "
           "Accelerator or PCIe module plugged in, the Edge TPU runs the compiled model; otherwise "
           "the CPU runs the int8 model (the page says so).")

project = state.current_project()
models = artefacts.list_artefacts(store.root, project.name if project else None)
if not models and project is not None:
    models = artefacts.list_artefacts(store.root)
if not models:
    st.info("No trained model yet. Train one on the **Train** page; it appears here when it is done.")
    st.stop()


def _model_label(m: dict) -> str:
    metrics = (m.get("metrics") or {}).get("int8") or {}
    if m.get("task") == "detection":
        score = metrics.get("mAP50")
        what = f"mAP50 {score:.2f}" if isinstance(score, (int, float)) else "detection"
    else:
        score = metrics.get("accuracy")
        what = f"accuracy {score:.0%}" if isinstance(score, (int, float)) else "classification"
    tpu = " · Edge TPU ready" if (m.get("compiler") or {}).get("ok") else ""
    return f"{m.get('id')} — {m.get('project', '?')} · {what}{tpu}"


by_id = {m["id"]: m for m in models if m.get("id")}
top = st.columns([3, 2])
with top[0]:
    selection.model_picker_default(pv.MODEL_WIDGET, list(by_id))
    model_id = st.selectbox("Model", list(by_id), format_func=lambda i: _model_label(by_id[i]),
                            key=pv.MODEL_WIDGET, on_change=selection.remember_pick, args=(pv.MODEL_WIDGET,))
choices = pv.device_choices()
labels = dict(choices)
with top[1]:
    device = st.selectbox("Run on", [d for d, _ in choices], format_func=lambda d: labels.get(d, d),
                          key=pv.DEVICE_WIDGET,
                          help="Each Coral Edge TPU found on this machine, or the CPU. A model that is not "
                               "compiled for the Edge TPU (or a missing Edge TPU runtime) runs on the CPU, "
                               "and the page says why.")
manifest = by_id[model_id]
try:
    predictor = pv.get_predictor(manifest["path"], device)
except (RuntimeUnavailable, ValueError, OSError, artefacts.ArtefactError) as exc:
    st.error(f"This model cannot run here: {exc}")
    st.stop()

if predictor.device == "cpu" and device != "cpu" and predictor.fallback_reason:
    st.warning(f"Running on the CPU: {predictor.fallback_reason}", icon=":material/memory:")
elif predictor.fallback_reason:
    st.caption(predictor.fallback_reason)
st.caption("Edge TPU runtime here: " + coral_status.runtime_line(),
           help="The Python runtime, the libedgetpu package (and the version string it reports), the Edge TPUs "
                "found. The runtime is first opened in a child process: if it crashes there, the CPU is used.")
if not any(d != "cpu" for d, _ in choices):
    st.caption("No Coral Edge TPU was found on this machine (USB 1a6e:089a / 18d1:9302, /dev/apex_*).")

pre = manifest.get("preflight") or {}
if pre:
    st.caption("Edge TPU check: " + " ".join(widgets.preflight_sentences(pre)))

is_det = predictor.task == "detection"
ctl = st.columns([2, 2, 1])
with ctl[0]:
    if is_det:
        # the model drops boxes below its own minimum (its post-process op): a lower threshold cannot show more
        floor = pv.built_in_minimum(predictor.score_threshold)
        threshold = st.slider("Score threshold", floor, 1.0, floor, 0.01, key=pv.THRESHOLD_WIDGET,
                              help="Boxes scoring below this are hidden. " + pv.minimum_note(floor))
        st.caption(pv.minimum_note(floor))
    else:
        threshold = st.slider("Minimum score", 0.0, 1.0, 0.0, 0.01, key=pv.THRESHOLD_WIDGET)
with ctl[1]:
    if is_det:
        most = predictor.max_detections or 100
        top_k = st.number_input("Max boxes", 1, most, most, key=pv.TOPK_WIDGET)
    else:
        n_labels = max(1, len(predictor.labels))
        top_k = st.number_input("Top classes", 1, n_labels, min(3, n_labels), key=pv.TOPK_WIDGET)
with ctl[2]:
    window = st.number_input("Latency over last", 5, pv.HISTORY_MAX, 50, step=5, key=pv.WINDOW_WIDGET,
                             help="p50/p95 over this many predictions of this model on this device")

source = st.radio("Where the photo comes from", SOURCES, horizontal=True, key=pv.SOURCE_WIDGET)


def _sample_image() -> tuple[bytes | None, str | None]:
    try:
        proj = store.get_project(manifest.get("project")) if manifest.get("project") else project
    except StoreError:
        proj = project
    if proj is None:
        st.info("This model's project is gone; upload a photo instead.")
        return None, None
    recs = []
    for split in ("test", "val", None):
        recs = store.list_images(proj, split=split, limit=300)
        if recs:
            break
    if not recs:
        st.info(f"The project **{proj.name}** has no photos; upload one instead.")
        return None, None
    by = {r.id: r for r in recs}

    def fmt(i: str) -> str:
        r = by[i]
        n = len(r.boxes)
        truth = r.class_label or (f"{n} box{'es' if n != 1 else ''}" if r.boxes else "unlabelled")
        return f"{r.filename} ({r.split}, {truth})"

    image_id = st.selectbox(f"Photo from **{proj.name}** ({recs[0].split if recs else ''} split first)",
                            list(by), format_func=fmt, key=pv.SAMPLE_WIDGET)
    rec = by[image_id]
    truth = rec.class_label or ", ".join(sorted({a.label for a in rec.boxes})) or "unlabelled"
    return store.read_image_bytes(image_id), f"Labelled as: {truth}"


def _live_webcam() -> None:
    why_not = pv.webrtc_status()
    if why_not:
        st.info(why_not)
        return
    try:
        import av  # noqa: F401
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError as exc:
        st.info(f"{pv.WEBRTC_MISSING} ({exc})")
        return

    live = pv.live_window(model_id, device, int(window))

    def on_frame(frame):  # on streamlit-webrtc's video thread: no Streamlit calls here
        # the model input straight from the camera's pixels (one swscale pass), then the frame to draw on
        pred = predictor.predict_frame(frame, threshold=threshold, top_k=int(top_k))
        live.add(pred.latency_ms, pred.invoke_ms, pred.device)
        img = _draw(Image.fromarray(frame_rgb(frame)), pred, live.stats().caption())
        import av as _av

        return _av.VideoFrame.from_image(img)

    stun = os.environ.get(STUN_ENV, "").strip()
    st.caption("Each frame goes through the same predictor; its latency, the p50/p95 over the last frames "
               "and the device are written on the frame. The browser streams the camera straight to this "
               "server (WebRTC): that works on the same machine or LAN; across NAT set "
               + f"`{STUN_ENV}` (e.g. `stun:stun.example.org:3478`).")
    try:
        webrtc_streamer(key="studio.preview.webrtc", mode=WebRtcMode.SENDRECV, video_frame_callback=on_frame,
                        media_stream_constraints={"video": True, "audio": False},
                        rtc_configuration={"iceServers": [{"urls": [stun]}] if stun else []})
    except Exception as exc:  # noqa: BLE001 - a third-party component: say it, keep the page
        st.warning(f"The live webcam could not start here ({type(exc).__name__}: {exc}). "
                   "Use **Take a photo** instead.")
        return
    _live_speed(live)


@st.fragment(run_every=pv.LIVE_REFRESH_SECONDS)
def _live_speed(live) -> None:
    """The live stream's figures, refreshed while the page is open."""
    s = live.stats()
    st.subheader("Speed")
    if not s.n:
        st.caption("Press **START** to stream the webcam; the figures appear with the first frames.")
        return
    _window_metrics(st.columns(3), s.n, s.p50, s.p95, s.invoke_p50, " frames",
                    p50_help="the whole prediction per frame: conversion and resize, invoke, output decoding")
    _ran_on(s.device)


def _window_metrics(cols, n: int, p50: float | None, p95: float | None, invoke_p50: float | None,
                    unit: str = "", p50_help: str | None = None) -> None:
    """p50 / p95 of the whole prediction and p50 of invoke() alone, over the last ``n`` ``unit``."""
    def ms(v: float | None) -> str:
        return f"{v:.1f} ms" if v is not None else "—"

    cols[0].metric(f"p50 (last {n}{unit})", ms(p50), help=p50_help)
    cols[1].metric(f"p95 (last {n}{unit})", ms(p95))
    cols[2].metric("invoke alone (p50)", ms(invoke_p50), help="interpreter.invoke() without pre- and post-processing")


def _ran_on(device: str | None, fallback_reason: str | None = None) -> None:
    st.caption(f"Ran on **{device}**" + (" (Edge TPU)" if device != "cpu" else " (CPU, LiteRT)")
               + (f" — {fallback_reason}" if fallback_reason else ""))


def _label_tuples(pred, scale: float = 1.0) -> list:
    """What ``draw_labels`` draws for a prediction: boxes (scaled to the shown picture) or the best class."""
    if pred.task == "detection":
        return [(f"{d.label} {d.score:.2f}", d.box.scale(scale).as_tuple(), True) for d in pred.detections]
    return [(f"{c.label} {c.score:.2f}", None, True) for c in pred.classes[:1]]


def _draw(img: Image.Image, pred, window_caption: str = "") -> Image.Image:
    tuples = _label_tuples(pred)
    tuples.append((f"{pred.latency_ms:.1f} ms on {pred.device}", None, True))
    if window_caption:
        tuples.append((window_caption, None, True))
    return draw_labels(img, tuples, (img.width, img.height))


# Photos go to the predictor as bytes: the same decode (and call) as the robot image's /v1/predict.
data, note, name = None, None, None
if source == SOURCES[0]:
    data, note = _sample_image()
elif source == SOURCES[1]:
    up = st.file_uploader("Photo to try (JPEG, PNG, BMP or WebP)", type=["jpg", "jpeg", "png", "bmp", "webp"],
                          key=pv.UPLOAD_WIDGET)
    if up is not None:
        data, name = up.getvalue(), up.name
elif source == SOURCES[2]:
    shot = st.camera_input("Camera", key=pv.CAMERA_WIDGET)
    if shot is not None:
        data, name = shot.getvalue(), "The camera picture"
else:
    _live_webcam()

image, pred = None, None
if data is not None:
    data, missing = whole_photo(data)  # a photo cut short: shown and predicted with the missing part grey
    if missing is not None:
        st.warning(f"This photo is cut short: about {missing:.0%} of it (at the bottom) is missing and shown "
                   "grey.", icon=":material/broken_image:")
if data is not None:
    try:  # the display copy and the prediction go through the robot image's decode: one plain error
        image = decode_image(data, None).image
        pred = predictor.predict_bytes(data, threshold=threshold, top_k=int(top_k))
    except DecodeError as exc:
        st.error(exc.describe(name), icon=":material/broken_image:")
        image, pred = None, None

if image is not None and pred is not None:
    pv.record(model_id, device, pred)
    left, right = st.columns([3, 2], gap="large")
    with left:
        scale = pv.display_scale(image.width, image.height, DISPLAY_SIDE, MIN_DISPLAY_SIDE)
        shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        draw_labels(shown, _label_tuples(pred, scale), (shown.width, shown.height))
        buf = io.BytesIO()
        shown.save(buf, format="PNG")
        st.image(buf.getvalue(), caption=note)
    with right:
        st.subheader("Result")
        if pred.task == "classification":
            if pred.classes:
                best = pred.classes[0]
                st.markdown(f"**{best.label}** — {best.score:.1%}")
                st.dataframe([{"class": c.label, "score": round(c.score, 4)} for c in pred.classes],
                             hide_index=True, width="stretch")
            else:
                st.markdown("No class scores above the minimum.")
        else:
            st.markdown(f"**{len(pred.detections)}** object(s) at score ≥ {threshold:.2f}")
            if pred.detections:
                st.dataframe([{"label": d.label, "score": round(d.score, 3),
                               "box (x0, y0, x1, y1)": ", ".join(f"{v:.0f}" for v in d.box.as_tuple())}
                              for d in pred.detections], hide_index=True, width="stretch")
    s = pv.stats(model_id, device, int(window))
    st.subheader("Speed")
    m1, *window_cols = st.columns(4)
    m1.metric("This photo", f"{pred.latency_ms:.1f} ms",
              help="the whole prediction: image decode, resize, invoke, output decoding")
    _window_metrics(window_cols, s.n, s.p50, s.p95, s.invoke_p50)
    _ran_on(pred.device, pred.fallback_reason)
    if st.button("Run 20 more times", key=pv.RUNS_WIDGET,
                 help="Repeat the prediction on this photo to get a steadier p50/p95"):
        for _ in range(20):
            pv.record(model_id, device, predictor.predict_bytes(data, threshold=threshold, top_k=int(top_k)))
        st.rerun()
elif source != SOURCES[3]:
    st.caption("Choose a photo to see the prediction.")

st.divider()
widgets.page_link(DEPLOY_PAGE, "Happy with it? Build a robot image (Deploy)", ":material/smart_toy:")
