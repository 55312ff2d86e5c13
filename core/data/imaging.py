"""Decoding images safely: EXIF orientation, size, and bomb/corruption checks."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from core.config import Limits


class ImageDecodeError(ValueError):
    """An image that cannot be used, with a reason a person understands."""


@dataclass(frozen=True)
class ImageInfo:
    width: int  # upright (EXIF orientation applied)
    height: int
    format: str
    orientation: int  # EXIF orientation tag, 1 when absent


def probe_image(data: bytes, limits: Limits | None = None) -> ImageInfo:
    """Fully decode ``data`` and return its upright size; raise ImageDecodeError otherwise.

    Rejects empty files, non-images, truncated files and decompression bombs
    (more pixels than ``limits.max_image_pixels``).
    """
    limits = limits or Limits()
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > limits.max_image_pixels:
                    raise ImageDecodeError(
                        f"image too large: {w}x{h} = {w * h:,} pixels "
                        f"(limit {limits.max_image_pixels:,})"
                    )
                fmt = im.format or "unknown"
                orientation = int(im.getexif().get(0x0112, 1) or 1)
                im.load()  # full decode: catches truncated files
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: it has more pixels than the studio accepts "
                               f"(details: {_detail(exc)})") from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image: the file's contents are not JPEG, PNG or another "
                               "photo format the studio reads") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"the file is damaged or incomplete: it could not be decoded as an image "
                               f"(details: {_detail(exc)})") from None
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return ImageInfo(width=w, height=h, format=fmt, orientation=orientation)


def _detail(exc: BaseException) -> str:
    """The library's own words about an error, for the details in parentheses."""
    return str(exc).strip().rstrip(".") or type(exc).__name__


def open_upright(data: bytes | str, max_pixels: int | None = None) -> Image.Image:
    """Open an image (bytes or path) as RGB with EXIF orientation applied.

    A JPEG cut short (on disk after import) decodes with its missing part grey instead of failing.
    """
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    im = Image.open(src)
    if max_pixels and im.size[0] * im.size[1] > max_pixels:
        raise ImageDecodeError("image too large")
    try:
        im.load()
    except OSError:
        raw = bytes(data) if isinstance(data, (bytes, bytearray)) else open(data, "rb").read()
        from core.data.truncated import decode_cut_short, is_cut_short_jpeg

        if not is_cut_short_jpeg(raw):
            raise
        im = decode_cut_short(raw, max_pixels)[0]  # a photo cut short on disk: the missing part grey
    im = ImageOps.exif_transpose(im)
    return im.convert("RGB")
