"""Deploy: build the Docker image that serves a model on an Ohmni robot, test it, download or push it."""

import time

import streamlit as st

from builder import context as bc
from builder import engine as be
from builder import jobs as bj
from builder import runtime_pins as rp
from core.data import artefacts
from core.jobs import ACTIVE_STATES, JobState
from pages._shared import coral_status
from pages._shared import jobs as sj
from pages._shared import selection, state

KEY = "studio.deploy."
BUILD_JOB = state.StateKey(KEY + "job", lambda: None)  # the build job this session follows
REFRESH_SECONDS = 2.0
PROFILES = {
    "offline": "Offline — built here with no network (wheels from this server); CPU unless the base image "
               "has the Edge TPU runtime",
    "coral": "Coral — Debian + the pinned Edge TPU runtime pair (libedgetpu + ai-edge-litert, checked by sha256)",
}
DEB_SOURCES = {
    "download": "Download the pinned .deb (this server needs internet)",
    "folder": "A folder on this server that holds the .deb",
    "upload": "Upload the .deb",
}

store = state.get_store()
root = store.root
st.title("Deploy to a robot")
st.caption("Build a Docker image that serves a model over HTTP (`/v1/predict`) on the Coral Edge TPU — "
           "or on the CPU without one — and ship it to an Ohmni robot.")

info = be.find_engine()
if info.reachable:
    st.success(f"Docker engine: {info.message}", icon=":material/check_circle:")
else:
    st.warning("Docker is not running on this computer, so the robot image cannot be built or tested here.\n\n"
               "You can still make the build context (a zip) below, download it, and build the image on a computer "
               "that has Docker.",
               icon=":material/warning:")
    with st.expander("Technical details"):
        st.markdown(f"Docker address tried: `{info.base_url}`")
        st.code(info.message, language="text", wrap_lines=True)
        st.markdown("To build here, start a Docker engine on this computer (as root: `scripts/start_dockerd.sh`, "
                    "no bridge, no iptables), or point `DOCKER_HOST` at a running engine, then reload this page.")

project = state.current_project()
models = artefacts.list_artefacts(root, project.name if project else None)
if not models and project:
    models = artefacts.list_artefacts(root)
if not models:
    st.info("No trained model yet. Train one on the **Train** page, then come back here.")
    st.stop()


def describe(m: dict) -> str:
    metrics = (m.get("metrics") or {}).get("int8") or {}
    score = ""
    for k in ("accuracy", "mAP50", "mAP"):
        if isinstance(metrics.get(k), (int, float)):
            score = f" · {k} {metrics[k]:.2f}"
            break
    tpu = " · Edge TPU" if (m.get("compiler") or {}).get("ok") else ""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.get("created") or 0))
    return f"{m.get('project')} · {m.get('task')} · {when}{score}{tpu}"


ids = [m["id"] for m in models]
by_id = {m["id"]: m for m in models}
selection.model_picker_default(KEY + "model", ids)
chosen = st.selectbox("Model", ids, format_func=lambda i: describe(by_id[i]), key=KEY + "model",
                      on_change=selection.remember_pick, args=(KEY + "model",))
manifest = by_id[chosen]

pair = rp.pair_summary()
st.caption(f"Edge TPU runtime of the robot image (coral profile): **{pair['libedgetpu']}** (built for TensorFlow "
           f"{pair['libedgetpu_tf']}) with **{pair['runtime']}** (TensorFlow {pair['runtime_tf']} line). "
           f"On this computer: {coral_status.runtime_line()}")
