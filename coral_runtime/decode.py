"""Image bytes -> an upright RGB picture for a Predictor: the one decode of the studio and the robot image.

``decode_image`` is what ``Predictor.predict_bytes`` (the in-app predictor) and the robot image's
model server (``builder/templates/server.py``, which ships this module) both use, so that the same
bytes give the same detections everywhere.

- EXIF orientation is applied exactly as ``core.data.imaging.open_upright`` does for stored images
  (``ImageOps.exif_transpose`` on the EXIF Orientation tag), then the image is converted to RGB.
- A JPEG much larger than the size it will be resized to is decoded at 1/2, 1/4 or 1/8 scale
  (libjpeg's DCT scaling, ``Image.draft``), never below ``DRAFT_GAP`` x that size: the pixels a
  full decode would be box-reduced to anyway, in a fraction of the time. ``Decoded.scale`` maps the
  decoded picture back to the original pixels (exactly: a partial last column/row is cut, at most
  ``scale - 1`` original pixels). Other formats are always decoded at full size.
- Empty, unreadable, truncated images raise ``DecodeError``; more than ``max_pixels`` pixels (or a
  Pillow decompression-bomb warning) raise ``ImageTooLarge``. ``str(error)`` is the short reason the
  robot server answers with; ``error.describe(name)`` is one plain sentence for a person. Neither
  ever holds a Python object repr (Pillow's ``<_io.BytesIO object at 0x…>``).

Pure Pillow/numpy (no TensorFlow, no streamlit, no other studio module): it runs in the robot image.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# decode a JPEG at reduced scale while it stays at least this many times the size it is resized
# to (Pillow's own thumbnail() uses 2.0)
DRAFT_GAP = 2.0
DEFAULT_MAX_PIXELS = 50_000_000
ORIENTATION_TAG = 0x0112
_SWAPS_AXES = (5, 6, 7, 8)  # orientations whose upright image is the stored one turned by 90°
READABLE_FORMATS = "JPEG, PNG, BMP, WebP …"
_OBJECT_REPR = re.compile(r"\s*<[^<>]*? at 0x[0-9A-Fa-f]+>")  # e.g. <_io.BytesIO object at 0x7f…>


def plain_reason(exc: BaseException) -> str:
    """A library error's text without Python object reprs (or its class name when nothing is left)."""
    text = _OBJECT_REPR.sub("", str(exc)).strip().rstrip(":").strip()
    return text or type(exc).__name__


class DecodeError(ValueError):
    """Bytes that are not a usable image, with a reason a person understands.

    ``kind``: ``"empty"``, ``"unreadable"`` (not an image, or a format Pillow cannot read),
    ``"damaged"`` (truncated or corrupt) or ``"too-large"``.
    """

    def __init__(self, message: str, kind: str = "unreadable") -> None:
        super().__init__(message)
        self.kind = kind

    def describe(self, name: str | None = None) -> str:
        """One plain sentence for a person, naming the file (``name``) when known."""
        what = name or "This file"
        if self.kind == "empty":
            return f"{what} is empty (0 bytes): choose a photo ({READABLE_FORMATS})."
        if self.kind == "damaged":
            return f"{what} is damaged or incomplete, so it cannot be read as a photo. Try another copy of it."
        return f"{what} is not a photo the studio can read ({READABLE_FORMATS})."


class ImageTooLarge(DecodeError):
    """An image with more pixels than allowed (decompression-bomb guard)."""

    def __init__(self, message: str, limit: int | None = None) -> None:
        super().__init__(message, kind="too-large")
        self.limit = limit

    def describe(self, name: str | None = None) -> str:
        what = name or "This file"
        most = f" (at most {self.limit:,})" if self.limit else ""
        return f"{what} has more pixels than the studio accepts{most}: use a smaller photo."


@dataclass(frozen=True)
class Decoded:
    """An upright RGB image as decoded, and the original (upright) image it stands for.

    ``scale``: original pixels per decoded pixel (1, 2, 4 or 8); a box ``b`` on ``image`` is
    ``b * scale`` in the original image of ``original_size`` = (width, height).
    """

    image: Image.Image
    scale: float
    original_size: tuple[int, int]

    @property
    def array(self) -> np.ndarray:
        """The decoded pixels as an ``[h, w, 3]`` uint8 array (a copy)."""
        return np.asarray(self.image, dtype=np.uint8)


def draft_request(original_size: tuple[int, int], target: tuple[int, int], resize: str = "stretch",
                  gap: float = DRAFT_GAP) -> tuple[int, int]:
    """The smallest (width, height) a decode may have and still resize well to ``target``
    (width, height): ``gap`` x the size the image is resized to — all of ``target`` for
    ``"stretch"``, the part the image fills for ``"letterbox"``."""
    width, height = original_size
    tw, th = target
    if resize == "letterbox":
        fit = min(tw / width, th / height)
        tw, th = max(1, round(width * fit)), max(1, round(height * fit))
    return max(1, int(tw * gap)), max(1, int(th * gap))


def decode_image(data: bytes, target: tuple[int, int] | None, draft: bool = True,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, resize: str = "stretch") -> Decoded:
    """Decode ``data`` upright in RGB; a large JPEG at reduced scale when ``draft`` and ``target``.

    ``target``: the (width, height) the image will be resized to (a model input), or ``None`` for
    a full-size decode; ``resize``: how it is resized (``"stretch"`` or ``"letterbox"``).
    ``max_pixels``: largest accepted image (``None``: only Pillow's own bomb limit).
    """
    if not data:
        raise DecodeError("empty body: send an image (JPEG, PNG …)", kind="empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            raw_w, raw_h = im.size
            if max_pixels is not None and raw_w * raw_h > max_pixels:
                raise ImageTooLarge(f"image has {raw_w}x{raw_h} pixels; the limit is {max_pixels}",
                                    limit=max_pixels)
            orientation = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
            swapped = orientation in _SWAPS_AXES
            width, height = (raw_h, raw_w) if swapped else (raw_w, raw_h)
            scale = 1.0
            if draft and target is not None and im.format == "JPEG":
                rw, rh = draft_request((width, height), target, resize)
                if swapped:  # the request is for the stored (not yet turned) picture
                    rw, rh = rh, rw
                drafted = im.draft("RGB", (rw, rh))  # -> (mode, (0, 0, raw_w / s, raw_h / s)) or None
                if drafted is not None and drafted[1][2]:
                    scale = float(round(raw_w / drafted[1][2]))
            im.load()
            if scale > 1:
                # libjpeg rounds the scaled size up: a last column/row standing for fewer than
                # `scale` pixels would stretch the picture; drop it so the scale is exact
                exact = (int(raw_w // scale), int(raw_h // scale))
                if im.size != exact:
                    im = im.crop((0, 0, *exact))
            if orientation != 1:
                im = ImageOps.exif_transpose(im)  # as core.data.imaging.open_upright
            if im.mode != "RGB":
                im = im.convert("RGB")
    except DecodeError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooLarge(f"image too large (decompression bomb guard): {plain_reason(exc)}") from None
    except UnidentifiedImageError:
        raise DecodeError("not a readable image: unknown or unsupported image format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = plain_reason(exc)
        damaged = isinstance(exc, SyntaxError) or any(w in reason.lower() for w in ("truncat", "broken", "corrupt"))
        raise DecodeError(f"not a readable image: {reason}", kind="damaged" if damaged else "unreadable") from None
    return Decoded(image=im, scale=scale, original_size=(width, height))
