"""Run jobs on a Ray cluster through the Ray Jobs API, behind the same Runner interface.

A submitted job is recorded in the same SQLite tables as local jobs (runner
``"ray"``), so pages, the CLI and the Models page cannot tell the runners apart.
For each job a monitor thread in this process:

1. packs the job's inputs into a working directory — the ``core`` package, a
   snapshot of the project (``core.data.snapshot``, with its dataset hash) and
   ``job.json`` with the hyperparameters — and submits ``python -m core.jobs.remote``;
   while the cluster is unreachable the job **stays queued** with the reason in
   its message and submission is retried, until ``submit_timeout`` passes — then
   it fails with that reason (it is never lost silently);
2. follows the job's status and logs: ``@@studio-event`` lines become progress
   events (through the same ``JobContext.progress`` as local jobs), other lines
   become log lines;
3. on success unpacks the artefact carried in the logs, checks its sha256,
   publishes it into the store and runs the post-publish hooks (preflight) here;
4. on cancel asks Ray to stop the job and records ``cancelled``.

The ``ray`` package is imported lazily (only this module needs it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data import artefacts
from core.jobs import ray_node
from core.jobs import (ACTIVE_STATES, InvalidTransition, Job, JobContext, JobError, JobState, JobTable,
                       TableReads)
from core.jobs.remote import ARTEFACT, ARTEFACT_END, EVENT
from core.data.snapshot import snapshot_project
from core.data.store import Store

log = logging.getLogger(__name__)
CORE_DIR = Path(__file__).resolve().parents[1]  # core/ (this file is core/jobs/ray_runner.py)
SUPPORTED_KINDS = ("train",)


class ClusterUnreachable(JobError):
    """The Ray cluster did not answer."""


@dataclass(frozen=True)
class ClusterStatus:
    """What the Train page shows about a cluster."""

    address: str
    reachable: bool
    message: str
    resources: dict[str, float]
    nodes: int = 0

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))


def _client(address: str, token: str | None):
    from ray.job_submission import JobSubmissionClient  # noqa: PLC0415 - optional dependency

    headers = {"Authorization": f"Bearer {token}"} if token else None
    return JobSubmissionClient(address, headers=headers)


def cluster_status(address: str, token: str | None = None, timeout: float = 5.0) -> ClusterStatus:
    """Reachability and total resources of the cluster behind ``address`` (the dashboard URL)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(address.rstrip("/") + "/nodes?view=summary")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's cluster URL
            body = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        msg = "the cluster refused the token" if exc.code in (401, 403) else f"HTTP {exc.code}"
        return ClusterStatus(address, False, f"Ray cluster at {address}: {msg}", {})
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return ClusterStatus(address, False, f"Ray cluster at {address} is unreachable ({reason})", {})
    totals: dict[str, float] = {}
    summary = (body.get("data") or {}).get("summary") or []
    for node in summary:
        raylet = node.get("raylet") or {}
        if raylet.get("state", "ALIVE") != "ALIVE":
            continue
        for k, v in (raylet.get("resourcesTotal") or {}).items():
            if k in ("CPU", "GPU", "memory", "object_store_memory") or k.startswith("accelerator_type"):
                totals[k] = totals.get(k, 0.0) + float(v)
    nodes = sum(1 for n in summary if (n.get("raylet") or {}).get("state", "ALIVE") == "ALIVE")
    return ClusterStatus(address, True, f"Ray cluster at {address}: {nodes} node(s)", totals, nodes)


