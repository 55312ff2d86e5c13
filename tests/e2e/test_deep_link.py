"""A page's URL opened as the very first request of a fresh server (a bookmark, a link in a chat).

Streamlit runs such a first request in "multipage v1" mode when a ``pages/`` folder exists: the
page without app.py, a sidebar of raw file names and the narrow layout. The studio reruns it
through app.py; this test checks the user sees the studio's own frame on the page they asked for.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_first_request_on_a_page_url_shows_the_studio_frame(studio, page, screenshot):
    page.goto(studio.page_url("models"))
    # a fresh data dir has no project: the Models page says so and links to Projects
    page.get_by_text("There is no project yet").first.wait_for(timeout=60_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Projects", exact=True).wait_for(timeout=30_000)
    texts = nav.inner_text()
    screenshot(page, "deep_link_models")
    for section in ("Data", "Model", "Robot"):
        assert section in texts
    # the raw file names of multipage-v1 mode are gone
    words = texts.split()  # (icons are ligature words such as "upload": not checked)
    assert "app" not in words and "deploy" not in words and "projects" not in words
    width = page.evaluate(
        "document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect().width")
    assert width > 1000, f"the wide layout of app.py is not applied (main block {width:.0f} px)"
