"""The studio's screens (one file per page) and their shared helpers in ``_shared``.

Streamlit treats a ``pages/`` folder beside the main script as "multipage v1" until the
first ``st.navigation`` call of the process; in that mode a page can be run without
``app.py``. Importing this package (every page does, through ``pages._shared``) ends that
mode at once, and ``pages._shared.state.get_store`` repeats the password check.
"""

try:  # pragma: no cover - depends on Streamlit internals; harmless when they change
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
except Exception:  # noqa: BLE001
    pass
