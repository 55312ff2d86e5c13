"""Keep other threads from clearing Keras' global state while a model trains in this process.

Streamlit calls ``keras.backend.clear_session()`` after *every* script run, fragment reruns
included (``ScriptRunner._clean_problem_modules``). With the Train page's live view rerunning
every 2 s, that cleared TensorFlow's eager kernel cache and ran a full ``gc.collect()`` under the
training thread's feet: epochs of a tiny detector took ~45 s in the app instead of ~1 s from
the CLI. ``guard_session()`` wraps ``keras.backend.clear_session`` so that, while any thread of
this process is inside the guard, calls from *other* threads do nothing; the training thread's
own calls and all calls when no training runs behave as before.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

_lock = threading.Lock()
_training_threads: dict[int, int] = {}  # thread id -> nesting depth
_original: Callable[..., Any] | None = None
skipped_calls = 0  # clear_session calls skipped so far (for tests and diagnostics)


def _guarded_clear_session(*args: Any, **kwargs: Any) -> Any:
    global skipped_calls
    with _lock:
        busy = bool(_training_threads) and threading.get_ident() not in _training_threads
        if busy:
            skipped_calls += 1
    if busy:
        log.debug("keras.backend.clear_session() from another thread skipped: a model is training")
        return None
    assert _original is not None
    return _original(*args, **kwargs)


def install() -> None:
    """Replace ``keras.backend.clear_session`` by the guarded version (idempotent)."""
    global _original
    import keras

    with _lock:
        current = keras.backend.clear_session
        if current is _guarded_clear_session:
            return
        _original = current
        keras.backend.clear_session = _guarded_clear_session


def training_active() -> bool:
    """Whether some thread of this process is inside ``guard_session()``."""
    with _lock:
        return bool(_training_threads)


@contextmanager
def guard_session() -> Iterator[None]:
    """While inside, ``keras.backend.clear_session()`` called from other threads is a no-op."""
    install()
    me = threading.get_ident()
    with _lock:
        _training_threads[me] = _training_threads.get(me, 0) + 1
    try:
        yield
    finally:
        with _lock:
            depth = _training_threads.get(me, 1) - 1
            if depth <= 0:
                _training_threads.pop(me, None)
            else:
                _training_threads[me] = depth
