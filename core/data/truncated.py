"""Truncated JPEGs (a copy or upload cut short): keep the usable ones, skip the rest.

Policy (documented in docs/FAULTS.md): a JPEG whose data stops early is decoded as far
as it goes by ending it where it stops (an EOI marker); libjpeg paints the part it never
received mid-grey (128). The fraction missing is the share of rows at the bottom that
are entirely that grey. At most ``MAX_MISSING_FRACTION`` (half) missing: the photo is
kept, re-encoded (JPEG quality 95, EXIF and ICC kept) so every later reader — labelling,
training, preview, export — sees a whole file, and reported as *repaired* with the
fraction missing. More than half missing: skipped with that reason (most of what a model
would learn from it would be grey). A progressive JPEG cut short decodes whole at lower
detail (0 % missing). Other damage (not a cut-short JPEG) is not repaired.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.config import Limits
from core.data.imaging import ImageDecodeError, ImageInfo, probe_image

MAX_MISSING_FRACTION = 0.5
EOI = b"\xff\xd9"
GREY = 128
REPAIR_QUALITY = 95


@dataclass(frozen=True)
class Repaired:
    """A cut-short JPEG made whole: its new bytes and the fraction of the photo that is grey."""

    data: bytes
    missing: float


def is_cut_short_jpeg(data: bytes) -> bool:
    """A JPEG (SOI marker) whose data does not end with the EOI marker."""
    return data[:3] == b"\xff\xd8\xff" and not data.rstrip(b"\x00\r\n ").endswith(EOI)


def missing_fraction(im: Image.Image) -> float:
    """Share of rows at the bottom of a decoded picture that are entirely mid-grey."""
    a = np.asarray(im)
    if a.ndim == 3:
        rows = (a == GREY).all(axis=(1, 2))
    else:
        rows = (a == GREY).all(axis=1)
    if rows.all():
        return 1.0
    last_real = int(np.nonzero(~rows)[0][-1])
    return (a.shape[0] - 1 - last_real) / a.shape[0]


def decode_cut_short(data: bytes, max_pixels: int | None = None) -> tuple[Image.Image, float]:
    """The picture of a cut-short JPEG (stored orientation, missing part grey) and the fraction missing.

    Raises ImageDecodeError when even the ended file cannot be decoded.
    """
    try:
        im = Image.open(io.BytesIO(data + EOI))
        if max_pixels and im.size[0] * im.size[1] > max_pixels:
            raise ImageDecodeError("image too large")
        im.load()
    except ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means: not repairable
        raise ImageDecodeError(f"the file is cut short and what is there cannot be decoded "
                               f"(details: {type(exc).__name__}: {exc})") from None
    return im, missing_fraction(im)


def repair_jpeg(data: bytes, limits: Limits | None = None) -> Repaired:
    """Re-encode a cut-short JPEG as a whole file (see the module docstring)."""
    limits = limits or Limits()
    im, missing = decode_cut_short(data, limits.max_image_pixels)
    buf = io.BytesIO()
    extra = {k: im.info[k] for k in ("exif", "icc_profile") if im.info.get(k)}
    im.save(buf, format="JPEG", quality=REPAIR_QUALITY, **extra)
    return Repaired(buf.getvalue(), missing)


def probe_or_repair(data: bytes, limits: Limits | None = None) -> tuple[ImageInfo, bytes, str | None]:
    """``probe_image``, but a usable cut-short JPEG comes back repaired.

    Returns (info, the bytes to store, a *repaired* reason or None). Raises ImageDecodeError
    (with the fraction missing) when the photo is unusable.
    """
    try:
        return probe_image(data, limits), data, None
    except ImageDecodeError as exc:
        if not is_cut_short_jpeg(data):
            raise
        try:
            fixed = repair_jpeg(data, limits)
        except ImageDecodeError:
            raise exc from None  # not repairable: the decoder's own reason
    pct = round(fixed.missing * 100)
    if fixed.missing > MAX_MISSING_FRACTION:
        raise ImageDecodeError(f"the file is cut short: about {pct}% of the photo is missing (more than "
                               f"half), so it was skipped")
    if fixed.missing == 0:
        reason = "the file is cut short; the whole picture decoded at lower detail (kept)"
    else:
        reason = (f"the file is cut short: about {pct}% of the photo (at the bottom) is missing; kept with "
                  f"that part grey")
    return probe_image(fixed.data, limits), fixed.data, reason


def whole_photo(data: bytes, limits: Limits | None = None) -> tuple[bytes, float | None]:
    """``data`` unchanged when it decodes; a cut-short JPEG made whole, with its fraction missing.

    For showing a photo once (preview): any fraction is accepted, the caller says how much is grey.
    """
    if not is_cut_short_jpeg(data):
        return data, None
    try:
        probe_image(data, limits)
        return data, None
    except ImageDecodeError:
        pass
    try:
        fixed = repair_jpeg(data, limits)
    except ImageDecodeError:
        return data, None  # not repairable: the caller's own decode says why
    return fixed.data, fixed.missing