with st.form(KEY + "form"):
    profile = st.radio("Profile", list(PROFILES), format_func=PROFILES.get, key=KEY + "profile")
    with st.expander("Coral profile: where libedgetpu comes from"):
        st.markdown(f"Pinned: `{rp.LIBEDGETPU.url}`  \nsha256 `{rp.LIBEDGETPU.sha256}` "
                    f"({rp.LIBEDGETPU.sha256_source}). A file with another hash stops the build.")
        deb_source = st.radio("Source", list(DEB_SOURCES), format_func=DEB_SOURCES.get, key=KEY + "deb_source")
        deb_folder = st.text_input("Folder", key=KEY + "deb_folder", placeholder="/srv/coral-debs")
        deb_upload = st.file_uploader("The libedgetpu .deb", type=["deb"], key=KEY + "deb_upload",
                                      help="Its sha256 is computed, shown and recorded; a different file under "
                                           "the same name is refused later.")
    c1, c2 = st.columns(2)
    base_image = c1.text_input("Base image", value=bc.default_base_image(), key=KEY + "base",
                               help="Debian bookworm with python3 and pip. scripts/make_base_image.sh makes "
                                    "one without any registry (debootstrap + docker import).")
    tag = c2.text_input("Image tag", value=bc.default_tag(manifest), key=KEY + "tag")
    smoke = st.checkbox("Smoke test: run the image once and compare its answer with the studio's",
                        value=info.reachable, key=KEY + ("smoke" if info.reachable else "smoke_no_engine"),
                        disabled=not info.reachable,
                        help=None if info.reachable else "Needs Docker running on this computer.")
    go = st.form_submit_button("Build image" if info.reachable else "Make the build context",
                               type="primary", icon=":material/construction:")
def coral_source(source: str, folder: str, upload) -> tuple[dict, str | None]:
    """The build job's libedgetpu parameters for the chosen source, or why not."""
    if source == "folder":
        if not folder.strip():
            return {}, "Enter the folder that holds the libedgetpu .deb."
        return {"libedgetpu_folder": folder.strip()}, None
    if source == "upload":
        if upload is None:
            return {}, "Choose the libedgetpu .deb to upload."
        try:
            deb = rp.save_upload(bj.coral_state_dir(root), upload.name, upload.getvalue())
        except (ValueError, rp.ChecksumMismatch) as exc:
            return {}, str(exc)
        st.success(f"{deb.filename}: sha256 `{deb.sha256}`"
                   + (" — recorded now; this file is expected from now on." if deb.recorded_now else
                      " — the same file as recorded before."))
        return {"libedgetpu_deb": str(deb.path)}, None
    return {}, None


if go:
    problems = []
    for what, ref in (("tag", tag), ("base image", base_image)):
        try:
            bc.check_image_ref(ref.strip(), what)
        except bc.ContextError as exc:
            problems.append(str(exc))
    coral_params: dict = {}
    if profile == "coral":
        coral_params, why = coral_source(deb_source, deb_folder, deb_upload)
        if why:
            problems.append(why)
    if problems:
        for p in problems:
            st.error(p)
    else:
        runner = sj.get_runner()
        job_id = runner.submit("build-image", {"artefact_id": chosen, "profile": profile, "tag": tag.strip(),
                                               "base_image": base_image.strip(),
                                               "smoke_test": bool(smoke) and info.reachable, **coral_params})
        BUILD_JOB.set(job_id)


