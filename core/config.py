"""Runtime settings read from the environment (with safe defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_DIR = "STUDIO_DATA_DIR"
ENV_PASSWORD = "STUDIO_PASSWORD"
ENV_MAX_UPLOAD_MB = "STUDIO_MAX_UPLOAD_MB"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``override``, else ``$STUDIO_DATA_DIR``, else ``./data``."""
    raw = override or os.environ.get(ENV_DATA_DIR) or "data"
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class Limits:
    """Limits that protect the store from hostile or accidental input."""

    max_upload_bytes: int = 2 * 1024**3  # one upload (a zip or a file)
    max_zip_members: int = 200_000
    max_zip_total_bytes: int = 8 * 1024**3  # sum of uncompressed sizes
    max_zip_ratio: float = 200.0  # uncompressed / compressed, per member
    max_image_pixels: int = 100_000_000  # decompression-bomb guard (Pillow)
    max_annotation_bytes: int = 256 * 1024**2  # one XML/JSON/CSV file

    @classmethod
    def from_env(cls) -> "Limits":
        """Limits with the upload size taken from ``$STUDIO_MAX_UPLOAD_MB`` when set."""
        raw = os.environ.get(ENV_MAX_UPLOAD_MB)
        if raw:
            return cls(max_upload_bytes=int(float(raw) * 1024**2))
        return cls()
