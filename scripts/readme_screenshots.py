"""Copy the README's screenshots from the journey test's output into docs/screenshots/.

Run after ``.venv/bin/pytest tests/e2e/test_journey.py``: each chosen PNG of ``test-output/`` is
cropped to its top part (when taller than ``MAX_HEIGHT`` at the final width), downscaled to at
most ``MAX_WIDTH`` px wide, reduced to a 256-colour palette and saved optimised (< 250 kB each).

    .venv/bin/python scripts/readme_screenshots.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "test-output"
TARGET = ROOT / "docs" / "screenshots"
MAX_WIDTH = 1200
MAX_HEIGHT = 1100
MAX_BYTES = 250_000
# test-output name -> docs/screenshots name
CHOSEN = {
    "journey-det-02-upload": "1-upload.png",
    "journey-det-03-dataset": "2-dataset.png",
    "journey-det-04-label": "3-label.png",
    "journey-det-05-train-finished": "4-train.png",
    "journey-det-06-models-edgetpu": "5-models.png",
    # 6-preview.png is not from the journey: it shows the detector that `make bench` trains (README)
    "journey-det-08-deploy-built": "7-deploy.png",
    "journey-cls-06-preview": "8-classification-preview.png",
}


def shrink(src: Path, dst: Path) -> int:
    """Write ``src`` as a small palette PNG at ``dst``; its size in bytes."""
    im = Image.open(src).convert("RGB")
    scale = min(1.0, MAX_WIDTH / im.width)
    crop_h = min(im.height, int(MAX_HEIGHT / scale))
    im = im.crop((0, 0, im.width, crop_h))
    if scale < 1.0:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    colours = 256
    while True:
        im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
        size = dst.stat().st_size
        if size < MAX_BYTES or colours <= 32:
            return size
        colours //= 2


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = [n for n in CHOSEN if not (SOURCE / f"{n}.png").is_file()]
    if missing:
        print("missing in test-output (run tests/e2e/test_journey.py first): " + ", ".join(missing))
        return 1
    for name, out in CHOSEN.items():
        size = shrink(SOURCE / f"{name}.png", TARGET / out)
        print(f"{TARGET / out}: {size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
