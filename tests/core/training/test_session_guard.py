"""keras.backend.clear_session() from another thread must not touch a training in progress."""

import threading

import pytest

from core.training import session_guard


def _call_in_thread(fn) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join(30)


def test_clear_session_from_another_thread_is_skipped_only_while_training(monkeypatch):
    keras = pytest.importorskip("keras")
    calls = []
    session_guard.install()
    monkeypatch.setattr(session_guard, "_original", lambda *a, **k: calls.append(threading.get_ident()))
    _call_in_thread(keras.backend.clear_session)  # what Streamlit does after each rerun
    assert len(calls) == 1  # no training: passes through
    before = session_guard.skipped_calls
    with session_guard.guard_session():
        assert session_guard.training_active()
        _call_in_thread(keras.backend.clear_session)
        assert len(calls) == 1 and session_guard.skipped_calls == before + 1
        keras.backend.clear_session()  # the training thread itself may still clear
        assert calls[-1] == threading.get_ident() and len(calls) == 2
    assert not session_guard.training_active()
    _call_in_thread(keras.backend.clear_session)
    assert len(calls) == 3
