"""A first-time user's whole journey in a real browser (issue #8).

Detection: create a project, upload a zip of 12 raccoon photos with their Pascal VOC files, fix
one box and draw a new one on the Label page, train a tiny model on the Train page and watch it
finish, read its float/int8 metrics and Edge TPU check on the Models page, preview a photo,
build the offline robot image, see its smoke test pass and download the image archive.
Classification: the same up to Preview with a class-folders zip of sign-language digits.

Every step is checked against what the studio stored, and screenshotted to ``test-output/``
(``journey-<task>-<nn>-<step>.png``); the README's walkthrough uses some of them.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from core.data.annotations import Task
from core.data.boxes import Box
from core.data.labeling import DisplayMapping
from tests.docker_fixtures import base_image, docker_client, wheelhouse  # noqa: F401 - fixtures
from tests.e2e.test_label_canvas import close, drag, open_image, toolbar_button, wait_for, wait_idle

pytestmark = pytest.mark.e2e

N_RACCOONS = 12
DIGIT_CLASSES = ("0", "1", "2", "3")
DIGITS_PER_CLASS = 6
TRAIN_TIMEOUT_MS = 900_000  # a tiny training: ~1–2 min on an idle 2-core machine, 10 under heavy load
BUILD_TIMEOUT_MS = 420_000


# -- building the uploads -------------------------------------------------------------------------
def voc_zip(raccoon_dir: Path, out: Path, n: int = N_RACCOONS) -> Path:
    """A zip of the first ``n`` raccoon photos with their VOC XML files, as a user would pack them."""
    with zipfile.ZipFile(out, "w") as z:
        for img in sorted((raccoon_dir / "images").glob("*.jpg"))[:n]:
            z.write(img, f"raccoons/{img.name}")
            z.write(raccoon_dir / "annotations" / f"{img.stem}.xml", f"raccoons/{img.stem}.xml")
    return out


def folders_zip(digits_dir: Path, out: Path) -> Path:
    """A zip with one folder per class (the folder name is the label)."""
    with zipfile.ZipFile(out, "w") as z:
        for c in DIGIT_CLASSES:
            for f in sorted((digits_dir / c).iterdir())[:DIGITS_PER_CLASS]:
                z.write(f, f"digits/{c}/{f.name}")
    return out


# -- driving Streamlit ----------------------------------------------------------------------------
def nav(page, title: str) -> None:
    """Open a page from the sidebar navigation (same browser session: the state is kept)."""
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.locator("h1").filter(has_text=title).first.wait_for()
    wait_idle(page)


def main_link(page, name: str):
    """A link in the page's body (not the sidebar navigation) whose text contains ``name``."""
    return page.locator('[data-testid="stMain"]').get_by_role("link", name=name)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def set_number(page, label: str, value: float) -> None:
    """Type ``value`` into the number input labelled ``label`` and commit it (blur, no tooltip left open)."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(1, 1)


def wait_image_loaded(page, timeout: float = 30.0) -> None:
    """Wait until every picture of the page's body has loaded (st.image loads them asynchronously)."""
    wait_for(lambda: page.evaluate(
        """() => { const imgs = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')];
                   return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"""),
        timeout=timeout, what="the pictures to load")


def no_exception(page, studio) -> None:
    """Neither the page nor the server log shows a traceback."""
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()
    assert "Traceback" not in studio.log(), studio.log()[-3000:]


def upload(page, zip_path: Path, n_images: int) -> None:
    nav(page, "Upload")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(zip_path))
    page.get_by_role("button", name=re.compile(r"^Import 1 file")).click()
    page.get_by_text(f"Imported {n_images} new images").wait_for(timeout=60_000)


