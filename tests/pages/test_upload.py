"""Upload page through the whole app (AppTest): a real file upload, a server path, refusals."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

RACCOONS = ["raccoon-1", "raccoon-2", "raccoon-3", "raccoon-4", "raccoon-5"]


def _raccoon_zip(raccoon_dir: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for stem in RACCOONS:
            z.write(raccoon_dir / "images" / f"{stem}.jpg", f"raccoon/images/{stem}.jpg")
            z.write(raccoon_dir / "annotations" / f"{stem}.xml", f"raccoon/annotations/{stem}.xml")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def upload_page(app, store):
    store.create_project("Raccoons", "detection")
    app.switch_page("pages/upload.py").run()
    assert not app.exception and app.title[0].value == "Upload"
    return app


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.main.metric}


def test_no_project_points_to_projects_page(app):
    app.switch_page("pages/upload.py").run()
    assert not app.exception
    assert any("no project yet" in i.value for i in app.info)
    assert not app.file_uploader


def test_upload_zip_shows_report_with_issues_table(upload_page, store, raccoon_dir):
    at = upload_page
    data = _raccoon_zip(raccoon_dir, {"raccoon/images/broken.jpg": b"\xff\xd8 this is not a jpeg"})
    at.file_uploader[0].set_value([("raccoons.zip", data, "application/zip")]).run()
    go = at.button(key="studio.upload.go")
    assert go.label.startswith("Import 1 file")
    go.click().run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert m["Images added"] == "5" and m["Already in the project"] == "0"
    assert int(m["Boxes"]) >= 5 and m["Classes"] == "1"
    assert any("Imported 5 new images" in s.value for s in at.success)
    issues = at.dataframe[0].value
    assert list(issues.columns) == ["item", "reason", "action"]
    assert any("broken.jpg" in item for item in issues["item"])
    p = store.get_project("Raccoons")
    assert store.stats(p)["images"] == 5
    assert not at.file_uploader[0].value  # a fresh, empty uploader after the import

    # the same files again: recognised, nothing added
    at.file_uploader[0].set_value([("again.zip", data, "application/zip")]).run()
    at.button(key="studio.upload.go").click().run()
    assert _metrics(at)["Already in the project"] == "5"
    assert any("already in this project" in i.value for i in at.info)


def test_loose_files_upload(upload_page, store, raccoon_dir):
    at = upload_page
    files = [(f"{s}.jpg", (raccoon_dir / "images" / f"{s}.jpg").read_bytes(), "image/jpeg") for s in RACCOONS[:2]]
    files += [(f"{s}.xml", (raccoon_dir / "annotations" / f"{s}.xml").read_bytes(), "text/xml")
              for s in RACCOONS[:2]]
    at.file_uploader[0].set_value(files).run()
    at.button(key="studio.upload.go").click().run()
    assert not at.exception
    assert _metrics(at)["Images added"] == "2"
    assert store.stats(store.get_project("Raccoons"))["boxes"] >= 2


def test_refused_zip_is_an_error_message(upload_page, store):
    at = upload_page
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.jpg", b"x")
    at.file_uploader[0].set_value([("evil.zip", buf.getvalue(), "application/zip")]).run()
    at.button(key="studio.upload.go").click().run()
    assert not at.exception
    assert any(e.value.startswith("Nothing was imported.") for e in at.error)
    assert store.stats(store.get_project("Raccoons"))["images"] == 0


def test_server_path_import_and_missing_path(upload_page, store, raccoon_dir, tmp_path):
    at = upload_page
    folder = tmp_path / "on-server"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for s in RACCOONS[:3]:
        (folder / "images" / f"{s}.jpg").write_bytes((raccoon_dir / "images" / f"{s}.jpg").read_bytes())
        (folder / "annotations" / f"{s}.xml").write_bytes((raccoon_dir / "annotations" / f"{s}.xml").read_bytes())
    at.selectbox(key="studio.upload.format").select("voc").run()
    at.text_input(key="studio.upload.path").input(str(folder)).run()
    at.button(key="studio.upload.path_go").click().run()
    assert not at.exception
    assert _metrics(at)["Images added"] == "3"
    assert any("(read as Pascal VOC)" in s.value for s in at.success)

    at.text_input(key="studio.upload.path").input(str(tmp_path / "nope")).run()
    at.button(key="studio.upload.path_go").click().run()
    assert not at.exception
    issues = at.dataframe[0].value
    assert "no such file or folder" in issues["reason"].iloc[0]


def test_classification_zip_of_class_folders(app, store, digits_dir):
    store.create_project("Digits", "classification")
    app.switch_page("pages/upload.py").run()
    options = app.selectbox(key="studio.upload.format").options
    assert any("one folder per class" in o for o in options)
    assert not any("Pascal VOC" in o for o in options)  # formats with boxes only: not offered
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for digit in ("3", "7"):
            for f in sorted((digits_dir / digit).iterdir())[:3]:
                z.write(f, f"digits/{digit}/{f.name}")
    app.file_uploader[0].set_value([("digits.zip", buf.getvalue(), "application/zip")]).run()
    app.button(key="studio.upload.go").click().run()
    assert not app.exception
    m = _metrics(app)
    assert m["Images added"] == "6" and m["Image labels"] == "6" and m["Classes"] == "2"
    stats = store.stats(store.get_project("Digits"))
    assert set(stats["per_class"]) == {"3", "7"}
    app.file_uploader[0].set_value([("digits.zip", buf.getvalue(), "application/zip")]).run()
    app.button(key="studio.upload.go").click().run()  # the same zip again: nothing new
    m = _metrics(app)
    assert m["Images added"] == "0" and m["Image labels"] == "0" and "Boxes" not in m


def test_zip_with_junk_lists_ignored_files_and_plain_reasons(upload_page, store, raccoon_dir):
    at = upload_page
    photo = (raccoon_dir / "images" / "raccoon-10.jpg").read_bytes()
    data = _raccoon_zip(raccoon_dir, {
        "raccoon/notes.txt": b"shot at night",
        "raccoon/images/truncated.jpg": photo[:3000],
        "__MACOSX/raccoon/._notes.txt": b"\x00\x05\x16\x07",
    })
    at.file_uploader[0].set_value([("raccoons.zip", data, "application/zip")]).run()
    at.button(key="studio.upload.go").click().run()
    assert not at.exception, at.exception
    assert _metrics(at)["Images added"] == "5"
    rows = {r.item: (r.reason, r.action) for r in at.dataframe[0].value.itertuples()}
    assert rows["raccoon/notes.txt"] == ("not a photo or a label file (.txt)", "ignored")
    assert rows["1 system file (__MACOSX/)"][1] == "ignored"
    reason, action = rows["raccoon/images/truncated.jpg"]
    assert action == "skipped" and reason.startswith("the file is cut short") and "more than half" in reason
    assert any("2 files were neither a photo nor a label file" in c.value for c in at.caption)
    assert any("1 item skipped or repaired · 2 files ignored" in m.value for m in at.markdown)
