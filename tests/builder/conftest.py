"""Fixtures of the builder tests: a tiny model artefact, a real dockerd, the debootstrap base image,
a loopback docker-registry with htpasswd, the offline wheelhouse and the offline robot image.

Everything the fixtures start they stop by PID at the end of the session; an engine that was
already running is used and left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
LABELS = ["raccoon", "not_raccoon", "unsure"]
INPUT = 48
SERVER = ROOT / "builder" / "templates" / "server.py"


@contextlib.contextmanager
def model_server(model_dir: Path, log: Path, pythonpath: bool = True, **env_extra: str) -> Iterator[dict]:
    """Run the robot model server (``builder/templates/server.py``) from the source tree on a free
    loopback port until it answers ``/healthz``; yields ``{"base", "port", "log", "proc"}`` and
    stops it by its PID. ``pythonpath=False`` runs it without PYTHONPATH (as in the image)."""
    from builder.docker import free_port, http_json

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(ROOT)
    env.update({"MODEL_DIR": str(model_dir), "PORT": str(port), "BIND_ADDRESS": "127.0.0.1", **env_extra})
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, str(SERVER)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                cwd=log.parent)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "server exited:\n" + log.read_text()
                assert time.monotonic() < deadline, "server did not answer:\n" + log.read_text()
                try:
                    if http_json("GET", base + "/healthz", timeout=1)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            yield {"base": base, "port": port, "log": log, "proc": proc}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def make_tiny_classifier(folder: Path, labels: list[str] = LABELS, size: int = INPUT) -> Path:
    """A small Keras classifier (Rescaling + conv + pool + dense), converted to a full-int8
    TFLite model with uint8 input/output, written as an artefact folder per INTERFACES.md."""
    import keras
    import tensorflow as tf

    from core.data import artefacts

    keras.utils.set_random_seed(7)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(len(labels), activation="softmax")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(3)
    # a few quick steps so the classes are not a near-tie: class = the dominant colour channel
    xs = rng.uniform(0, 255, size=(96, size, size, 3)).astype("float32")
    ys = np.argmax(xs.mean(axis=(1, 2)), axis=1) % len(labels)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=2, batch_size=32, verbose=0)

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(16):
            yield [xs[i:i + 1]]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    tflite = conv.convert()

    folder.mkdir(parents=True, exist_ok=True)
    (folder / artefacts.INT8_MODEL).write_bytes(tflite)
    model.save(folder / artefacts.FLOAT_MODEL)
    artefacts.write_labels(folder, labels)
    interp = tf.lite.Interpreter(model_content=tflite)
    qi = interp.get_input_details()[0]["quantization"]
    qo = interp.get_output_details()[0]["quantization"]
    manifest = {
        "schema_version": 1, "id": "20261125-000000-tiny01", "task": "classification", "project": "Raccoons",
        "labels": labels, "input_size": [size, size], "hparams": {"epochs": 2}, "dataset_hash": "d" * 16,
        "created": time.time(), "job_id": "test", "resize": "stretch",
        "files": {"float": artefacts.FLOAT_MODEL, "int8": artefacts.INT8_MODEL, "labels": artefacts.LABELS},
        "metrics": {"float": {"accuracy": 0.9}, "int8": {"accuracy": 0.875}},
        "quantization": {"input": {"scale": qi[0], "zero_point": qi[1], "dtype": "uint8"},
                         "output": {"scale": qo[0], "zero_point": qo[1], "dtype": "uint8"}},
    }
    (folder / artefacts.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_artefact(tmp_path_factory) -> Path:
    """A published-looking classification artefact folder (built once per session)."""
    return make_tiny_classifier(tmp_path_factory.mktemp("artefact") / "tiny")


# -- docker (the engine, base image and wheelhouse fixtures are shared with tests/e2e) ------------
from tests.docker_fixtures import base_image, docker_client, remove_test_images, wheelhouse  # noqa: E402,F401
from tests.docker_fixtures import run as _run  # noqa: E402


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """docker-registry on 127.0.0.1:<free port> with one htpasswd user; stopped by PID at the end."""
    from builder.docker import free_port

    if not shutil.which("docker-registry") or not shutil.which("htpasswd"):
        pytest.skip("docker-registry / htpasswd are not installed (apt-get install docker-registry apache2-utils)")
    d = tmp_path_factory.mktemp("registry")
    port = free_port()
    user, password = "robot", "pw-" + secrets.token_hex(12)
    env = {"STUDIO_REGISTRY_USER": user, "STUDIO_REGISTRY_PASSWORD": password}
    proc = _run(["bash", str(SCRIPTS / "start_registry.sh"), str(port), str(d)], env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    yield {"address": f"127.0.0.1:{port}", "username": user, "password": password, "dir": d}
    _run(["bash", str(SCRIPTS / "start_registry.sh"), "--stop", str(d)], timeout=30)


@pytest.fixture(scope="session")
def offline_build(docker_client, base_image, wheelhouse, tiny_artefact, tmp_path_factory):
    """The offline-profile image of the tiny artefact, built once (network none); removed at the end."""
    from builder.context import BuildSpec, make_context
    from builder.docker import build_image

    tag = f"studio-test/tiny-offline:{secrets.token_hex(3)}"
    lines: list[str] = []
    spec = BuildSpec(model_dir=tiny_artefact, tag=tag, profile="offline", base_image=base_image)
    ctx = make_context(spec, tmp_path_factory.mktemp("ctx") / "context", log=lines.append, wheelhouse=wheelhouse)
    t0 = time.monotonic()
    result = build_image(ctx, on_log=lines.append, client=docker_client)
    yield {"context": ctx, "result": result, "log": lines, "seconds": time.monotonic() - t0}
    for ref in (tag,):
        try:
            docker_client.images.remove(ref, force=True)
        except Exception:  # noqa: BLE001
            pass
