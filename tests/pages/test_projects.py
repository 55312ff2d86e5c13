"""Projects page through the whole app (AppTest): create, summary, demo, pick, delete."""

from __future__ import annotations


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.main.metric}


def test_empty_studio_explains_what_to_do(app):
    assert app.title[0].value == "Projects"
    assert any("No projects yet" in i.value for i in app.info)
    assert not app.sidebar.selectbox  # no picker without projects


def test_create_project_then_see_its_summary(app, store):
    app.text_input[0].input("Ball finder")
    app.radio[0].set_value("classification")
    app.button(key="FormSubmitter:studio.projects.create-Create project").click().run()
    assert not app.exception
    assert any("Created **Ball finder**" in s.value for s in app.success)
    m = _metrics(app)
    assert m["Images"] == "0" and m["Classes"] == "0" and m["Unlabelled"] == "0"
    assert any("No images yet" in c.value for c in app.caption)
    assert app.sidebar.selectbox[0].value == "Ball finder"
    p = store.get_project("Ball finder")
    assert p.task.value == "classification"


def test_create_errors_are_messages(app):
    app.button(key="FormSubmitter:studio.projects.create-Create project").click().run()
    assert [e.value for e in app.error] == ["A project needs a name."]
    app.text_input[0].input("Same")
    app.button(key="FormSubmitter:studio.projects.create-Create project").click().run()
    app.text_input[0].input("Same")
    app.button(key="FormSubmitter:studio.projects.create-Create project").click().run()
    assert not app.exception
    assert any("already exists" in e.value for e in app.error)


def test_demo_project_summary_and_picker(app):
    app.button(key="studio.projects.demo_detection").click().run()
    assert not app.exception
    m = _metrics(app)
    assert m["Images"] == "60" and m["Labelled"] == "60" and m["Classes"] == "3"
    assert int(m["Boxes"]) >= 60
    train, val, test = (int(x) for x in m["Train / val / test"].split(" / "))
    assert train + val + test == 60 and val > 0 and test > 0
    app.button(key="studio.projects.demo_classification").click().run()
    picker = app.sidebar.selectbox[0]
    assert picker.value == "Demo shapes (classification)"
    assert set(picker.options) == {"Demo shapes (classification)", "Demo shapes (detection)"}
    picker.select("Demo shapes (detection)").run()
    assert app.sidebar.selectbox[0].value == "Demo shapes (detection)"


def _model(store, project: str, artefact_id: str) -> None:
    from core.data import artefacts

    folder = artefacts.models_dir(store.root) / artefact_id
    folder.mkdir(parents=True)
    artefacts.write_json_atomic(folder / artefacts.MANIFEST, {"id": artefact_id, "project": project,
                                                              "task": "detection", "created": 1.0})


def test_delete_needs_confirmation(app, store):
    from core.data import artefacts

    store.create_project("Keep", "detection")
    doomed = store.create_project("Doomed", "detection")
    _model(store, "Doomed", "m-doomed-1")
    _model(store, "Doomed", "m-doomed-2")
    _model(store, "Keep", "m-keep")
    app.run()
    assert any("and its 2 trained models" in m.value for m in app.markdown)
    delete = app.button(key=f"studio.projects.delete.{doomed.id}")
    assert delete.disabled
    app.checkbox(key=f"studio.projects.confirm.{doomed.id}").check().run()
    app.button(key=f"studio.projects.delete.{doomed.id}").click().run()
    assert not app.exception
    assert [p.name for p in store.list_projects()] == ["Keep"]
    assert any("Deleted **Doomed**" in i.value for i in app.info)
    # its models went with it (no page could reach them; a new "Doomed" would have inherited them)
    assert [m["id"] for m in artefacts.list_artefacts(store.root)] == ["m-keep"]
    assert sorted(p.name for p in artefacts.models_dir(store.root).iterdir()) == ["m-keep"]


def test_open_goes_to_the_dataset_page(app, store):
    p = store.create_project("Empty one", "detection")
    app.run()
    app.button(key=f"studio.projects.open.{p.id}").click().run()
    assert not app.exception
    assert app.title[0].value == "Dataset"
    assert any("No images yet — upload some on the Upload page." in i.value for i in app.info)
