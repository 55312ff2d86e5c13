"""The Train page's cluster settings: saving an address, its reachability, the per-job runner choice."""

from __future__ import annotations

from core.data import settings
from tests.pages.test_train_page import page, ready, texts  # noqa: F401 - fixtures


def test_unreachable_cluster_is_explained_and_offered_per_job(ready, store):
    at = page("shapes")
    assert not [r for r in at.radio if r.label == "Run on"]  # no cluster configured: no choice
    at.text_input(key="studio.train.cluster.address").set_value("http://127.0.0.1:9")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert settings.get_setting(store, settings.RAY_ADDRESS) == "http://127.0.0.1:9"
    assert "is unreachable" in texts(at) and "wait in the queue" in texts(at)
    run_on = next(r for r in at.radio if r.label == "Run on")
    assert run_on.options == ["This machine", "Ray cluster (http://127.0.0.1:9)"]


def test_token_is_never_stored(ready, store, data_dir):
    at = page("shapes")
    at.text_input(key="studio.train.cluster.address").set_value("http://127.0.0.1:9")
    at.text_input(key="studio.train.cluster.token").set_value("s3cret-token-value")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    for f in data_dir.rglob("*"):
        if f.is_file():
            assert b"s3cret-token-value" not in f.read_bytes(), f
