"""Studio-wide settings kept in the data directory's SQLite (e.g. the Ray cluster address).

Secrets are never stored here: a cluster token comes from the environment or is
typed into the page and kept in the process's memory only.
"""

from __future__ import annotations

import os

from core.data.store import Store

SCHEMA = "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
ENV_RAY_ADDRESS = "STUDIO_RAY_ADDRESS"
ENV_RAY_TOKEN = "STUDIO_RAY_TOKEN"
RAY_ADDRESS = "ray.address"


def get_setting(store: Store, key: str, default: str | None = None) -> str | None:
    with store.connect() as conn:
        conn.execute(SCHEMA)
        r = conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
    return r[0] if r else default


def set_setting(store: Store, key: str, value: str | None) -> None:
    """Set (or with None / "" remove) a setting."""
    with store.connect() as conn:
        conn.execute(SCHEMA)
        if value:
            conn.execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=?",
                         (key, value, value))
        else:
            conn.execute("DELETE FROM settings WHERE key=?", (key,))


def ray_address(store: Store) -> str | None:
    """The Ray cluster's dashboard URL: ``$STUDIO_RAY_ADDRESS``, else the saved setting, else None."""
    addr = os.environ.get(ENV_RAY_ADDRESS) or get_setting(store, RAY_ADDRESS)
    if not addr:
        return None
    addr = addr.strip().rstrip("/")
    return addr if "://" in addr else f"http://{addr}"


def ray_token_from_env() -> str | None:
    return os.environ.get(ENV_RAY_TOKEN) or None
