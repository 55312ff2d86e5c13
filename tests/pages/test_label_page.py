"""The Label page under Streamlit's AppTest: navigation, filters, saving what the canvas sends,
conflicts between sessions, undo/accept, and classification bulk assignment.

The canvas is a custom component (an ``UnknownElement`` here): a drawing is simulated by
setting its session-state value, the way the browser would send it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data import labeling
from core.data.annotations import Annotation, Task
from core.data.boxes import Box
from core.data.imaging import probe_image
from core.data.store import NewImage, Store

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "label.py")
CANVAS_PREFIX = "studio.label.canvas."
SYNC = "studio.label.sync"


def _add(store: Store, project, files: list[Path], splits: list[str] | None = None):
    items = []
    for k, f in enumerate(files):
        data = f.read_bytes()
        info = probe_image(data)
        items.append(NewImage(data, f.name, info.width, info.height,
                              split=splits[k] if splits else "train"))
    return store.add_images(project, items).image_ids


@pytest.fixture
def detection(env: Path, store: Store, raccoon_dir: Path):
    project = store.create_project("raccoons", Task.DETECTION)
    files = sorted((raccoon_dir / "images").glob("*.jpg"))[:4]
    ids = _add(store, project, files, ["train", "train", "val", "test"])
    store.add_class(project, "raccoon")
    return store, project, ids


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def _canvas_key(at: AppTest) -> str:
    return f"{CANVAS_PREFIX}{at.session_state[SYNC].epoch}"


def _current(at: AppTest) -> str:
    return at.session_state[SYNC].image_id


def _draw(at: AppTest, rects: list[dict]) -> AppTest:
    """Send the canvas content the browser would send: the current boxes (canvas pixels)."""
    objects = [{"type": "LabeledRect", "originX": "left", "originY": "top", "scaleX": 1,
                "scaleY": 1, **r} for r in rects]
    at.session_state[_canvas_key(at)] = {"drawing": {"raw": {"objects": objects}, "data": None},
                                         "backgroundFit": None}
    return at.run()


def _mapping(store: Store, project, image_id: str) -> labeling.DisplayMapping:
    rec = store.get_image(project, image_id)
    return labeling.DisplayMapping.fit(rec.width, rec.height, 640, 540)  # "Medium"


def _button(at: AppTest, key_suffix: str):
    return at.button(key=f"studio.label.{key_suffix}")


def _class_choice(at: AppTest) -> str:
    """The "Class for new boxes" selector's value (its key changes when the page picks a class)."""
    return next(r for r in at.radio if r.label == "Class for new boxes").value


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.info, *at.success, *at.warning, *at.toast,
                                           *at.markdown, *at.caption])


def test_navigation_prev_next_jump_and_next_unlabelled(detection):
    store, project, ids = detection
    at = _app()
    assert not at.exception
    assert _current(at) == ids[0]
    assert _button(at, "prev").disabled
    _button(at, "next").click().run()
    assert _current(at) == ids[1]
    _button(at, "prev").click().run()
    assert _current(at) == ids[0]
    at.number_input(key="studio.label.jump").set_value(4).run()
    assert _current(at) == ids[3] and _button(at, "next").disabled
    # label images 1 and 2: "next unlabelled" from the last goes round to image 3
    for iid in ids[:2]:
        store.set_annotations(project, iid, [Annotation("raccoon", Box(1, 1, 50, 50))])
    _button(at, "next_unlabelled").click().run()
    assert _current(at) == ids[2]
    assert "2 / 4 labelled (50%)" in str(at.get("progress")[0].proto.text)
    assert not at.exception


