"""Start / stop a Ray head node for tests and benchmarks, loopback-only (see ../shared/design/RAY.md).

Must run inside a network namespace that has only ``lo`` (``unshare -n``): a
default Ray start talks to non-loopback addresses. ``start`` prints the dashboard
URL; ``stop`` ends exactly the processes started for this head (found by its
private temp dir), by process id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def loopback_only() -> bool:
    """True when this process's network namespace has no interface but ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def ray_env(home: Path) -> dict[str, str]:
    # the head's jobs find the studio's Python (this venv) as plain "python", as on a cluster
    # whose nodes have the studio's requirements installed
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    env = {**os.environ, **RAY_ENV, "HOME": str(home), "TMPDIR": str(home / "tmp"), "PATH": path}
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def start(home: Path, ray_bin: str | None = None, num_cpus: int = 2) -> str:
    """Start the head; returns the dashboard URL (http://127.0.0.1:PORT)."""
    if not loopback_only():
        raise RuntimeError("refusing to start Ray outside a loopback-only network namespace (use unshare -n)")
    home.mkdir(parents=True, exist_ok=True)
    ray_bin = ray_bin or str(Path(sys.executable).with_name("ray"))
    gcs, dash, client, nm, om, agent, agent_grpc, renv, metrics = _free_ports(9)
    low = _free_ports(1)[0]
    cmd = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           "--disable-usage-stats", f"--num-cpus={num_cpus}", "--object-store-memory=500000000",
           f"--temp-dir={home / 'ray'}", f"--port={gcs}", f"--dashboard-port={dash}",
           f"--ray-client-server-port={client}", f"--node-manager-port={nm}", f"--object-manager-port={om}",
           f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
           f"--runtime-env-agent-port={renv}", f"--metrics-export-port={metrics}",
           f"--min-worker-port={max(low, 20000)}", f"--max-worker-port={max(low, 20000) + 200}"]
    url = f"http://127.0.0.1:{dash}"
    try:
        subprocess.run(cmd, env=ray_env(home), check=True, capture_output=True, timeout=120)
        (home / "dashboard-url").write_text(url)
        _wait_http(url + "/api/version", 60)
    except BaseException:
        stop(home)  # a half-started head leaves no processes behind
        raise
    return url


def _wait_http(url: str, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def head_pids(home: Path) -> list[int]:
    """Processes whose command line mentions this head's private directory."""
    marker = str(home).encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker in (d / "cmdline").read_bytes() or marker in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def stop(home: Path, timeout: float = 20.0) -> int:
    """Stop this head's processes by pid (TERM, then KILL); returns how many there were."""
    pids = head_pids(home)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    for pid in head_pids(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


if __name__ == "__main__":
    action, home = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(home))
    else:
        print(stop(home))
