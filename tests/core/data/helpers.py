"""Small real images for tests (made with Pillow, not stored in the repo)."""

from __future__ import annotations

import io

from PIL import Image


def jpeg_bytes(width: int = 64, height: int = 48, color=(200, 30, 30), orientation: int | None = None,
               quality: int = 90) -> bytes:
    im = Image.new("RGB", (width, height), color)
    for x in range(0, width, 8):  # some texture so every image differs by colour/size
        im.putpixel((x, x * height // max(width, 1)), (0, 0, 0))
    buf = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(width: int = 32, height: int = 32, color=(10, 120, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()
