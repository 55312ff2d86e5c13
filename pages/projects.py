"""Projects: create, pick, delete; a summary of each; a ready-made demo project."""

import streamlit as st

from core.data import artefacts
from core.data.annotations import Task
from core.data.demo import create_demo_project
from core.data.store import StoreError
from pages._shared import state, widgets

TASK_HELP = {
    Task.DETECTION.value: "Detection — find objects and draw boxes around them (\"where is the ball?\")",
    Task.CLASSIFICATION.value: "Classification — one label per photo (\"is this a ball or a cup?\")",
}

store = state.get_store()
st.title("Projects")
st.caption("A project is one set of photos with their labels, and the models trained from them.")
widgets.show_flashes()

projects = store.list_projects()
current = state.current_project()


def _create_demo(task: str) -> None:
    with st.spinner("Drawing a small demo dataset of coloured shapes…"):
        try:
            project = create_demo_project(store, task)
        except StoreError as exc:
            st.error(str(exc))
            return
    state.set_current_project(project)
    state.flash(f"Created the demo project **{project.name}** with labelled photos of circles, "
                "squares and triangles. Have a look on the Dataset page, then train a model.")
    st.rerun()


new_col, demo_col = st.columns([3, 2], gap="large")
with new_col:
    with st.form("studio.projects.create", clear_on_submit=True, border=True):
        st.subheader("New project")
        name = st.text_input("Name", placeholder="e.g. Ball finder", max_chars=80)
        task = st.radio("What should the model do?", list(TASK_HELP), format_func=TASK_HELP.get)
        if st.form_submit_button("Create project", type="primary", icon=":material/add:"):
            try:
                project = store.create_project(name, task)
            except StoreError as exc:
                st.error(str(exc))
            else:
                state.set_current_project(project)
                state.flash(f"Created **{project.name}**. Next: add photos on the Upload page.")
                st.rerun()
with demo_col:
    with st.container(border=True):
        st.subheader("Just trying it out?")
        st.write("Create a demo project with a small, already-labelled dataset of coloured shapes. "
                 "Nothing is downloaded.")
        if st.button("Create demo project (detection)", icon=":material/auto_awesome:",
                     key="studio.projects.demo_detection"):
            _create_demo(Task.DETECTION.value)
        if st.button("Create demo project (classification)", icon=":material/auto_awesome:",
                     key="studio.projects.demo_classification"):
            _create_demo(Task.CLASSIFICATION.value)

st.divider()
if not projects:
    st.info("No projects yet — create one above, or start with the demo project.", icon=":material/info:")
    st.stop()

st.subheader("Your projects")
for project in projects:
    stats = store.stats(project)
    is_current = current is not None and project.id == current.id
    with st.container(border=True):
        head, actions = st.columns([4, 1])
        head.markdown(f"### {project.name}" + ("  :green-badge[current]" if is_current else ""))
        head.caption(TASK_HELP[project.task.value])
        if actions.button("Open", key=f"studio.projects.open.{project.id}", type="primary",
                          icon=":material/arrow_forward:", width="stretch"):
            state.set_current_project(project)
            st.switch_page(widgets.DATASET_PAGE)
        cols = st.columns(6)
        cols[0].metric("Images", f"{stats['images']:,}")
        cols[1].metric("Labelled", f"{stats['labelled_images']:,}")
        if project.task is Task.DETECTION:
            cols[2].metric("Boxes", f"{stats['boxes']:,}")
        else:
            cols[2].metric("Unlabelled", f"{stats['images'] - stats['labelled_images']:,}")
        cols[3].metric("Classes", f"{stats['classes']:,}")
        splits = stats["per_split"]
        cols[4].metric("Train / val / test", f"{splits['train']:,} / {splits['val']:,} / {splits['test']:,}")
        cols[5].metric("To review", f"{stats['unreviewed_images']:,}",
                       help="Images with suggested labels nobody has checked yet.")
        if stats["images"] == 0:
            st.caption("No images yet — upload some on the Upload page.")
        elif stats["classes"]:
            st.caption("Classes: " + ", ".join(stats["per_class"]))
        with st.expander("Delete this project"):
            n_models = len(artefacts.list_artefacts(store.root, project.name))
            models = (f" and its {n_models} trained model{'s' if n_models != 1 else ''} (download or ship "
                      "what a robot still needs first)") if n_models else ""
            st.write(f"This removes **{project.name}**, its {stats['images']:,} images, all their labels"
                     f"{models} from the studio. This cannot be undone.")
            sure = st.checkbox("Yes, delete it", key=f"studio.projects.confirm.{project.id}")
            if st.button("Delete project", key=f"studio.projects.delete.{project.id}", disabled=not sure,
                         icon=":material/delete:"):
                store.delete_project(project)
                artefacts.delete_artefacts(store.root, project.name)
                if is_current:
                    state.set_current_project(None)
                state.flash(f"Deleted **{project.name}**.", "info")
                st.rerun()
