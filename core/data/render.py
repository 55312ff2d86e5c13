"""Drawing labels on images for display: boxes with class names, image-level class banners.

Pure PIL. Pages cache the results (``st.cache_data`` keyed by image id and revision);
nothing here knows about Streamlit.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from typing import Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from core.data.annotations import Annotation
from core.data.boxes import Box

# Distinct, readable colours (Tableau-like palette); a class keeps its colour everywhere.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
)

# What a page passes in: (label, box or None, reviewed) — hashable, so it can key a cache.
LabelTuple = tuple[str, tuple[float, float, float, float] | None, bool]


def color_for(label: str) -> tuple[int, int, int]:
    """A stable colour for a class name (the same on every page and every run)."""
    digest = hashlib.md5(label.encode("utf-8")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def label_tuples(annotations: Iterable[Annotation]) -> tuple[LabelTuple, ...]:
    """Annotations as hashable tuples (for cache keys and for :func:`draw_labels`)."""
    return tuple((a.label, a.box.as_tuple() if a.box is not None else None, a.reviewed)
                 for a in annotations)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow: fixed-size bitmap font
        return ImageFont.load_default()


def _open_scaled(data: bytes, max_side: int | None) -> Image.Image:
    """Decode upright RGB, asking JPEG to decode at reduced scale when a thumbnail is wanted."""
    im = Image.open(io.BytesIO(data))
    if max_side:
        try:
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4, 1/8 — much faster
        except (AttributeError, ValueError, OSError):
            pass
    im = ImageOps.exif_transpose(im)
    im = im.convert("RGB")
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return im


def _text_box(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
              font: ImageFont.ImageFont, fill: tuple[int, int, int], inside: bool = False) -> None:
    """A filled label tag with white text at ``xy`` (above the point unless ``inside``)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    x, y = xy
    y = y if inside else max(y - th - 4, 0)
    draw.rectangle((x, y, x + tw + 4, y + th + 4), fill=fill)
    draw.text((x + 2 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def draw_labels(image: Image.Image, labels: Sequence[LabelTuple], original_size: tuple[int, int],
                show_text: bool = True) -> Image.Image:
    """Draw boxes (scaled from ``original_size`` to the image's size) and image-level classes.

    Unreviewed labels (model suggestions) are drawn dashed-looking: thinner, with a ``?``.
    Returns the same image, drawn on.
    """
    ow, oh = original_size
    sx = image.width / ow if ow else 1.0
    sy = image.height / oh if oh else 1.0
    draw = ImageDraw.Draw(image)
    side = max(image.size)
    width = max(1, round(side / 160))
    fsize = max(10, round(side / 28))
    font = _font(fsize)
    banner_y = 0.0
    for label, box, reviewed in labels:
        colour = color_for(label)
        text = label if reviewed else f"{label} ?"
        if box is None:
            if show_text:
                _text_box(draw, (0, banner_y), text, font, colour, inside=True)
                banner_y += fsize + 8
            continue
        b = Box(*box).scale(sx, sy)
        draw.rectangle((b.x_min, b.y_min, b.x_max, b.y_max), outline=colour,
                       width=width if reviewed else max(1, width // 2))
        if show_text:
            _text_box(draw, (b.x_min, b.y_min), text, font, colour)
    return image


def render(data: bytes, labels: Sequence[LabelTuple], original_size: tuple[int, int],
           max_side: int | None = 320, show_text: bool = True, quality: int = 85) -> bytes:
    """Image bytes → JPEG bytes of the (downscaled) upright image with its labels drawn.

    ``original_size`` is the stored upright ``(width, height)`` the boxes refer to.
    Unreadable images give a grey placeholder instead of raising, so one bad file
    never breaks a gallery.
    """
    try:
        im = _open_scaled(data, max_side)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return placeholder(max_side or 320, "cannot show this image")
    draw_labels(im, labels, original_size, show_text=show_text)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def placeholder(side: int = 320, text: str = "no preview") -> bytes:
    """A neutral grey square with a short message, as JPEG bytes."""
    im = Image.new("RGB", (side, round(side * 0.75)), (220, 220, 220))
    draw = ImageDraw.Draw(im)
    draw.text((10, 10), text, fill=(90, 90, 90), font=_font(max(10, side // 20)))
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=80)
    return out.getvalue()
