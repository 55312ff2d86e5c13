"""kill -9 of the studio during a robot-image build: after the restart the build says "interrupted",
its half-rendered context is gone, the job is not left running, and the next build works.

The engine address is a loopback socket that accepts and never answers, so the build job is
reliably caught between rendering its context and hearing from the engine (no Docker needed).
"""

from __future__ import annotations

import socket
from pathlib import Path

from core.jobs import JobState, JobTable, LocalRunner
from core.data.store_recovery import store_problems
from core.data.store import Store
from tests.faults.helpers import any_file_under, kill_when, start_cli


def test_kill9_during_a_robot_image_build(tmp_path, tiny_artefact):
    import builder.jobs as bjobs

    data = tmp_path / "data"
    Store(data)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        proc = start_cli(data, "build-image", "--model", str(tiny_artefact), "--profile", "coral", "--tag",
                         "studio-test/killed:1", "--no-smoke-test", "--docker-url", f"tcp://127.0.0.1:{port}")
        assert kill_when(proc, any_file_under(data / "builds", bjobs.BUILD_RECORD), timeout=300), \
            "the build ended before it had rendered its context"
    finally:
        silent.close()
    (build,) = [d for d in (data / "builds").iterdir() if d.is_dir()]
    assert (build / "context").is_dir()  # killed with the context rendered, the image not built
    store = Store(data)
    LocalRunner(store).start().stop()  # the restart
    rec = bjobs.load_build(data, build.name)
    assert rec["status"] == "interrupted" and "build the image again" in rec["message"]
    assert not (build / "context").exists()
    assert [j.state for j in JobTable(store).list()] == [JobState.INTERRUPTED]
    assert store_problems(store) == []
    # the next try (no engine this time: the context is made and kept for download)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    proc = start_cli(data, "build-image", "--model", str(tiny_artefact), "--profile", "coral", "--tag",
                     "studio-test/killed:1", "--no-smoke-test", "--docker-url", f"tcp://127.0.0.1:{closed}")
    proc.wait(300)
    latest = bjobs.list_builds(data)[0]
    assert latest["status"] == "no-engine" and Path(latest["context_dir"]).is_dir()