def train(page, studio, screenshot, prefix: str, *, image_size: int, epochs: int,
          extra: Callable | None = None) -> str:
    """Start a tiny training on the Train page and follow it to the end; the model's id."""
    nav(page, "Train")
    page.get_by_text("Quick run", exact=False).first.click()
    choose(page, "Image size (pixels)", str(image_size))
    set_number(page, "Epochs", epochs)
    choose(page, "Model width (alpha)", "0.35")
    page.get_by_text("From scratch", exact=False).click()
    if extra is not None:
        extra(page)
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training started.").wait_for()
    page.locator('[data-testid="stProgress"]').filter(has_text="epoch").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    screenshot(page, f"{prefix}-train-running", full_page=False)
    page.get_by_text("Training finished").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)  # the full rerun after the live view has replaced it
    progress = page.locator('[data-testid="stProgress"]').first.inner_text()
    assert f"100% · epoch {epochs}/{epochs}" in progress, progress
    screenshot(page, f"{prefix}-train-finished")
    models = sorted((studio.data_dir / "models").iterdir())
    assert len(models) == 1, models
    hp = json.loads((models[0] / "manifest.json").read_text())["hparams"]  # the form's values reached the job
    assert (hp["image_size"], hp["epochs"], hp["alpha"], hp["weights"]) == (image_size, epochs, 0.35, "none"), hp
    no_exception(page, studio)
    return models[0].name


def check_models_page(page, studio, screenshot, prefix: str, model_id: str, metric: str) -> dict:
    """The Models page shows the int8 metric next to the float one and the Edge TPU check table."""
    main_link(page, "See its metrics and Edge TPU check on the Models page").click()
    page.locator("h1").filter(has_text="Models").wait_for()
    manifest = json.loads((studio.data_dir / "models" / model_id / "manifest.json").read_text())
    for variant in ("float", "int8"):
        assert isinstance(manifest["metrics"][variant].get(metric), float), manifest["metrics"]
    head = page.locator('[data-testid="stMetric"]').filter(has_text=f"{metric} (int8)").first
    head.wait_for()
    text = head.inner_text()
    assert f"{manifest['metrics']['int8'][metric]:.3f}" in text, text
    assert f"vs float {manifest['metrics']['float'][metric]:.3f}" in text, text
    screenshot(page, f"{prefix}-models-metrics")
    page.get_by_role("tab", name="Edge TPU check").click()
    panel = page.locator('[data-testid="stTabs"] [role="tabpanel"]:visible')
    panel.get_by_text("Ops on the Edge TPU").wait_for()
    table = panel.locator('[data-testid="stDataFrame"]')
    table.wait_for()
    assert manifest["preflight"]["ops"], manifest["preflight"]
    screenshot(page, f"{prefix}-models-edgetpu")
    no_exception(page, studio)
    return manifest