def show_result(build_id: str) -> None:
    try:
        rec = bj.load_build(root, build_id)
    except (FileNotFoundError, ValueError):
        return
    st.subheader("Result")
    if rec.get("image_id"):
        c1, c2, c3 = st.columns(3)
        c1.metric("Image size", f"{rec.get('size_bytes', 0) / 1e6:.0f} MB")
        c2.metric("Build time", sj.format_seconds(rec.get("build_seconds")))
        smoke_rec = rec.get("smoke_test")
        c3.metric("Smoke test", "–" if not smoke_rec else ("passed" if smoke_rec["ok"] else "FAILED"))
        st.write(f"Image `{rec['tag']}` — id `{rec['image_id'][:19]}`")
        if smoke_rec:
            (st.success if smoke_rec["ok"] else st.error)(
                f"{smoke_rec['message']} (device: {smoke_rec.get('device')}, "
                f"ready in {smoke_rec.get('startup_seconds')} s)")
    elif rec.get("status") == "no-engine":
        st.info("No Docker engine was reachable, so no image was built. Download the build context and run "
                "`docker build` where Docker runs (see its README.md).")
    elif rec.get("status") == "checksum-mismatch":
        st.error(rec["message"])
        if rec.get("got_sha256") and st.button(f"I checked this file myself: use sha256 {rec['got_sha256'][:16]}…",
                                               key=KEY + "confirm_hash"):
            try:
                rp.confirm_download(bj.coral_state_dir(root), rec["got_sha256"])
                st.success("Recorded. Build again: this hash is enforced from now on.")
            except ValueError as exc:
                st.error(str(exc))
    elif rec.get("message"):
        st.error(rec["message"])
    if smoke_edgetpu := ((rec.get("smoke_test") or {}).get("model") or {}).get("edgetpu"):
        st.caption(f"Edge TPU runtime in the image: {smoke_edgetpu.get('summary') or smoke_edgetpu}")
    st.markdown("**Run it on the robot** (Ohmni, x86-64, Coral USB Accelerator) after `docker load -i` of the "
                "image file or a `docker pull`:")
    st.code(rec.get("run_command", ""), language="bash")
    st.markdown("**Check it from a laptop** on the robot's network (`ROBOT` = the robot's IP address):")
    st.code(ohmni_check_commands(), language="bash")

    d1, d2 = st.columns(2)
    d1.download_button("Build context (.zip)", data=bj.context_zip_opener(root, build_id),
                       file_name=f"build-context-{build_id}.zip", mime="application/zip",
                       icon=":material/folder_zip:", key=KEY + "dl_ctx")
    if rec.get("image_id") and info.reachable:
        with d2:
            image_download(rec)
        push_form(rec)


def ohmni_check_commands() -> str:
    port = bc.ROBOT_PORT
    return (f"curl -s http://ROBOT:{port}/healthz   # ok, device, runtime + libedgetpu versions, Edge TPUs\n"
            f"curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://ROBOT:{port}/v1/predict")


def image_download(rec: dict) -> None:
    """Saving the image takes a while (docker save | gzip): a button that makes the archive with a
    progress bar, then the download button of the finished file."""
    build_id = rec["id"]
    ready = bj.image_archive_ready(root, build_id)
    if ready is None:
        if not st.button("Prepare the image download (docker save)", icon=":material/archive:",
                         key=KEY + "prep_img", help="Packs the image into one .tar.gz file (about a minute)."):
            return
        size = rec.get("size_bytes") or 0
        bar = st.progress(0.0, text="Saving the image…")

        def progress(done: int) -> None:
            frac = min(done / size, 1.0) if size else 0.0
            bar.progress(frac, text=f"Saving the image: {done / 1e6:,.0f} of {size / 1e6:,.0f} MB")

        with st.spinner("Saving the image (docker save | gzip)…"):
            try:
                ready = bj.image_archive(root, build_id, on_progress=progress)
            except Exception as exc:  # noqa: BLE001 - an engine problem: say it, keep the page
                bar.empty()
                st.error(f"The image could not be saved: {exc}")
                return
        bar.empty()
    st.download_button("Download the image (.tar.gz)",
                       data=bj.image_archive_opener(root, build_id),
                       file_name=f"{bc.slug(rec['tag'])}.tar.gz", mime="application/gzip",
                       icon=":material/download:", key=KEY + "dl_img", type="primary",
                       help="Load it on the robot with: docker load -i FILE")


PUSH_RESULT = state.StateKey(KEY + "push_result", lambda: None)  # {"build", "ok", "message", "pull"}: no secret
PUSH_REGISTRY, PUSH_USER, PUSH_PASSWORD = KEY + "push_registry", KEY + "push_user", KEY + "push_password"


