"""The Train page's device choice: the selector, the job's params, where the job trains, the Ray node type."""

from __future__ import annotations

from core import jobs
from core.jobs import kinds
from core.data import settings
from core.jobs import JobContext, JobTable
from core.training import device
from tests.pages.test_train_page import cleanup, page, ready, start_button, texts, wait_for  # noqa: F401


def train_reporting_its_device(ctx: JobContext, params: dict) -> str:
    """Records the device the real train job would record for these params, then one epoch."""
    choice = device.choose(params.get("device"), [], mixed_precision=bool(params.get("mixed_precision")),
                           cpu_name="Test CPU 9000")
    device.record(ctx, choice)
    ctx.progress(epoch=1, total_epochs=1, metrics={"loss": 1.0}, message="epoch 1/1 done")
    return "fake-model"


def test_device_selector_goes_into_the_job_and_the_page_says_where_it_trained(ready, store, monkeypatch,
                                                                              cleanup):  # noqa: F811
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))
    jobs.register_job_kind("train", train_reporting_its_device)
    at = page("shapes")
    assert not at.exception, at.exception
    sel = at.selectbox(key="studio.train.device")
    assert sel.label == "Device" and sel.options == list(device_options()) and sel.value == "auto"
    assert "GPU" in texts(at) or "NVIDIA" in texts(at)  # the machine hint
    sel.set_value("cpu")
    at.checkbox(key="studio.train.mixed_precision").check()
    start_button(at).click().run()
    assert not at.exception, at.exception
    [job] = JobTable(store).list(project="shapes")
    assert job.params["device"] == "cpu" and job.params["mixed_precision"] is True and "ray_node" not in job.params
    assert wait_for(lambda: JobTable(store).get(job.id).state.finished)
    at.run()
    assert "Trained on Test CPU 9000 (CPU)" in texts(at)
    at = page("shapes")  # a new session: the history table, and the last run's choice comes back
    assert "Test CPU 9000 (CPU)" in at.dataframe[0].value["device"].iloc[0]
    assert at.selectbox(key="studio.train.device").value == "cpu"


def device_options() -> list[str]:
    from pages._shared.devices import DEVICES

    return [DEVICES[k] for k in DEVICES]


def test_ray_option_offers_cpu_and_gpu_nodes(ready, store):  # noqa: F811
    settings.set_setting(store, settings.RAY_ADDRESS, "http://127.0.0.1:9")
    at = page("shapes")
    assert not at.exception, at.exception
    node = at.radio(key="studio.train.ray_node")
    assert node.label == "Ray node" and node.options == ["CPU node", "GPU node"] and node.value == "cpu"


def test_device_params_for_the_ray_cluster():
    from pages._shared.devices import job_params

    assert job_params("auto", False, on_ray=True, ray_node="gpu") == {"mixed_precision": False, "ray_node": "gpu"}
    assert job_params("cpu", True, on_ray=False, ray_node="gpu") == {"device": "cpu", "mixed_precision": True}