def test_filters_by_split_class_and_status(detection):
    store, project, ids = detection
    store.add_class(project, "dog")
    store.set_annotations(project, ids[1], [Annotation("dog", Box(5, 5, 60, 60))])
    at = _app()
    at.selectbox(key="studio.label.f_split").select("val").run()
    assert _current(at) == ids[2]
    assert at.number_input(key="studio.label.jump").max == 1
    at.selectbox(key="studio.label.f_split").select("All").run()
    at.selectbox(key="studio.label.f_class").select("dog").run()
    assert _current(at) == ids[1] and at.number_input(key="studio.label.jump").max == 1
    at.selectbox(key="studio.label.f_class").select("All").run()
    at.selectbox(key="studio.label.f_status").select("Unlabelled").run()
    assert _current(at) == ids[0] and at.number_input(key="studio.label.jump").max == 3
    at.selectbox(key="studio.label.f_split").select("test").run()
    at.selectbox(key="studio.label.f_class").select("dog").run()
    assert any("No photos match" in i.value for i in at.info)
    assert not at.exception


def test_canvas_changes_are_saved_in_image_pixels(detection):
    store, project, ids = detection
    at = _app()
    m = _mapping(store, project, ids[0])
    _draw(at, [{"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80}])
    rec = store.get_image(project, ids[0])
    assert len(rec.boxes) == 1
    want = m.to_image({"left": 20, "top": 30, "width": 100, "height": 80})
    assert all(abs(a - b) <= 0.01 for a, b in zip(rec.boxes[0].box.as_tuple(), want.as_tuple()))
    assert rec.boxes[0].reviewed
    # a second box drawn with another class, the first untouched (exact stored values kept)
    _draw(at, [{"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80},
               {"label": "fox", "left": 150, "top": 40, "width": 30, "height": 30}])
    rec2 = store.get_image(project, ids[0])
    assert [a.label for a in rec2.boxes] == ["raccoon", "fox"]
    assert rec2.boxes[0] == rec.boxes[0] and "fox" in store.label_map(project)
    # a click-box is not stored
    _draw(at, [{"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80},
               {"label": "fox", "left": 150, "top": 40, "width": 30, "height": 30},
               {"label": "raccoon", "left": 300, "top": 300, "width": 4, "height": 4}])
    assert len(store.get_image(project, ids[0]).boxes) == 2
    # going to the next image and back shows the stored boxes again (a fresh canvas)
    _button(at, "next").click().run()
    _button(at, "prev").click().run()
    assert len(at.session_state[SYNC].baseline) == 2
    assert not at.exception


def test_concurrent_additions_are_both_kept_and_the_second_is_told(detection):
    store, project, ids = detection
    at = _app()
    other = _app()  # a second browser session on the same photo
    _draw(other, [{"label": "raccoon", "left": 10, "top": 10, "width": 50, "height": 50}])
    theirs = store.get_image(project, ids[0])
    assert len(theirs.boxes) == 1
    _draw(at, [{"label": "raccoon", "left": 200, "top": 100, "width": 60, "height": 70}])
    both = store.get_image(project, ids[0])
    assert len(both.boxes) == 2 and both.boxes[0] == theirs.boxes[0]  # theirs kept, mine added
    assert any("both are kept" in t.value for t in at.toast) and not at.error  # the second is told
    other.run()
    assert other.session_state[SYNC].baseline == list(both.annotations)
    assert not at.exception and not other.exception


def test_concurrent_edit_is_refused_and_reported(detection):
    store, project, ids = detection
    store.set_annotations(project, ids[0], [Annotation("raccoon", Box(5, 5, 40, 40))])
    at = _app()
    other = _app()
    _draw(other, [{"label": "raccoon", "left": 10, "top": 10, "width": 50, "height": 50}])  # moved
    theirs = store.get_image(project, ids[0])
    assert len(theirs.boxes) == 1
    _draw(at, [{"label": "raccoon", "left": 200, "top": 100, "width": 60, "height": 70}])  # moved elsewhere
    assert store.get_image(project, ids[0]).annotations == theirs.annotations  # not overwritten
    assert any("someone else changed this photo" in e.value for e in at.error)
    # keep mine: an explicit overwrite
    _button(at, "keep_mine").click().run()
    mine = store.get_image(project, ids[0])
    assert len(mine.boxes) == 1 and mine.boxes[0].box.x_min > 100
    assert not at.error
    # the other session, without a pending change, just follows
    other.run()
    assert other.session_state[SYNC].baseline == list(mine.annotations)
    assert any("changed in another session" in t.value for t in other.toast)
    assert not at.exception and not other.exception


def test_conflict_load_their_version(detection):
    store, project, ids = detection
    mine = Annotation("raccoon", Box(300, 200, 400, 300))
    store.set_annotations(project, ids[0], [mine])
    at = _app()
    store.set_annotations(project, ids[0], [mine, Annotation("raccoon", Box(0, 0, 30, 30))])
    _draw(at, [])  # this session deletes the box the other one kept
    assert at.error
    _button(at, "load_theirs").click().run()
    assert not at.error
    assert at.session_state[SYNC].baseline == [mine, Annotation("raccoon", Box(0, 0, 30, 30))]
    assert len(store.get_image(project, ids[0]).boxes) == 2


def test_undo_relabel_delete_and_accept_predictions(detection):
    store, project, ids = detection
    store.add_class(project, "dog")
    preds = labeling.predictions_to_annotations(
        [{"label": "raccoon", "score": 0.9, "box": (10, 10, 100, 100)},
         {"label": "dog", "score": 0.6, "box": (120, 20, 200, 90)}])
    store.set_annotations(project, ids[0], preds)
    at = _app()
    assert not _button(at, "accept").disabled
    assert "2 suggested" in _texts(at)
    # change the class of box 2 from the list: it becomes reviewed, box 1 stays a suggestion
    s = at.session_state[SYNC]
    at.selectbox(key=f"studio.label.box.{s.epoch}.{s.revision}.1").select("raccoon").run()
    rec = store.get_image(project, ids[0])
    assert [(a.label, a.reviewed) for a in rec.boxes] == [("raccoon", False), ("raccoon", True)]
    assert not rec.reviewed
    _button(at, "accept").click().run()
    rec = store.get_image(project, ids[0])
    assert rec.reviewed and all(a.reviewed for a in rec.annotations)
    assert _button(at, "accept").disabled
    # delete box 1 from the list, then undo it
    s = at.session_state[SYNC]
    at.button(key=f"studio.label.box.{s.epoch}.{s.revision}.0.del").click().run()
    assert len(store.get_image(project, ids[0]).boxes) == 1
    _button(at, "undo").click().run()
    assert len(store.get_image(project, ids[0]).boxes) == 2
    assert len(at.session_state[SYNC].baseline) == 2
    assert not at.exception


def test_add_class_on_the_spot_becomes_current(detection):
    store, project, ids = detection
    at = _app()
    at.text_input(key="studio.label.new_class").input("fox").run()
    _button(at, "add_class").click().run()
    assert "fox" in store.label_map(project)
    assert _class_choice(at) == "fox"
    _draw(at, [{"label": "fox", "left": 20, "top": 30, "width": 100, "height": 80}])
    assert store.get_image(project, ids[0]).boxes[0].label == "fox"


def test_add_class_without_a_name_or_twice_is_explained(detection):
    store, project, ids = detection
    at = _app()
    _button(at, "add_class").click().run()
    assert any("Type a name for the new class first" in t.value for t in at.toast)
    at.text_input(key="studio.label.new_class").input("fox").run()
    _button(at, "add_class").click().run()
    assert _class_choice(at) == "fox"
    at.text_input(key="studio.label.new_class").input("Raccoon ").run()
    _button(at, "add_class").click().run()
    assert not at.exception
    assert store.label_map(project).names.count("raccoon") == 1 and "Raccoon" not in store.label_map(project)
    assert any("There is already a class **raccoon**" in t.value for t in at.toast)
    assert _class_choice(at) == "raccoon"


def test_empty_project_and_no_classes(env: Path, store: Store, raccoon_dir: Path):
    project = store.create_project("empty", Task.DETECTION)
    at = _app()
    assert any("no photos yet" in i.value for i in at.info)
    _add(store, project, sorted((raccoon_dir / "images").glob("*.jpg"))[:1])
    at.run()
    assert any("Add a class" in w.value for w in at.warning)
    assert not at.exception


@pytest.fixture
def classification(env: Path, store: Store, digits_dir: Path):
    project = store.create_project("digits", Task.CLASSIFICATION)
    files = []
    for d in ("0", "1", "2"):
        files += sorted((digits_dir / d).iterdir())[:10]
    ids = _add(store, project, files)
    for c in ("zero", "one", "two"):
        store.add_class(project, c)
    return store, project, ids


def test_classification_bulk_assignment_and_single_class(classification):
    store, project, ids = classification
    at = _app()
    assert not at.exception
    assert len(at.checkbox) == 24  # one page
    # select the whole first page, then unselect two, and assign
    _button(at, "pick_page").click().run()
    at.checkbox(key=f"studio.label.pick.{ids[0]}").uncheck().run()
    at.checkbox(key=f"studio.label.pick.{ids[1]}").uncheck().run()
    assert "Assign to 22 selected" in _button(at, "bulk_assign").label
    at.selectbox(key="studio.label.grid_bulk").select("one").run()
    _button(at, "bulk_assign").click().run()
    labels = {r.id: r.class_label for r in store.list_images(project)}
    assert sum(1 for i in ids[:24] if labels[i] == "one") == 22
    assert labels[ids[0]] is None and labels[ids[24]] is None
    assert not at.session_state["studio.label.grid_selected"]
    # one image's own selector
    rec = store.get_image(project, ids[0])
    at.selectbox(key=f"studio.label.gcls.{ids[0]}.{rec.revision}").select("zero").run()
    assert store.get_image(project, ids[0]).class_label == "zero"
    # the second page and the status filter
    at.number_input(key="studio.label.grid_page").set_value(2).run()
    assert len(at.checkbox) == 6
    at.selectbox(key="studio.label.f_status").select("Unlabelled").run()
    assert len(at.checkbox) == 7
    assert "23 / 30 labelled" in str(at.get("progress")[0].proto.text)
    assert not at.exception


def test_model_suggestions_are_unreviewed_until_accepted(detection, monkeypatch):
    """The page's "Suggest boxes" runs a model (faked here: the real one is tested with the
    Preview page) and stores its boxes unreviewed; the user's own boxes stay."""
    from pages._shared import label_state

    store, project, ids = detection
    store.set_annotations(project, ids[0], [Annotation("raccoon", Box(5, 5, 40, 40))])

    class Det:
        def __init__(self, label, score, box):
            self.label, self.score, self.box = label, score, box

    class Pred:
        detections = [Det("raccoon", 0.9, Box(100, 80, 300, 260)), Det("raccoon", 0.1, Box(1, 1, 9, 9)),
                      Det("raccoon", 0.8, Box(500, 300, 9000, 9000))]
        classes = []

    monkeypatch.setattr(label_state, "models_for",
                        lambda store, project: [{"id": "m1", "path": "/nowhere", "task": "detection"}])
    monkeypatch.setattr(label_state, "predict", lambda path, data: Pred())
    at = _app()
    _button(at, "suggest").click().run()
    rec = store.get_image(project, ids[0])
    assert [(a.box, a.reviewed) for a in rec.boxes] == [
        (Box(5, 5, 40, 40), True), (Box(100, 80, 300, 260), False),
        (Box(500, 300, rec.width, rec.height), False)]
    assert not rec.reviewed and any("suggested" in t.value for t in at.toast)
    assert at.session_state["studio.label.sync"].shown == list(rec.annotations)  # redrawn
    _button(at, "accept").click().run()
    assert store.get_image(project, ids[0]).reviewed
    assert not at.exception


def test_exif_rotated_photo_boxes_are_in_upright_pixels(env: Path, store: Store, raccoon_dir: Path):
    """A photo stored sideways (EXIF orientation 6) is labelled upright: a box over the whole
    canvas is the whole upright image."""
    import io

    from PIL import Image

    src = Image.open(sorted((raccoon_dir / "images").glob("*.jpg"))[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    src.save(buf, format="JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    info = probe_image(data)
    assert (info.width, info.height) == (src.height, src.width)
    project = store.create_project("rotated", Task.DETECTION)
    (iid,) = store.add_images(project, [NewImage(data, "sideways.jpg", info.width, info.height)]).image_ids
    store.add_class(project, "raccoon")
    at = _app()
    m = _mapping(store, project, iid)
    assert m.canvas_h > m.canvas_w  # portrait on screen, like the upright photo
    _draw(at, [{"label": "raccoon", "left": 0, "top": 0, "width": m.canvas_w, "height": m.canvas_h}])
    assert store.get_image(project, iid).boxes[0].box == Box(0, 0, info.width, info.height)
    assert not at.exception


def test_labelled_photo_stays_open_under_the_unlabelled_filter(detection):
    store, project, ids = detection
    at = _app()
    at.selectbox(key="studio.label.f_status").select("Unlabelled").run()
    _draw(at, [{"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80}])
    at.run()
    assert _current(at) == ids[0]  # not whisked away while the user is still on it
    _button(at, "next").click().run()
    assert _current(at) == ids[1]
    assert _button(at, "prev").disabled  # once left, the labelled photo is filtered out again
    assert at.number_input(key="studio.label.jump").max == 3
    assert not at.exception


def test_canvas_size_change_rebuilds_the_canvas_from_the_store(detection):
    store, project, ids = detection
    at = _app()
    _draw(at, [{"label": "raccoon", "left": 20, "top": 30, "width": 100, "height": 80}])
    s = at.session_state[SYNC]
    epoch, saved = s.epoch, list(store.get_image(project, ids[0]).annotations)
    assert s.shown == []  # the canvas keeps its own drawing: no reload while drawing
    at.select_slider(key="studio.label.size").set_value("Large").run()
    s = at.session_state[SYNC]
    assert s.epoch > epoch and s.shown == saved
    assert store.get_image(project, ids[0]).annotations == tuple(saved)  # nothing changed
    assert not at.exception


def test_url_reopens_the_same_project_and_photo(detection, raccoon_dir: Path):
    """A browser reload starts a new session: the URL brings back the project and photo."""
    store, project, ids = detection
    other = store.create_project("another", Task.DETECTION)  # sorts first: the default project
    _add(store, other, sorted((raccoon_dir / "images").glob("*.jpg"))[10:12])
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["project"] = "raccoons"
    at.query_params["image"] = ids[2][:12]
    at.run()
    assert at.session_state["studio.project"] == "raccoons"
    assert _current(at) == ids[2]
    assert not at.exception


def test_accept_and_next_walks_through_suggestions(detection):
    store, project, ids = detection
    for iid in (ids[1], ids[3]):
        store.set_annotations(project, iid, labeling.predictions_to_annotations(
            [{"label": "raccoon", "score": 0.8, "box": (10, 10, 60, 60)}]))
    at = _app()
    at.selectbox(key="studio.label.f_status").select("Unreviewed").run()
    assert _current(at) == ids[1]
    _button(at, "accept_next").click().run()
    assert _current(at) == ids[3] and store.get_image(project, ids[1]).reviewed
    _button(at, "accept_next").click().run()
    assert store.get_image(project, ids[3]).reviewed
    assert any("Every photo here is reviewed" in t.value for t in at.toast)
    assert not at.exception