def _push(tag: str, build_id: str) -> None:
    """The push button's callback: runs before the page, takes the password out of the widget state
    at once (so it never outlives this call), pushes with it, keeps only the outcome."""
    from builder import registry as breg

    registry = str(state.widget_value(PUSH_REGISTRY, "") or "").strip()
    username = str(state.widget_value(PUSH_USER, "") or "").strip()
    password = state.widget_value(PUSH_PASSWORD, "") or None
    state.set_widget_value(PUSH_PASSWORD, "")
    if not registry:
        PUSH_RESULT.set({"build": build_id, "ok": False, "message": "Enter the registry's address."})
        return
    try:
        res = breg.push(tag, registry, username or None, password)
        PUSH_RESULT.set({"build": build_id, "ok": True, "pull": f"docker pull {res.reference}",
                         "message": f"Pushed `{res.repository}:{res.tag}` — digest `{res.digest}`"})
    except breg.PushError as exc:
        PUSH_RESULT.set({"build": build_id, "ok": False, "message": str(exc)})
    finally:
        password = None


def push_form(rec: dict) -> None:
    st.subheader("Push to a registry")
    with st.form(KEY + "push"):
        c1, c2, c3 = st.columns(3)
        c1.text_input("Registry (host:port)", placeholder="registry.example.com:5000", key=PUSH_REGISTRY)
        c2.text_input("Username", key=PUSH_USER)
        c3.text_input("Password", type="password", key=PUSH_PASSWORD)
        st.form_submit_button("Push", icon=":material/cloud_upload:", on_click=_push,
                              args=(rec["tag"], rec["id"]))
    outcome = PUSH_RESULT.get()
    if outcome and outcome.get("build") == rec["id"]:
        if outcome["ok"]:
            st.success(outcome["message"])
            st.code(outcome["pull"], language="bash")
        else:
            st.error(outcome["message"])


def show_job(job, live: bool) -> None:
    runner = sj.get_runner()
    icon = sj.STATE_ICONS.get(job.state, "")
    st.subheader(f"{icon} Build {job.state.value}")
    if job.state in ACTIVE_STATES:
        st.progress(min(max(job.progress or 0.0, 0.0), 1.0), text=job.message or "")
        if st.button("Cancel", key=KEY + "cancel"):
            runner.cancel(job.id)
    elif job.state is JobState.FAILED:
        st.error(job.error or job.message)
    lines = runner.logs(job.id, tail=40)
    with st.expander("Build log", expanded=live):
        st.code("\n".join(lines) or "…", language="text")


@st.fragment(run_every=REFRESH_SECONDS)
def follow(job_id: str) -> None:
    """Live progress and log while the build runs; one full rerun when it ends (to show the result)."""
    job = sj.get_runner().get(job_id)
    if job.state not in ACTIVE_STATES:
        st.rerun()
    show_job(job, live=True)


job_id = BUILD_JOB.get()
if job_id:
    try:
        current = sj.get_runner().get(job_id)
    except Exception:  # noqa: BLE001 - a job of another data directory, or deleted
        current = None
        BUILD_JOB.set(None)
    if current is not None and current.state in ACTIVE_STATES:
        follow(job_id)
    elif current is not None:
        show_job(current, live=False)
        show_result(job_id)

builds = bj.list_builds(root)
if builds:
    with st.expander(f"Earlier builds ({len(builds)})"):
        st.dataframe([{"when": time.strftime("%Y-%m-%d %H:%M", time.localtime(b.get("created", 0))),
                       "tag": b.get("tag"), "profile": b.get("profile"), "status": b.get("status"),
                       "size MB": round(b.get("size_bytes", 0) / 1e6), "build": b.get("id")} for b in builds],
                     hide_index=True)
        again = st.selectbox("Show a build", [b["id"] for b in builds], index=None, key=KEY + "earlier")
        if again and again != job_id:
            BUILD_JOB.set(again)
            st.rerun()
