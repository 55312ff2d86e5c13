"""Preview overhead: the full predict call against a bare ``interpreter.invoke()`` on the same model
(issue #6: goal ratio <= 1.1), for the two ways a picture reaches the preview.

Input: one 640x480 picture (a raccoon photo resized to 640x480 when ../shared/datasets is there,
else noise; the timings do not depend on the content), as

- a **photo**: a decoded RGB PIL image (upload / "Take a photo" after the JPEG decode, the robot
  server): ``Predictor.predict(image)`` — the trainers' fair antialiased bilinear resize (Pillow;
  letterbox for the detector), input quantisation, the copy into the interpreter, ``invoke()``,
  reading the outputs, decoding (top-5 classes / detections with boxes mapped back to frame pixels;
  the detector is called with threshold 0 so all its 20 detections are decoded — the worst case)
  and building the ``Prediction``;
- a **live** webcam frame: a decoded ``yuv420p`` video frame, as streamlit-webrtc hands it to the
  page (8 distinct frame objects, cycled): ``Predictor.predict_frame(frame)`` — colour conversion
  and resize in one swscale pass (``coral_runtime.frames``), then the same steps.
  ``live_before_*`` is what the page did until then: ``predict(frame.to_image())``.

Per model, ``runs`` rounds, each timing every path and then ``invoke()`` alone on the same
interpreter with the photo's input in place (interleaved, so both sides of a ratio see the same load
on this shared 2-core machine), plus the stages ``Predictor.preprocess(photo)`` and the decoding.

``ratio`` = p50(path) / p50(invoke); ``pair_ratio_p50`` is the median of the per-round ratios;
``meets_goal`` = ratio <= 1.1 per model and path (``photo_meets_goal`` / ``live_meets_goal`` for
both models). ``live_input_mean_abs_diff``: the live model input vs the photo path's on the same
picture (grey levels). ``loadavg_1m_*`` say how busy the shared machine was. ``fast_*`` repeat the
photo path with ``Predictor(reducing_gap=adapters.FAST_REDUCING_GAP)`` (box pre-reduction: faster,
pixels differ a little from the trainers' resize: ``fast_resize_mean_abs_diff``).

Not included: decoding JPEG bytes or the video stream into the frame, drawing boxes, Streamlit,
loading the model, and any Edge TPU: everything runs on the CPU here (1 XNNPACK thread, the
Predictor's default). On a Coral, invoke() is faster and the same preprocessing weighs more.

Models (int8, uint8 I/O, untrained: latency only; ``bench._common``, shared with ``bench_builder``):
``cls224`` the studio's MobileNetV2 classifier alpha 1.0 at 224 px (Coral's classic classifier), 3
classes; ``det320`` the studio's SSDLite MobileNetV2 alpha 1.0 at 320 px from
``core.training.detection`` with the fused TFLite_Detection_PostProcess op, letterbox. ``quick``:
alpha 0.35, 96 px classifier and 160 px detector.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

GOAL = 1.1
FRAME = (640, 480)
ROOT = Path(__file__).resolve().parents[1]
RACCOON = ROOT.parent / "shared" / "datasets" / "raccoon" / "images"


def _p50(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 50))


def _p95(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 95))


def frame() -> tuple[Image.Image, str]:
    """The decoded 640x480 RGB frame every model is fed, and where it comes from."""
    photos = sorted(RACCOON.glob("*.jpg")) if RACCOON.is_dir() else []
    if photos:
        with Image.open(photos[0]) as im:
            return im.convert("RGB").resize(FRAME, Image.Resampling.BILINEAR), photos[0].name
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (FRAME[1], FRAME[0], 3), dtype=np.uint8)), "noise"


def video_frames(image: Image.Image, k: int = 8) -> list:
    """``image`` as live camera frames reach the preview: decoded video, ``yuv420p``; ``k`` distinct
    frame objects, cycled, as a stream hands over a new one each time."""
    import av

    return [av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(format="yuv420p")
            for _ in range(k)]


def measure(predictor, image: Image.Image, n: int, threshold: float | None = None, warmup: int = 10,
            frames: list | None = None) -> dict:
    """Interleaved rounds of predict / the live paths / bare invoke / stages on one predictor (see
    the docstring). ``frames``: the same picture as video frames (None: no live figures)."""
    import itertools

    from coral_runtime import adapters

    paths = {"predict": lambda: predictor.predict(image, threshold=threshold)}
    if frames:
        live_frames, old_frames = itertools.cycle(frames), itertools.cycle(frames)
        paths["live"] = lambda: predictor.predict_frame(next(live_frames), threshold=threshold)
        paths["live_before"] = lambda: predictor.predict(next(old_frames).to_image(), threshold=threshold)
    it = predictor.interpreter
    for _ in range(warmup):
        for call in paths.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in paths}
    bare, pre, dec = [], [], []
    names = it.output_names()
    for _ in range(n):
        for name, call in paths.items():
            t0 = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - t0) * 1000.0)
        predictor.predict(image, threshold=threshold)  # the photo's input, for the bare invoke
        with it.lock:  # the input predict() set is still in place
            t0 = time.perf_counter()
            it.interpreter.invoke()
            bare.append((time.perf_counter() - t0) * 1000.0)
            outputs = {names[int(d["index"])]: it.interpreter.get_tensor(d["index"]) for d in it.outputs}
        t0 = time.perf_counter()
        _, tr = predictor.preprocess(image)
        pre.append((time.perf_counter() - t0) * 1000.0)
        t0 = time.perf_counter()
        if predictor.task == "classification":
            adapters.classify(outputs[predictor._out_name], predictor._out_detail, predictor.labels,  # noqa: SLF001
                              top_k=5)
        else:
            adapters.detect(outputs, predictor.roles, tr, predictor.labels,
                            threshold=0.0 if threshold is None else threshold,
                            max_detections=predictor.max_detections)
        dec.append((time.perf_counter() - t0) * 1000.0)
    p_bare = _p50(bare)
    out: dict = {"invoke_p50_ms": p_bare, "invoke_p95_ms": _p95(bare)}
    for name, values in times.items():
        prefix = "" if name == "predict" else f"{name}_"
        p = _p50(values)
        out.update({
            f"{prefix}predict_p50_ms": p, f"{prefix}predict_p95_ms": _p95(values),
            f"{prefix}overhead_p50_ms": p - p_bare, f"{prefix}ratio": p / p_bare,
            f"{prefix}pair_ratio_p50": _p50([f / b for f, b in zip(values, bare)]),
        })
        if name != "live_before":
            out[f"{prefix}meets_goal"] = bool(p / p_bare <= GOAL)
    out.update({"preprocess_p50_ms": _p50(pre), "decode_p50_ms": _p50(dec),
                "device": predictor.device, "runs": n})
    if frames:
        from coral_runtime.frames import scale_frame_into

        fair, _ = adapters.resize_image(image, predictor.input_size, predictor.resize)
        live = np.empty_like(fair)
        scale_frame_into(frames[0], live, predictor.resize)
        out["live_input_mean_abs_diff"] = float(np.abs(fair.astype(np.int16) - live).mean())
    return out


def _fast_variant(folder: Path, image: Image.Image, n: int, threshold: float | None) -> dict:
    """The same measurement with the opt-in fast resize (skipped on code that lacks it)."""
    from coral_runtime import adapters
    from coral_runtime.predictor import Predictor

    gap = getattr(adapters, "FAST_REDUCING_GAP", None)
    if gap is None:
        return {}
    p = Predictor(folder, device="cpu", reducing_gap=gap)
    r = measure(p, image, n, threshold)
    fair, _ = adapters.resize_image(image, p.input_size, p.resize)
    fast, _ = adapters.resize_image(image, p.input_size, p.resize, reducing_gap=gap)
    out = {f"fast_{k}": r[k] for k in ("predict_p50_ms", "invoke_p50_ms", "ratio", "meets_goal")}
    out["fast_resize_mean_abs_diff"] = float(np.abs(fair.astype(np.int16) - fast).mean())
    return out


def run(out_dir: Path, quick: bool = False) -> dict:
    """Returns a flat dict of figures (see the module docstring)."""
    from bench._common import shared_models_dir, untrained_classifier, untrained_detector
    from coral_runtime.predictor import Predictor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 30 if quick else 200
    image, source = frame()
    res: dict = {"frame": f"{image.width}x{image.height} RGB ({source})", "goal_ratio": GOAL}
    alpha = 0.35 if quick else 1.0
    cls_size, det_size = (96, 160) if quick else (224, 320)
    models = shared_models_dir(out_dir)
    t0 = time.perf_counter()
    cls_dir = untrained_classifier(models, cls_size, alpha)
    det_dir = untrained_detector(models, det_size, alpha)
    res["models_seconds"] = round(time.perf_counter() - t0, 1)  # 0 when another benchmark built them
    res["loadavg_1m_before"] = round(os.getloadavg()[0], 2)  # shared machine: how busy it was
    live = video_frames(image)
    for tag, folder, thr in ((f"cls{cls_size}", cls_dir, None), (f"det{det_size}", det_dir, 0.0)):
        r = measure(Predictor(folder, device="cpu"), image, n, thr, frames=live)
        r.update(_fast_variant(folder, image, n, thr))
        res.update({f"{tag}_{k}": v for k, v in r.items()})
    res["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    res["live_meets_goal"] = all(v for k, v in res.items() if k.endswith("_live_meets_goal"))
    res["photo_meets_goal"] = all(v for k, v in res.items()
                                  if k.endswith("_meets_goal") and "live" not in k and "fast" not in k)
    return res


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path("bench-output/bench_preview"), quick=True), indent=2))
