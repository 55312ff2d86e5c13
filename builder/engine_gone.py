"""The Docker engine stopped in the middle of a build or a push: say so in plain words."""

from __future__ import annotations

ENGINE_GONE_WORDS = ("connection aborted", "connection refused", "connection reset", "broken pipe",
                     "remote end closed", "protocolerror", "chunkedencodingerror", "incompleteread",
                     "no such file or directory", "eof occurred", "response ended prematurely",
                     "connection broken", "max retries exceeded")


def is_engine_gone(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is the engine's connection breaking or refusing."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, (ConnectionError, BrokenPipeError)):
            return True
        text = f"{type(seen).__name__} {seen}".lower()
        if any(w in text for w in ENGINE_GONE_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def engine_gone_message(what: str) -> str:
    """The sentence for people: what stopped, that nothing half-made was kept, what to do next."""
    return (f"The Docker engine stopped in the middle of the {what}: nothing half-made was kept. Start the "
            f"engine again (e.g. scripts/start_dockerd.sh or `systemctl start docker`) and try again.")
