"""The Models page under AppTest: the model picker, float vs int8 metrics, curves, confusion matrix,
per-class table, preflight table with the first CPU op, downloads; detection artefacts; empty state.

Artefacts are written as folders with a manifest (no training here: the trainer has its own tests).
"""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.data import artefacts
from core.data.annotations import Task
from core.data.store import Store

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "models.py")
PROJECT_KEY = "studio.project"


def _metrics(acc: float) -> dict:
    return {"accuracy": acc, "n": 4,
            "per_class": {"cat": {"precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
                          "dog": {"precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2}},
            "confusion_matrix": [[1, 1], [0, 2]]}


def write_model(store: Store, project: str, aid: str, manifest: dict) -> Path:
    folder = artefacts.models_dir(store.root) / aid
    folder.mkdir(parents=True)
    (folder / artefacts.INT8_MODEL).write_bytes(b"TFL3-fake")
    artefacts.write_labels(folder, manifest["labels"])
    artefacts.write_json_atomic(folder / artefacts.MANIFEST, {
        "schema_version": 1, "id": aid, "project": project, "created": time.time(),
        "files": {"float": artefacts.FLOAT_MODEL, "int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        **manifest})
    return folder


def classification_manifest(preflight: bool = True) -> dict:
    m = {"task": "classification", "labels": ["cat", "dog"], "input_size": [96, 96],
         "hparams": {"alpha": 0.35, "epochs": 3, "weights": "none", "batch_size": 8, "learning_rate": 0.001},
         "dataset_hash": "abc123", "history": {"loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.9, 0.8],
                                               "accuracy": [0.5, 0.6, 0.8], "val_accuracy": [0.4, 0.6, 0.7]},
         "metrics": {"float": _metrics(0.75), "int8": _metrics(0.725), "agreement": 0.95, "split": "test"},
         "quantization": {"input": {"scale": 1.0, "zero_point": 0, "dtype": "uint8"},
                          "output": {"scale": 0.0039, "zero_point": 0, "dtype": "uint8"}},
         "training": {"epochs_run": 3, "total_seconds": 42.0},
         "dataset": {"train": 12, "val": 4, "test": 4}}
    if preflight:
        m["preflight"] = {
            "compilable": True, "tpu_share": 0.8, "summary": "4 of 5 ops on the Edge TPU",
            "first_cpu_op": {"index": 3, "op": "CUSTOM_THING", "version": 1, "reason": "not supported"},
            "ops": [{"index": 0, "op": "QUANTIZE", "version": 1, "placement": "tpu", "reasons": []},
                    {"index": 1, "op": "CONV_2D", "version": 3, "placement": "tpu", "reasons": []},
                    {"index": 2, "op": "MEAN", "version": 2, "placement": "tpu", "reasons": []},
                    {"index": 3, "op": "CUSTOM_THING", "version": 1, "placement": "cpu-cut",
                     "reasons": ["not supported"]},
                    {"index": 4, "op": "SOFTMAX", "version": 1, "placement": "cpu-after-cut", "reasons": []}]}
    return m


def page(project: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[PROJECT_KEY] = project
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_empty_project_points_to_training(env, store):
    store.create_project("pets", Task.CLASSIFICATION)
    at = page("pets")
    assert not at.exception, at.exception
    assert "No trained model for this project yet" in texts(at)


def test_classification_model_shows_metrics_tables_and_preflight(env, store):
    store.create_project("pets", Task.CLASSIFICATION)
    write_model(store, "pets", "20260101-000000-aaaaaa", classification_manifest())
    write_model(store, "other", "20260101-000000-bbbbbb", classification_manifest())  # another project
    at = page("pets")
    assert not at.exception, at.exception
    assert at.title[0].value == "Models"
    picker = at.selectbox(key="studio.models.model")
    assert picker.options == [picker.format_func("20260101-000000-aaaaaa")]  # only this project's model
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["accuracy (int8)"] == "0.725"
    assert "vs float 0.750" in next(m for m in at.metric if m.label == "accuracy (int8)").delta
    assert metrics["int8 agrees with float"] == "0.950"
    frames = [d.value for d in at.dataframe]
    summary = frames[0]
    assert "MobileNetV2 alpha 0.35, weights none" in summary["value"].tolist()
    per_class = next(f for f in frames if "class" in getattr(f, "columns", []))
    assert per_class["class"].tolist() == ["cat", "dog"]
    assert per_class["recall (int8)"].tolist() == [0.5, 1.0]
    assert "The first operation that runs on the CPU is **CUSTOM_THING** (#3): not supported." in texts(at)
    styled = [d for d in at.dataframe if "op" in getattr(d.value, "columns", [])]
    assert styled and styled[0].value["op"].tolist()[3] == "CUSTOM_THING"
    downloads = at.get("download_button")
    assert len(downloads) == 3


def test_float_confusion_matrix_switch_and_no_preflight(env, store):
    store.create_project("pets", Task.CLASSIFICATION)
    write_model(store, "pets", "20260101-000000-cccccc", classification_manifest(preflight=False))
    at = page("pets")
    at.radio(key="studio.models.cm_kind").set_value("float").run()
    assert not at.exception, at.exception
    assert "No Edge TPU check recorded" in texts(at)


def test_detection_model_shows_map_and_pr_curves(env, store):
    store.create_project("raccoons", Task.DETECTION)
    write_model(store, "raccoons", "20260101-000000-dddddd", {
        "task": "detection", "labels": ["raccoon"], "input_size": [256, 256],
        "hparams": {"alpha": 0.35, "epochs": 2, "weights": "none"},
        "metrics": {"float": {"mAP": 0.41, "mAP50": 0.72, "per_class_AP": {"raccoon": 0.72}},
                    "int8": {"mAP": 0.38, "mAP50": 0.70, "per_class_AP": {"raccoon": 0.70},
                             "pr_curves": {"raccoon": {"recall": [0, 0.5, 1.0], "precision": [1.0, 0.8, 0.3]}}},
                    "split": "test"},
        "history": {"loss": [2.0, 1.5]}})
    at = page("raccoons")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["mAP50 (int8)"] == "0.700" and metrics["mAP (int8)"] == "0.380"
    per_class = next(d.value for d in at.dataframe if "class" in getattr(d.value, "columns", []))
    assert per_class["AP (int8)"].tolist() == [0.70]
    assert not at.radio  # no confusion matrix for detection


def detection_manifest(float_map50: float, int8_map50: float, *, num_images: int | None = 12,
                       split: str = "test", train_on: str = "split", preflight: dict | None = None,
                       compiler: dict | None = None) -> dict:
    def part(v: float) -> dict:
        d = {"mAP": v / 2, "mAP50": v, "per_class_AP": {"raccoon": v}}
        if num_images is not None:
            d["num_images"] = num_images
        return d

    return {"task": "detection", "labels": ["raccoon"], "input_size": [256, 256],
            "hparams": {"alpha": 0.35, "epochs": 3, "weights": "none", "train_on": train_on},
            "metrics": {"float": part(float_map50), "int8": part(int8_map50), "split": split},
            "dataset": {"train": 11, "val": 1, "test": 1, "train_on": train_on},
            "preflight": preflight, "compiler": compiler}


DET_PREFLIGHT = {  # what coral_runtime.preflight writes for a studio detector (to_dict, ops cut short)
    "compilable": True, "fatal": None, "tpu_share": 0.9727, "ops_on_tpu": 107, "ops_on_cpu": 3, "total_ops": 110,
    "first_cpu_op": None, "has_postprocess": True, "share_before_postprocess": 1.0, "already_compiled": False,
    "summary": "ops before the post-process op on TPU: 100% (the TFLite_Detection_PostProcess op runs on the CPU, "
               "as expected)\npredicted on Edge TPU: 107 of 110 ops (97%)",
    "ops": [{"index": 0, "op": "QUANTIZE", "version": 1, "placement": "cpu-edge", "reasons": []},
            {"index": 1, "op": "CONV_2D", "version": 3, "placement": "tpu", "reasons": []},
            {"index": 2, "op": "TFLite_Detection_PostProcess", "version": 1, "placement": "cpu-tail",
             "reasons": []}]}


def metric(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_a_zero_change_has_no_arrow_and_one_photo_is_called_unreliable(env, store):
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    store.create_project("raccoons", Task.DETECTION)
    write_model(store, "raccoons", "20260101-000000-eeeeee", detection_manifest(0.0, 0.0, num_images=1))
    at = page("raccoons")
    assert not at.exception, at.exception
    m50 = metric(at, "mAP50 (int8)")
    assert m50.value == "0.000" and m50.delta == "no change vs float 0.000"
    assert m50.proto.direction == MetricProto.MetricDirection.NONE
    assert m50.proto.color == MetricProto.MetricColor.GRAY
    warnings = " ".join(w.value for w in at.warning)
    assert "These scores are measured on only 1 photo, so they are not reliable" in warnings, warnings
    assert "Add more photos" in warnings
    assert "Measured on the **test** split" in texts(at)


def test_a_real_change_keeps_its_arrow_and_enough_photos_no_warning(env, store):
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    store.create_project("raccoons", Task.DETECTION)
    write_model(store, "raccoons", "20260101-000000-ffffff", detection_manifest(0.287, 0.051, num_images=40))
    at = page("raccoons")
    m50 = metric(at, "mAP50 (int8)")
    assert m50.delta == "-0.236 vs float 0.287"
    assert m50.proto.direction == MetricProto.MetricDirection.DOWN
    assert "not reliable" not in texts(at)


def test_few_photos_are_counted_from_the_confusion_matrix_when_nothing_else_says(env, store):
    store.create_project("pets", Task.CLASSIFICATION)
    man = classification_manifest()
    for kind in ("float", "int8"):
        man["metrics"][kind] = {**_metrics(0.5), "confusion_matrix": [[1, 0], [1, 0]]}
        man["metrics"][kind].pop("n")
    write_model(store, "pets", "20260101-000000-a1a1a1", man)
    at = page("pets")
    assert "measured on only 2 photos, so they are not reliable" in texts(at)


def test_trained_on_all_photos_says_the_score_flatters(env, store):
    store.create_project("raccoons", Task.DETECTION)
    write_model(store, "raccoons", "20260101-000000-a2a2a2",
                detection_manifest(0.287, 0.051, num_images=13, split="all", train_on="all"))
    at = page("raccoons")
    assert not at.exception, at.exception
    said = " ".join(w.value for w in at.warning)
    assert ("Measured on all photos, which the model was trained on — this score looks better than it is."
            in said), said
    assert "**all** split" not in texts(at)


def test_edge_tpu_check_in_sentences_and_how_to_compile(env, store, monkeypatch):
    from coral_runtime import compiler

    monkeypatch.setattr(compiler, "find_compiler", lambda path=None: None)  # as on a machine without it
    store.create_project("raccoons", Task.DETECTION)
    folder = write_model(store, "raccoons", "20260101-000000-a3a3a3",
                         detection_manifest(0.7, 0.69, preflight=DET_PREFLIGHT, compiler=None))
    at = page("raccoons")
    assert not at.exception, at.exception
    ok = at.success[0].value
    # separate sentences (paragraphs), each starting with a capital letter, no run-together summary
    sentences = ok.split("\n\n")
    assert sentences[0] == "The Edge TPU is expected to run 107 of the model's 110 operations (97%)."
    assert sentences[1].startswith("Before the last step, 100% of the operations run on the Edge TPU.")
    assert "which picks the final boxes, always runs on the CPU: that is expected" in sentences[1]
    assert all(s[0].isupper() for s in sentences)
    assert "predicted on Edge TPU" not in ok and "as expected) predicted" not in texts(at)
    said = texts(at)
    assert "**Not compiled for the Edge TPU.**" in said
    assert "`edgetpu_compiler`) is not installed on this computer" in said
    assert "apt-get install edgetpu-compiler" in said
    code = "\n".join(c.value for c in at.code)
    assert f"studio compile {folder}" in code
    assert compiler.DOCKERFILE in code  # the container recipe, as coral_runtime.compiler gives it
    assert "docker build -t studio-edgetpu-compiler ." in code
    assert any(e.label.startswith("Or use the compiler container") for e in at.expander)


def test_a_compiled_model_says_so(env, store):
    store.create_project("raccoons", Task.DETECTION)
    write_model(store, "raccoons", "20260101-000000-a4a4a4", detection_manifest(
        0.7, 0.69, preflight=DET_PREFLIGHT,
        compiler={"ok": True, "version": "16.0.384591198", "total_ops": 110, "ops_on_tpu": 107}))
    at = page("raccoons")
    assert not at.exception, at.exception
    said = texts(at)
    assert "Compiled for the Edge TPU: 107 of 110 operations on the Edge TPU." in said
    assert "Not compiled" not in said and "studio compile" not in "\n".join(c.value for c in at.code)
