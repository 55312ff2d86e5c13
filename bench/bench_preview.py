"""Preview latency: the full ``Predictor.predict`` (resize, quantise, invoke, decode) against a bare
``interpreter.invoke()`` on the same model, same process, same run (this machine is shared).

Models are built here (TensorFlow, int8): a MobileNetV2 classifier (alpha 0.35 at 96 px with
``quick``, alpha 1.0 at 224 px — Coral's classic size — otherwise) and a tiny SSD-style detector with
the TFLite_Detection_PostProcess op. Input photos are 640x480. Runs on the CPU here (no Edge TPU).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _measure(predictor, image: Image.Image, n: int, warmup: int = 5) -> dict:
    it = predictor.interpreter
    for _ in range(warmup):
        predictor.predict(image)
    full, inv_in_full = [], []
    for _ in range(n):
        p = predictor.predict(image)
        full.append(p.latency_ms)
        inv_in_full.append(p.invoke_ms)
    tensor, _ = predictor.preprocess(image)
    bare = []
    with it.lock:
        it.set_input(tensor)
        for _ in range(warmup):
            it.interpreter.invoke()
        for _ in range(n):
            t0 = time.perf_counter()
            it.interpreter.invoke()
            bare.append((time.perf_counter() - t0) * 1000.0)
    p50_full, p50_bare = _pct(full, 50), _pct(bare, 50)
    return {
        "predict_p50_ms": p50_full, "predict_p95_ms": _pct(full, 95),
        "invoke_p50_ms": p50_bare, "invoke_p95_ms": _pct(bare, 95),
        "overhead_p50_ms": p50_full - p50_bare,
        "overhead_share": (p50_full - p50_bare) / p50_full if p50_full else None,
        "invoke_inside_predict_p50_ms": statistics.median(inv_in_full),
        "device": predictor.device, "runs": n,
    }


def run(out_dir: Path, quick: bool = False) -> dict:
    """Returns a flat dict of figures (see the module docstring)."""
    from coral_runtime.predictor import Predictor
    from tests.coral_runtime import models as M

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench_preview_", dir=out_dir))
    n = 30 if quick else 200
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    res: dict = {}
    try:
        size = 96 if quick else 224
        t0 = time.perf_counter()
        if quick:
            cls = M.mobilenet_v2_classifier(num_classes=5, size=size)
        else:
            cls = _mobilenet(size, alpha=1.0)
        res["classifier_build_s"] = round(time.perf_counter() - t0, 1)
        M.write_artefact(work / "cls", cls, task="classification", labels=[f"c{i}" for i in range(5)],
                         input_size=size)
        for k, v in _measure(Predictor(work / "cls", device="cpu"), photo, n).items():
            res[f"cls{size}_{k}"] = v
        det = M.tiny_detector(work, num_classes=2, size=64)
        M.write_artefact(work / "det", det, task="detection", labels=["a", "b"], input_size=64,
                         resize="letterbox")
        for k, v in _measure(Predictor(work / "det", device="cpu"), photo, n).items():
            res[f"det64_{k}"] = v
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _mobilenet(size: int, alpha: float) -> bytes:
    import keras

    from tests.coral_runtime import models as M

    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                       weights=None)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5, activation="softmax")(x)
    return M.convert_int8(keras.Model(inp, out), (size, size, 3))


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path("bench-output/bench_preview"), quick=True), indent=2))
