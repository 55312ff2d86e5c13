"""The access password ($STUDIO_PASSWORD) and the warning for a studio open to the network."""

from __future__ import annotations

import hmac
import logging
import os
import time

import streamlit as st

from core.config import ENV_PASSWORD
from pages._shared import session

log = logging.getLogger("studio")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def required_password() -> str | None:
    """The password the studio asks for, or None when $STUDIO_PASSWORD is unset or empty."""
    return os.environ.get(ENV_PASSWORD) or None


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (never logs either value)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_authenticated() -> bool:
    """True when no password is set, or this browser session entered it."""
    return required_password() is None or session.AUTHENTICATED.get()


def listen_address() -> str:
    """The address the server listens on ('' means every interface)."""
    return (st.get_option("server.address") or "").strip()


def is_exposed() -> bool:
    """True when the server accepts connections from other machines."""
    return listen_address() not in LOOPBACK


@st.cache_resource(show_spinner=False)
def _log_exposure_once(address: str) -> bool:
    log.warning("The studio listens on %s without a password: anyone who can reach this machine "
                "can use it. Set STUDIO_PASSWORD or use --server.address 127.0.0.1.",
                address or "all network interfaces")
    return True


def exposure_warning() -> None:
    """A banner (and one log line per process) when the studio is reachable without a password."""
    if required_password() is None and is_exposed():
        address = listen_address()
        _log_exposure_once(address)
        st.warning(
            f"This studio is reachable from other computers ({address or 'all network interfaces'}) "
            "and has no password. Set the STUDIO_PASSWORD environment variable before starting it, "
            "or start it with `--server.address 127.0.0.1`.",
            icon=":material/lock_open:",
        )


def _check() -> None:
    given = session.widget_value("studio.auth.password", "") or ""
    expected = required_password()
    if expected is not None and password_matches(given, expected):
        session.AUTHENTICATED.set(True)
        session.set_widget_value("studio.auth.password", "")
    else:
        time.sleep(0.5)  # slows guessing down
        session.flash("That password is not right. Try again.", "error")


def sign_in_page() -> None:
    """The only page shown until the password was entered."""
    st.title("Edge TPU Studio")
    st.write("This studio is protected by a password. Ask the person who set it up.")
    for kind, msg in session.pop_flashes():
        getattr(st, kind)(msg)
    with st.form("studio.auth.form", clear_on_submit=False):
        st.text_input("Password", type="password", key="studio.auth.password")
        st.form_submit_button("Sign in", type="primary", on_click=_check)


def require() -> None:
    """Stop the run with the sign-in form unless the password was entered (no-op without one)."""
    if not is_authenticated():
        sign_in_page()
        st.stop()


def logout() -> None:
    session.AUTHENTICATED.set(False)
