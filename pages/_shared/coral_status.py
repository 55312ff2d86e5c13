"""The Edge TPU runtime line of Preview and Deploy.

The runtime is opened once per studio process and library, in a child process
(``coral_runtime.probe``): a libedgetpu that crashes costs only that child, and the line says
"Edge TPU runtime crashed (signal N) — CPU used". A later probe (e.g. the Preview's Predictor
loading a compiled model) replaces what the line shows.
"""

from __future__ import annotations

import streamlit as st

from coral_runtime import probe, versions


@st.cache_resource(show_spinner="Checking the Edge TPU runtime…")
def _first_probe(lib: str) -> bool:  # noqa: ARG001 - the cache key
    if probe.last_probe() is None and not versions.stock_runtime_problem():
        probe.probe("auto", retry_wait=0.5)
    return True


def runtime_line() -> str:
    """Runtime name+version · libedgetpu package (+ its version string) · Edge TPUs · what went wrong."""
    _first_probe(probe.edgetpu_lib())
    return versions.summary_line(versions.describe())


def crash_message() -> str | None:
    """The latest probe's message when the Edge TPU runtime crashed (or hung) in its child process."""
    last = probe.last_probe()
    return last.message if last is not None and last.crashed else None
