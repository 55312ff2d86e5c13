"""The headless CLI on the real datasets: the acceptance figures of the foundation issue."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, data_dir: Path) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "cli", "--data-dir", str(data_dir), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    last = proc.stdout.strip().splitlines()[-1]
    return proc.returncode, json.loads(last), proc.stderr


def test_import_raccoon_voc_then_stats_and_export(data_dir, raccoon_dir, tmp_path):
    rc, out, _ = cli("dataset", "import", "--project", "raccoon", "--task", "detection",
                     "--format", "voc", str(raccoon_dir), data_dir=data_dir)
    assert rc == 0
    assert (out["images_added"], out["boxes_added"], out["classes"]) == (200, 217, ["raccoon"])
    rc, stats, _ = cli("dataset", "stats", "--project", "raccoon", data_dir=data_dir)
    assert stats["images"] == 200 and stats["per_class"]["raccoon"]["annotations"] == 217
    assert sum(stats["per_split"].values()) == 200 and stats["per_split"]["val"] > 0
    zip_out = tmp_path / "raccoon-yolo.zip"
    rc, exp, _ = cli("dataset", "export", "--project", "raccoon", "--format", "yolo", "--out", str(zip_out),
                     data_dir=data_dir)
    assert rc == 0 and zip_out.is_file()
    rc, again, _ = cli("dataset", "import", "--project", "raccoon-again", "--task", "detection",
                       str(zip_out), data_dir=data_dir)
    assert (again["format"], again["images_added"], again["boxes_added"]) == ("yolo", 200, 217)


def test_import_sign_language_digits_folders(data_dir, digits_dir):
    rc, out, _ = cli("dataset", "import", "--project", "digits", "--task", "classification",
                     "--format", "folders", str(digits_dir), data_dir=data_dir)
    assert rc == 0
    assert out["images_added"] == 2062 and sorted(out["classes"]) == [str(i) for i in range(10)]
    assert out["labels_added"] == 2062


def test_unknown_project_is_a_clear_error(data_dir):
    rc, out, err = cli("dataset", "stats", "--project", "nope", data_dir=data_dir)
    assert rc == 2 and out["ok"] is False and "No project" in out["error"]
    assert "Traceback" not in err


def test_import_lists_the_skipped_files_in_json_and_a_table(data_dir, raccoon_dir, tmp_path):
    src = tmp_path / "mixed"
    (src / "images").mkdir(parents=True)
    (src / "annotations").mkdir()
    for n in (1, 2):
        (src / "images" / f"raccoon-{n}.jpg").write_bytes((raccoon_dir / "images" / f"raccoon-{n}.jpg").read_bytes())
    (src / "annotations" / "raccoon-1.xml").write_bytes((raccoon_dir / "annotations" / "raccoon-1.xml").read_bytes())
    good2 = (raccoon_dir / "annotations" / "raccoon-2.xml").read_bytes()
    (src / "annotations" / "raccoon-2.xml").write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE annotation SYSTEM "voc.dtd">\n' + good2.split(b"?>", 1)[-1])
    rc, out, err = cli("dataset", "import", "--project", "mixed", "--task", "detection", str(src),
                       data_dir=data_dir)
    assert rc == 0 and out["images_added"] == 2 and out["boxes_added"] >= 1
    assert out["issues"] == [{"file": "annotations/raccoon-2.xml", "action": "skipped",
                              "problem": out["issues"][0]["problem"]}]
    assert "DTD" in out["issues"][0]["problem"]
    table = err[err.index("1 issue(s):"):]
    assert "file" in table and "problem" in table and "action" in table
    assert "annotations/raccoon-2.xml" in table and "| skipped" in table
