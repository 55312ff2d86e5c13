"""Edge TPU Studio: the page frame (config, password gate, navigation). Run: streamlit run app.py"""

import sys
from pathlib import Path

import streamlit as st

if "tensorflow" not in sys.modules:  # the live webcam's WebRTC stack must load before TensorFlow
    try:                               # (importing aiortc after TF segfaults; the other order is fine)
        import aiortc  # noqa: F401
    except ImportError:  # optional: the Preview page explains how to get the live webcam
        pass

from pages._shared import auth, state

PAGES_DIR = Path(__file__).resolve().parent / "pages"
# (section, file stem, title, icon) in navigation order; a page appears once its file exists.
PAGES = [
    ("Data", "projects", "Projects", ":material/folder_open:"),
    ("Data", "upload", "Upload", ":material/upload:"),
    ("Data", "dataset", "Dataset", ":material/photo_library:"),
    ("Data", "label", "Label", ":material/label:"),
    ("Model", "train", "Train", ":material/model_training:"),
    ("Model", "models", "Models", ":material/inventory_2:"),
    ("Model", "preview", "Preview", ":material/visibility:"),
    ("Robot", "deploy", "Deploy", ":material/smart_toy:"),
]

st.set_page_config(page_title="Edge TPU Studio", page_icon=":material/memory:", layout="wide")
state.mark_framed()
auth.exposure_warning()

sections: dict[str, list] = {}
for section, stem, title, icon in PAGES:
    if (PAGES_DIR / f"{stem}.py").is_file():
        sections.setdefault(section, []).append(
            st.Page(f"pages/{stem}.py", title=title, icon=icon, default=stem == "projects"))

if not auth.is_authenticated():
    # The page the URL asks for is kept (hidden navigation) but not run: after signing in, the
    # rerun opens it, so a bookmarked page survives the sign-in.
    st.navigation(sections, position="hidden")
    auth.require()

page = st.navigation(sections)
state.select_project_widget()
page.run()
