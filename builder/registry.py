"""Pushing a built image to a registry (and reading it back): references, digests, pull, and
errors worded for people (auth refused, registry unreachable ...)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from builder.docker import Log, _client, image_info
from builder.engine_gone import engine_gone_message, is_engine_gone


class PushError(RuntimeError):
    """A push that failed, with a message for people (auth, unreachable registry …)."""


# -- push ----------------------------------------------------------------------------------
@dataclass
class PushResult:
    """A pushed image: its reference in the registry and the manifest digest."""

    repository: str
    tag: str
    digest: str
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split_ref(ref: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repo, tag) — a registry port is not a tag."""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"


def _strip_registry(repo: str) -> str:
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repo


def registry_reference(tag: str, registry: str) -> tuple[str, str]:
    """Where ``tag`` goes in ``registry``: (``registry/repo``, tag)."""
    registry = registry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
    if not registry:
        raise PushError("no registry given (host:port, e.g. 127.0.0.1:5000)")
    repo, t = _split_ref(tag)
    return f"{registry}/{_strip_registry(repo)}", t


def _friendly_push_error(msg: str, registry: str, username: str | None) -> str:
    low = msg.lower()
    if any(s in low for s in ("unauthorized", "authentication required", "no basic auth", "401", "denied")):
        if not username:
            return (f"The registry {registry} needs a username and password to push "
                    f"(it answered: {msg.strip()}).")
        return (f"The registry {registry} refused the credentials of user {username!r}: wrong username "
                f"or password, or no push rights (it answered: {msg.strip()}).")
    if any(s in low for s in ("connection refused", "no such host", "i/o timeout", "dial tcp")):
        return f"Cannot reach the registry {registry}: {msg.strip()}"
    if "http response to https client" in low:
        return (f"The registry {registry} speaks plain HTTP; the Docker engine only allows that for "
                f"loopback addresses or registries listed in its insecure-registries ({msg.strip()}).")
    return f"Push to {registry} failed: {msg.strip()}"


def push(tag: str, registry: str, username: str | None, password: str | None, *, client=None,
         base_url: str | None = None, on_log: Log | None = None) -> PushResult:
    """Tag ``tag`` into ``registry`` and push it with per-call credentials; returns the digest.

    The credentials go only into this call's ``auth_config`` (X-Registry-Auth header): no
    ``docker login``, no config file, never logged. Raises PushError with a clear message.
    """
    on_log = on_log or (lambda _l: None)
    c = _client(client, base_url)
    target, t = registry_reference(tag, registry)
    host = target.split("/", 1)[0]
    try:
        img = c.images.get(tag)
    except Exception as exc:  # noqa: BLE001 - docker.errors.ImageNotFound
        raise PushError(f"no local image {tag!r} to push ({exc})") from None
    img.tag(target, t)
    auth = {"username": username, "password": password, "serveraddress": host} if username or password else {}
    digest = None
    try:
        for chunk in c.api.push(target, tag=t, stream=True, decode=True, auth_config=auth):
            if "error" in chunk or "errorDetail" in chunk:
                msg = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "push failed"
                raise PushError(_friendly_push_error(msg, host, username))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
            status = chunk.get("status")
            if status and chunk.get("id") and "progress" not in chunk:
                on_log(f"{chunk['id']}: {status}")
            elif status and not chunk.get("id"):
                on_log(status)
    except PushError:
        raise
    except Exception as exc:  # noqa: BLE001 - APIError, connection errors
        if is_engine_gone(exc):
            raise PushError(engine_gone_message("push")) from None
        raise PushError(_friendly_push_error(str(getattr(exc, "explanation", None) or exc), host, username)) from None
    if not digest:
        raise PushError(f"push to {host} finished without a digest")
    on_log(f"pushed {target}:{t} @ {digest}")
    return PushResult(repository=target, tag=t, digest=digest, reference=f"{target}@{digest}")


def registry_digest(ref: str, username: str | None, password: str | None, *, client=None,
                    base_url: str | None = None) -> str:
    """The manifest digest the registry holds for ``ref`` (per-call credentials)."""
    c = _client(client, base_url)
    host = ref.split("/", 1)[0]
    auth = {"username": username, "password": password, "serveraddress": host} if username or password else {}
    return c.images.get_registry_data(ref, auth_config=auth).id


def pull(ref: str, username: str | None, password: str | None, *, client=None,
         base_url: str | None = None) -> dict[str, Any]:
    """Pull ``ref`` with per-call credentials; returns image_info of the pulled image."""
    c = _client(client, base_url)
    host = ref.split("/", 1)[0]
    auth = {"username": username, "password": password, "serveraddress": host} if username or password else {}
    repo, t = _split_ref(ref)
    c.images.pull(repo, tag=t, auth_config=auth)
    return image_info(f"{repo}:{t}", client=c)