# -- the journeys -----------------------------------------------------------------------------------
@pytest.fixture
def shoot_on_failure(page, screenshot, request):
    """A screenshot of the page as it was when a journey failed: ``journey-<test>-FAILED.png``."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:  # the call phase's report is counted by now
        try:
            screenshot(page, f"journey-{request.node.name}-FAILED")
        except Exception:  # noqa: BLE001 - the browser may be gone
            pass


def _create_project(page, store, name: str, task_choice: str, task: Task):
    """Projects page: name a new project, pick its task, create it; returns the stored project."""
    page.locator("h1").filter(has_text="Projects").wait_for()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_text(task_choice, exact=False).click()
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Next: add photos on the Upload page").wait_for()
    project = store.get_project(name)
    assert project.task is task
    return project


@pytest.mark.docker
@pytest.mark.timeout(2400)
def test_detection_journey(page, studio, raccoon_dir, tmp_path, screenshot, request, shoot_on_failure):
    store = studio.store
    page.goto(studio.url)

    # 1. Projects: a new detection project
    project = _create_project(page, store, "Raccoon finder", "Detection — find objects", Task.DETECTION)
    screenshot(page, "journey-det-01-project")

    # 2. Upload: the VOC zip
    upload(page, voc_zip(raccoon_dir, tmp_path / "raccoons.zip"), N_RACCOONS)
    assert store.count_images(project) == N_RACCOONS
    assert sum(len(r.boxes) for r in store.list_images(project)) >= N_RACCOONS
    screenshot(page, "journey-det-02-upload")

    # 3. Dataset: the gallery; open the photo with the most free room beside its box on the Label page
    main_link(page, "See the photos on the Dataset page").click()
    page.locator("h1").filter(has_text="Dataset").wait_for()
    page.locator('[data-testid="stImage"]').nth(N_RACCOONS - 1).wait_for()
    screenshot(page, "journey-det-03-dataset")

    def room(rec) -> float:  # the widest empty strip left or right of the photo's only box
        b = rec.boxes[0].box
        return max(b.x_min, rec.width - b.x_max) / rec.width

    rec = max((r for r in store.list_images(project) if len(r.boxes) == 1), key=room)
    wait_idle(page)
    page.locator(f'a[href*="image={rec.id}"]').click()
    bb = open_image(page, rec.id)
    m = DisplayMapping(rec.width, rec.height, round(bb["width"]), round(bb["height"]))
    original = rec.boxes[0].box

    # 4. Label: draw a new box in the free strip, then move the imported box
    left_free = original.x_min > rec.width - original.x_max
    strip_x0, strip_x1 = (0, original.x_min) if left_free else (original.x_max, rec.width)
    cx = bb["x"] + (strip_x0 + strip_x1) / 2 * m.sx
    w = min(60, int((strip_x1 - strip_x0) * m.sx * 0.6))
    x0, y0 = math.ceil(cx - w / 2), math.ceil(bb["y"] + bb["height"] * 0.3)
    x1, y1 = x0 + w, y0 + w
    drag(page, x0, y0, x1, y1)
    drawn = m.to_image({"left": x0 - bb["x"], "top": y0 - bb["y"], "width": x1 - x0, "height": y1 - y0})

    def boxes() -> list[Box]:
        return [a.box for a in store.get_image(project, rec.id).boxes]

    wait_for(lambda: len(boxes()) == 2, what="the drawn box in the store")
    assert any(close(b, drawn) for b in boxes()), (boxes(), drawn)
    page.get_by_text("2 boxes", exact=True).wait_for()

    toolbar_button(page, "Edit").click()
    dx = -20 if left_free else 20  # towards the free strip, staying inside the photo
    dy = 10 if original.y_max + 10 / m.sy < rec.height else -10
    ox = math.ceil(bb["x"] + (original.x_min + original.x_max) / 2 * m.sx)
    oy = math.ceil(bb["y"] + (original.y_min + original.y_max) / 2 * m.sy)
    drag(page, ox, oy, ox + dx, oy + dy)
    moved_want = Box(original.x_min + dx / m.sx, original.y_min + dy / m.sy,
                     original.x_max + dx / m.sx, original.y_max + dy / m.sy)
    wait_for(lambda: any(close(b, moved_want) for b in boxes()), what="the moved box in the store")
    assert len(boxes()) == 2 and not any(close(b, original, 0.5) for b in boxes()), boxes()
    assert {a.label for a in store.get_image(project, rec.id).boxes} == {"raccoon"}
    wait_idle(page)
    screenshot(page, "journey-det-04-label")
    no_exception(page, studio)

    # 5. Train: tiny settings; the model must learn enough in a few epochs to find boxes in preview
    def detection_settings(pg) -> None:
        set_number(pg, "Learning rate", 0.01)
        pg.get_by_text("Augment photos", exact=False).click()   # off: overfit the few photos quickly
        pg.get_by_text("Train on all images", exact=False).click()
        # keep even low-scored boxes inside the model: a few epochs from scratch score ~0.02
        thumb = pg.locator('[data-testid="stSlider"]').filter(has_text="Minimum score").get_by_role("slider")
        thumb.focus()
        thumb.press("Home")
        wait_for(lambda: thumb.get_attribute("aria-valuetext") == "0.01", what="the minimum score at 0.01")

    model_id = train(page, studio, screenshot, "journey-det-05", image_size=256, epochs=5,
                     extra=detection_settings)

    # 6. Models: float and int8 metrics, the Edge TPU preflight table
    check_models_page(page, studio, screenshot, "journey-det-06", model_id, "mAP50")

    # 7. Preview: one photo of the project, boxes drawn and listed
    main_link(page, "Try it on photos (Preview)").click()
    page.locator("h1").filter(has_text="Preview").wait_for()
    result = page.get_by_text(re.compile(r"object\(s\) at score"))
    result.wait_for(timeout=60_000)
    set_number(page, "Max boxes", 3)  # a readable picture
    page.get_by_text(re.compile(r"^\s*[123] object\(s\) at score")).wait_for()
    listed = page.locator('[data-testid="stDataFrame"]').filter(has_text="box (x0, y0, x1, y1)")
    listed.wait_for()
    wait_image_loaded(page)
    screenshot(page, "journey-det-07-preview")
    no_exception(page, studio)

    # 8. Deploy: the offline robot image, smoke-tested, then its archive downloaded
    client = request.getfixturevalue("docker_client")
    request.getfixturevalue("base_image")
    request.getfixturevalue("wheelhouse")
    tag = f"studio-test/journey-detection:{secrets.token_hex(3)}"
    main_link(page, "Happy with it? Build a robot image (Deploy)").click()
    page.locator("h1").filter(has_text="Deploy").wait_for()
    page.get_by_text("Docker engine:", exact=False).wait_for()
    tag_box = page.get_by_label("Image tag", exact=True)
    tag_box.fill(tag)
    tag_box.press("Tab")
    page.get_by_role("button", name="Build image").click()
    page.locator('[data-testid="stProgress"]').first.wait_for()
    screenshot(page, "journey-det-08-deploy-building", full_page=False)
    smoke = page.locator('[data-testid="stMetric"]').filter(has_text="Smoke test")
    smoke.wait_for(timeout=BUILD_TIMEOUT_MS)
    assert "passed" in smoke.inner_text(), smoke.inner_text()
    image = client.images.get(tag)
    screenshot(page, "journey-det-08-deploy-built")
    page.get_by_role("button", name="Prepare the image download (docker save)").click()
    download = page.get_by_role("button", name="Download the image (.tar.gz)")
    download.wait_for(timeout=300_000)
    with page.expect_download(timeout=120_000) as dl_info:
        download.click()
    archive = tmp_path / "robot-image.tar.gz"
    dl_info.value.save_as(archive)
    with open(archive, "rb") as f:
        assert f.read(2) == b"\x1f\x8b", "not a gzip file"
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        assert "manifest.json" in names, names[:20]
        manifest = json.load(tar.extractfile("manifest.json"))
    assert tag in manifest[0]["RepoTags"], manifest
    assert image.id.split(":")[-1] in manifest[0]["Config"], (image.id, manifest[0]["Config"])
    screenshot(page, "journey-det-09-deploy-downloaded")
    no_exception(page, studio)


@pytest.mark.timeout(1200)
def test_classification_journey(page, studio, digits_dir, tmp_path, screenshot, shoot_on_failure):
    store = studio.store
    page.goto(studio.url)

    project = _create_project(page, store, "Hand signs", "Classification — one label per photo",
                              Task.CLASSIFICATION)
    screenshot(page, "journey-cls-01-project")

    n = len(DIGIT_CLASSES) * DIGITS_PER_CLASS
    upload(page, folders_zip(digits_dir, tmp_path / "digits.zip"), n)
    assert store.count_images(project) == n
    assert sorted(store.label_map(project).names) == sorted(DIGIT_CLASSES)
    assert store.count_images(project, unlabelled=False) == n
    screenshot(page, "journey-cls-02-upload")

    main_link(page, "See the photos on the Dataset page").click()
    page.locator("h1").filter(has_text="Dataset").wait_for()
    page.locator('[data-testid="stImage"]').nth(n - 1 if n <= 24 else 23).wait_for()
    screenshot(page, "journey-cls-03-dataset")

    model_id = train(page, studio, screenshot, "journey-cls-04", image_size=96, epochs=1)
    check_models_page(page, studio, screenshot, "journey-cls-05", model_id, "accuracy")

    main_link(page, "Try it on photos (Preview)").click()
    page.locator("h1").filter(has_text="Preview").wait_for()
    page.get_by_text("Labelled as:", exact=False).wait_for(timeout=60_000)
    best = page.get_by_text(re.compile(r"^(0|1|2|3) — \d+(\.\d)?%$"))
    best.wait_for()
    scores = page.locator('[data-testid="stDataFrame"]')
    scores.first.wait_for()
    wait_image_loaded(page)
    screenshot(page, "journey-cls-06-preview")
    no_exception(page, studio)
