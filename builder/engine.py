"""Find and describe the Docker engine, with a friendly message when none is reachable."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
HINT = ("Start one with scripts/start_dockerd.sh (as root; no bridge, no iptables), or point "
        "DOCKER_HOST at a running engine. You can still download the build context and run "
        "`docker build` on another machine.")


class EngineUnavailable(RuntimeError):
    """No Docker engine answers (the message says where we looked and what to do)."""


@dataclass
class EngineInfo:
    """What we know about the engine at ``base_url``."""

    reachable: bool
    base_url: str
    message: str
    version: str | None = None
    api_version: str | None = None
    os: str | None = None
    arch: str | None = None
    storage_driver: str | None = None
    images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$DOCKER_HOST``, else the default unix socket."""
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def client(base_url: str | None = None, timeout: int = 600):
    """A ``docker.DockerClient`` for ``base_url`` (API version negotiated with the engine)."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is in requirements.txt
        raise EngineUnavailable(f"the docker Python SDK is not installed ({exc})") from None
    url = resolve_base_url(base_url)
    try:
        if base_url:
            return docker.DockerClient(base_url=url, version="auto", timeout=timeout)
        return docker.from_env(version="auto", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - docker raises DockerException / requests errors
        raise EngineUnavailable(f"No Docker engine is reachable at {url}: {_short(exc)}. {HINT}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def find_engine(base_url: str | None = None, timeout: int = 5) -> EngineInfo:
    """Probe the engine; never raises. ``reachable`` False comes with a message for people."""
    url = resolve_base_url(base_url)
    try:
        c = client(base_url, timeout=timeout)
    except EngineUnavailable as exc:
        return EngineInfo(False, url, str(exc))
    try:
        ver = c.version()
        info = c.info()
    except Exception as exc:  # noqa: BLE001
        return EngineInfo(False, url, f"No Docker engine is reachable at {url}: {_short(exc)}. {HINT}")
    finally:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    return EngineInfo(
        True, url, f"Docker {ver.get('Version')} ({info.get('OperatingSystem')}) at {url}",
        version=ver.get("Version"), api_version=ver.get("ApiVersion"), os=ver.get("Os"),
        arch=ver.get("Arch"), storage_driver=info.get("Driver"), images=info.get("Images"),
    )


def require_engine(base_url: str | None = None, timeout: int = 600):
    """A connected client, or EngineUnavailable with the friendly message."""
    c = client(base_url, timeout=timeout)
    try:
        c.ping()
    except Exception as exc:  # noqa: BLE001
        c.close()
        raise EngineUnavailable(
            f"No Docker engine is reachable at {resolve_base_url(base_url)}: {_short(exc)}. {HINT}") from None
    return c