class RayRunner(TableReads):
    """Submit / get / list / cancel jobs that run on a Ray cluster."""

    name = "ray"

    def __init__(self, store: Store, address: str, token: str | None = None, poll_interval: float = 1.0,
                 submit_timeout: float = 600.0, retry_interval: float = 5.0,
                 runtime_env: dict[str, Any] | None = None, entrypoint_python: str = "python",
                 gpu_packages: list[str] | None = None):
        self.store = store
        self.table = JobTable(store)
        self.address = address.rstrip("/")
        self._token = token  # in memory only: never written to the store or logs
        self.poll_interval = poll_interval
        self.submit_timeout = submit_timeout
        self.retry_interval = retry_interval
        self.runtime_env = dict(runtime_env or {})
        self.entrypoint_python = entrypoint_python
        self.gpu_packages = gpu_packages  # what a GPU node installs (None: tensorflow[and-cuda], see ray_node)
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- the Runner interface -------------------------------------------------
    def submit(self, kind: str, params: dict, project: str | None = None) -> str:
        """Record the job (queued) and hand it to a monitor thread; returns its id at once."""
        if kind not in SUPPORTED_KINDS:
            raise JobError(f"Jobs of kind {kind!r} run only on this machine (the cluster runs training).")
        project = project or params.get("project")
        if not project:
            raise JobError("A training job needs a project.")
        self.store.get_project(project)  # fail now, clearly, for an unknown project
        try:
            params = ray_node.job_params(params)  # a CPU or GPU node, and the device it trains on
        except ValueError as exc:
            raise JobError(str(exc)) from None
        job_id = self.table.create(kind, params, project, self.name)
        self.table.update(job_id, message=f"Preparing the job for the Ray cluster at {self.address}")
        self._start_monitor(job_id)
        return job_id

    def cancel(self, job_id: str) -> None:
        """Stop the job: a queued one at once, a running one by asking Ray to stop it."""
        job = self.table.get(job_id)
        if job.state.finished:
            return
        self.table.request_cancel(job_id)
        with self._lock:
            ev = self._cancel.get(job_id)
        if ev is not None:
            ev.set()
        if job.state is JobState.QUEUED and ev is None:
            self._finish(job_id, JobState.CANCELLED, message="Cancelled before it started")

    def status(self) -> ClusterStatus:
        return cluster_status(self.address, self._token)

    def start(self) -> "RayRunner":
        """Re-attach to this data directory's Ray jobs that were followed by a process that stopped."""
        for job in self.table.list(states=ACTIVE_STATES, limit=500):
            if job.runner == self.name and job.id not in self._threads:
                from core.jobs import owner_alive  # noqa: PLC0415

                with self.table.connect() as conn:
                    r = conn.execute("SELECT * FROM jobs WHERE id=?", (job.id,)).fetchone()
                if not owner_alive(r["owner_pid"], r["owner_token"], r["owner_host"], r["owner_start"],
                                   r["heartbeat"]):
                    self.table.claim(job.id)
                    self.table.add_log(job.id, "re-attached to the Ray job after the studio restarted")
                    self._start_monitor(job.id)
        return self

    # -- monitoring -------------------------------------------------------------
    def _start_monitor(self, job_id: str) -> None:
        ev = threading.Event()
        with self._lock:
            self._cancel[job_id] = ev
            t = threading.Thread(target=self._monitor, args=(job_id, ev), name=f"ray-{job_id}", daemon=True)
            self._threads[job_id] = t
        t.start()

    def _finish(self, job_id: str, state: JobState, **fields: Any) -> Job:
        try:
            return self.table.transition(job_id, state, **fields)
        except InvalidTransition:
            return self.table.get(job_id)

    def _monitor(self, job_id: str, cancel: threading.Event) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"ray-{job_id}-"))
        try:
            self._run(job_id, cancel, work)
        except Exception as exc:  # noqa: BLE001 - a monitor failure ends the job, never the app
            log.exception("ray job %s", job_id)
            self.table.add_log(job_id, f"studio error while following the Ray job: {exc}")
            self._finish(job_id, JobState.FAILED, message=f"Failed: {exc}", error=str(exc))
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with self._lock:
                self._cancel.pop(job_id, None)
                self._threads.pop(job_id, None)

    def _submission_id(self, job_id: str) -> str | None:
        for ev in self.table.events(job_id):
            if ev.get("type") == "ray" and ev.get("submission_id"):
                return ev["submission_id"]
        return None

    def _prepare(self, job: Job, work: Path) -> Path:
        """The working directory shipped to the cluster: code + dataset snapshot + job.json."""
        job_dir = work / "job"
        shutil.copytree(CORE_DIR, job_dir / "core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        project = self.store.get_project(job.project)
        _, digest = snapshot_project(self.store, project, job_dir / "snapshot")
        spec = {"job_id": job.id, "kind": job.kind, "params": job.params, "dataset_hash": digest}
        (job_dir / "job.json").write_text(json.dumps(spec, indent=2, default=str))
        size = sum(p.stat().st_size for p in job_dir.rglob("*") if p.is_file())
        self.table.add_log(job.id, f"job package: {size / 1e6:.1f} MB (dataset {digest[:12]})")
        return job_dir

    def _submit(self, job: Job, job_dir: Path, cancel: threading.Event) -> str | None:
        """Submit, retrying while the cluster is unreachable; None when cancelled meanwhile."""
        deadline = time.monotonic() + self.submit_timeout
        node_kwargs, runtime_env = ray_node.submission(job.params, {**self.runtime_env, "working_dir": str(job_dir)},
                                                       self.gpu_packages)
        runtime_env.setdefault("env_vars", {})
        runtime_env["env_vars"] = {**runtime_env["env_vars"], "PYTHONUNBUFFERED": "1"}
        while True:
            try:
                client = _client(self.address, self._token)
                return client.submit_job(entrypoint=f"{self.entrypoint_python} -m core.jobs.remote .",
                                         runtime_env=runtime_env, submission_id=f"studio-{job.id}", **node_kwargs)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError from the SDK, …
                if "already exists" in str(exc):
                    return f"studio-{job.id}"
                reason = _short(exc)
                self.table.update(job.id, message=f"Waiting for the Ray cluster at {self.address}: {reason}. "
                                                  f"Retrying every {self.retry_interval:.0f} s — cancel to give up.")
                self.table.add_log(job.id, f"cluster unreachable: {reason}")
                if time.monotonic() >= deadline:
                    raise ClusterUnreachable(
                        f"the Ray cluster at {self.address} could not be reached for "
                        f"{self.submit_timeout:.0f} s ({reason})") from None
                if cancel.wait(self.retry_interval):
                    return None

    def _run(self, job_id: str, cancel: threading.Event, work: Path) -> None:
        job = self.table.get(job_id)
        sub_id = self._submission_id(job_id)
        if sub_id is None:
            job_dir = self._prepare(job, work)
            if cancel.is_set() or self.table.cancel_requested(job_id):
                self._finish(job_id, JobState.CANCELLED, message="Cancelled before it started")
                return
            try:
                sub_id = self._submit(job, job_dir, cancel)
            except ClusterUnreachable as exc:
                self._finish(job_id, JobState.FAILED, message=f"Failed: {exc}", error=str(exc))
                return
            if sub_id is None:
                self._finish(job_id, JobState.CANCELLED, message="Cancelled before it started")
                return
            self.table.add_event(job_id, {"type": "ray", "submission_id": sub_id, "address": self.address})
            self.table.add_log(job_id, f"submitted to the Ray cluster at {self.address} as {sub_id}")
        self._follow(job_id, sub_id, cancel)

    def _follow(self, job_id: str, sub_id: str, cancel: threading.Event) -> None:
        from ray.job_submission import JobStatus  # noqa: PLC0415

        client = _client(self.address, self._token)
        ctx = JobContext(self.table, job_id)
        offset = 0
        chunks: list[str] = []
        end: dict | None = None
        node: str | None = None
        stop_sent = False
        failures = 0
        while True:
            if (cancel.is_set() or self.table.cancel_requested(job_id)) and not stop_sent:
                self.table.add_log(job_id, "asking the Ray cluster to stop the job")
                try:
                    client.stop_job(sub_id)
                except Exception as exc:  # noqa: BLE001
                    self.table.add_log(job_id, f"stop request failed: {_short(exc)}")
                stop_sent = True
            try:
                status = client.get_job_status(sub_id)
                text = client.get_job_logs(sub_id)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the head may restart; keep following
                failures += 1
                self.table.update(job_id, message=f"Lost contact with the Ray cluster ({_short(exc)}); retrying")
                if failures * self.poll_interval > self.submit_timeout:
                    self._finish(job_id, JobState.FAILED, message="Failed: lost contact with the Ray cluster",
                                 error=_short(exc))
                    return
                time.sleep(self.poll_interval)
                continue
            if status == JobStatus.PENDING and stop_sent:
                # Ray queues the stop behind a job that waits for resources (e.g. a free GPU): it never
                # started, so it ends here now; Ray stops it the moment it would start
                self._finish(job_id, JobState.CANCELLED, message="Cancelled before it started on the cluster")
                return
            if status == JobStatus.RUNNING and self.table.get(job_id).state is JobState.QUEUED:
                try:
                    self.table.transition(job_id, JobState.RUNNING, message="Running on the Ray cluster")
                except InvalidTransition:
                    pass
                node = self._record_node(client, job_id, sub_id)
            elif status == JobStatus.PENDING and ray_node.node_of(self.table.get(job_id).params) == "gpu":
                self.table.update(job_id, message="Waiting for a Ray node with a free GPU (and for the GPU build "
                                                  "of TensorFlow to install there on first use)")
            new, offset = _complete_lines(text, offset)
            for line in new:
                if line.startswith(EVENT):
                    self._event(ctx, line[len(EVENT):])
                elif line.startswith(ARTEFACT):
                    chunks.append(line[len(ARTEFACT):].strip())
                elif line.startswith(ARTEFACT_END):
                    end = json.loads(line[len(ARTEFACT_END):])
                else:
                    self.table.add_log(job_id, line)
            if status.is_terminal():
                break
            time.sleep(self.poll_interval)
        info_msg = ""
        try:
            info_msg = client.get_job_info(sub_id).message or ""
        except Exception:  # noqa: BLE001
            pass
        if status == JobStatus.STOPPED or stop_sent:
            self._finish(job_id, JobState.CANCELLED, message="Cancelled (the Ray job was stopped)")
        elif status == JobStatus.SUCCEEDED and end is not None:
            node = node or self._record_node(client, job_id, sub_id)
            artefact_id = self._publish(job_id, chunks, end, node)
            self._finish(job_id, JobState.SUCCEEDED, message="Finished on the Ray cluster", progress=1.0,
                         artefact_id=artefact_id)
        elif status == JobStatus.SUCCEEDED:
            self._finish(job_id, JobState.FAILED, message="Failed: the cluster job ended without a model",
                         error="no artefact in the job's output")
        else:
            err = _last_error(self.table.logs(job_id, tail=50)) or info_msg or str(status)
            self._finish(job_id, JobState.FAILED, message=f"Failed on the Ray cluster: {err}", error=err)

    def _event(self, ctx: JobContext, payload: str) -> None:
        try:
            fields = json.loads(payload)
        except json.JSONDecodeError:
            return
        if fields.get("type") == "device":  # which device the job chose on its node (core.training.device)
            ctx.event(fields)
            return
        allowed = {"fraction", "epoch", "total_epochs", "step", "total_steps", "metrics", "message"}
        ctx.progress(**{k: v for k, v in fields.items() if k in allowed})

    def _record_node(self, client, job_id: str, sub_id: str) -> str | None:
        """Record which node runs the job (its driver's address, from Ray's job info); returns it."""
        try:
            info = client.get_job_info(sub_id)
        except Exception:  # noqa: BLE001 - the record is informative; the job goes on
            return None
        from urllib.parse import urlparse  # noqa: PLC0415

        # the supervisor writes the node's agent address when it starts the entrypoint (a plain process,
        # so there is no Ray driver_info unless the job itself connects to Ray)
        agent = getattr(info, "driver_agent_http_address", None)
        ip = (urlparse(agent).hostname if agent else None) or getattr(
            getattr(info, "driver_info", None), "node_ip_address", None)
        if not ip:
            return None
        self.table.add_event(job_id, {"type": "ray-node", "node_ip": ip,
                                      "node_id": getattr(info, "driver_node_id", None)})
        self.table.add_log(job_id, f"running on the Ray node at {ip}")
        return ip

    def _publish(self, job_id: str, chunks: list[str], end: dict, node: str | None = None) -> str:
        data = b"".join(base64.b64decode(c) for c in chunks)
        if len(data) != end["bytes"] or hashlib.sha256(data).hexdigest() != end["sha256"]:
            raise JobError("the model received from the cluster is incomplete (checksum mismatch)")
        artefact_id = end["id"]
        partial = artefacts.partial_dir(self.store.root, artefact_id)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise JobError(f"unsafe path in the model from the cluster: {name}")
            z.extractall(partial)
        folder = artefacts.publish(self.store.root, partial, artefact_id)
        if node:  # the manifest's device record says which cluster node trained the model
            dev = artefacts.load_manifest(folder).get("device")
            if isinstance(dev, dict):
                artefacts.update_manifest(folder, device={**dev, "node": node})
        self.table.add_log(job_id, f"model {artefact_id} received from the cluster ({len(data) / 1e6:.1f} MB)")
        artefacts.run_post_publish_hooks(folder, log=lambda line: self.table.add_log(job_id, line))
        return artefact_id


def _complete_lines(text: str, offset: int) -> tuple[list[str], int]:
    """Lines of ``text`` after ``offset`` that are complete (end with a newline); the new offset."""
    chunk = text[offset:]
    cut = chunk.rfind("\n")
    if cut < 0:
        return [], offset
    return chunk[:cut].split("\n"), offset + cut + 1


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    return msg[:300]


def _last_error(lines: list[str]) -> str | None:
    for line in reversed(lines):
        s = line.strip()
        if s and ("Error" in s or "error:" in s.lower()) and not s.startswith("File "):
            return s[:500]
    return None
