"""The Edge TPU runtime line of Preview and Deploy (cached: it scans devices and reads dpkg's status)."""

from __future__ import annotations

import streamlit as st

from coral_runtime import versions


@st.cache_data(ttl=10, show_spinner=False)
def _describe() -> dict:
    return versions.describe()


def runtime_line(fresh: bool = False) -> str:
    """Runtime name+version · libedgetpu package (+ its version string) · Edge TPUs · what went wrong."""
    info = versions.describe() if fresh else _describe()
    return versions.summary_line(info)


def crash_message() -> str | None:
    """The latest probe's message when the Edge TPU runtime crashed (or hung) in its child process."""
    from coral_runtime import probe

    last = probe.last_probe()
    return last.message if last is not None and last.crashed else None
