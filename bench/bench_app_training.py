"""Training in the app vs the same job from the CLI: does the open Train page slow training down?

The app trains in a thread of the Streamlit server process, next to the script reruns of every open
page (the Train page's live view reruns every 2 s). Twice this cost far more than it should: Keras'
``clear_session()`` from Streamlit's rerun cleanup (45 s epochs instead of 1 s, fixed by
``core/training/session_guard.py``) and Streamlit's forced ``gc.collect(2)`` after every rerun
(~1.5x, fixed by ``runner.postScriptGC = false`` in ``.streamlit/config.toml``). This benchmark keeps
both honest.

Same data, same hyper-parameters (sign-language digits, MobileNetV2 alpha 0.35 at 96 px from
scratch, ``max_images`` photos, batch 16, the Train page's "Quick run" choices), three ways, in turn:

- ``cli``: ``python -m cli train`` (the job in the foreground of its own process);
- ``app``: the real studio (``streamlit run app.py`` on 127.0.0.1, the project's config), the job
  started from the Train page in headless Debian chromium, the page left open until it finishes;
- ``app_gc``: the same with Streamlit's default ``runner.postScriptGC = true`` (before the fix).

Figure: the median epoch time after the first (graph-building) epoch, from the artefact's manifest;
``app_ratio`` = app / cli (goal <= 1.1), ``app_gc_ratio`` = app_gc / cli.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT.parent / "shared" / "datasets" / "sign-language-digits" / "Dataset"
GOAL = 1.1


def _steady(folder: Path) -> tuple[float, list[float]]:
    es = json.loads((folder / "manifest.json").read_text())["training"]["epoch_seconds"]
    return statistics.median(es[1:]), es


def _newest_model(data: Path, before: set[str]) -> Path:
    new = sorted(p for p in (data / "models").iterdir() if p.name not in before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new model, found {[p.name for p in new]}")
    return new[0]


def _models(data: Path) -> set[str]:
    d = data / "models"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def train_cli(data: Path, epochs: int, max_images: int) -> Path:
    """``python -m cli train`` with the Train page's quick-run settings; the artefact folder."""
    before = _models(data)
    cmd = [sys.executable, "-m", "cli", "--data-dir", str(data), "train", "--project", "digits",
           "--epochs", str(epochs), "--image-size", "96", "--alpha", "0.35", "--weights", "none",
           "--max-images", str(max_images), "--batch-size", "16", "--no-progress"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"CLI training failed: {r.stderr[-2000:]}")
    return _newest_model(data, before)


def train_in_app(data: Path, epochs: int, max_images: int, log_path: Path, *streamlit_args: str) -> Path:
    """Start the studio, train from the Train page in chromium, keep the page open; the artefact."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, _stop, _wait_healthy, free_port
    from tests.e2e.test_journey import choose, nav, set_number, wait_idle

    before = _models(data)
    port = free_port()
    env = {**os.environ, "STUDIO_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    env.pop("STUDIO_PASSWORD", None)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", *streamlit_args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                wait_idle(page)
                nav(page, "Train")
                page.get_by_text("Quick run", exact=False).first.click()
                choose(page, "Image size (pixels)", "96")
                set_number(page, "Epochs", epochs)
                set_number(page, "Use at most this many images (0 = all)", max_images)
                choose(page, "Model width (alpha)", "0.35")
                page.get_by_text("From scratch", exact=False).click()
                wait_idle(page)
                page.get_by_role("button", name="Start training").click()
                page.get_by_text("Training finished").wait_for(timeout=3_600_000)
            finally:
                browser.close()
    finally:
        _stop(proc)
    folder = _newest_model(data, before)
    hp = json.loads((folder / "manifest.json").read_text())["hparams"]
    if (hp["image_size"], hp["epochs"], hp["max_images"], hp["batch_size"]) != (96, epochs, max_images, 16):
        raise RuntimeError(f"the Train page's settings did not reach the job: {hp}")
    return folder


def run(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Returns the figures (see the module docstring)."""
    from core.data.importer import import_paths
    from core.data.store import Store

    epochs, max_images = (4, 100) if quick else (8, 400)
    work = Path(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    store = Store(data)
    project = store.create_project("digits", "classification")
    import_paths(store, project, [DIGITS], fmt="folders")
    res: dict[str, Any] = {"epochs": epochs, "max_images": max_images, "goal_ratio": GOAL,
                           "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    runs = {
        "cli": lambda: train_cli(data, epochs, max_images),
        "app": lambda: train_in_app(data, epochs, max_images, work / "app.log"),
        "app_gc": lambda: train_in_app(data, epochs, max_images, work / "app_gc.log",
                                       "--runner.postScriptGC", "true"),
    }
    for name, call in runs.items():
        t = time.perf_counter()
        steady, all_epochs = _steady(call())
        res[f"{name}_wall_s"] = round(time.perf_counter() - t, 1)
        res[f"{name}_steady_epoch_s"] = round(steady, 3)
        res[f"{name}_epoch_s"] = [round(e, 2) for e in all_epochs]
    res["app_ratio"] = res["app_steady_epoch_s"] / res["cli_steady_epoch_s"]
    res["app_gc_ratio"] = res["app_gc_steady_epoch_s"] / res["cli_steady_epoch_s"]
    res["meets_goal"] = bool(res["app_ratio"] <= GOAL)
    res["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return res


if __name__ == "__main__":
    print(json.dumps(run(Path("bench-output/bench_app_training"), quick="--quick" in sys.argv), indent=2))
