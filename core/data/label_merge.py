"""Two people drew on the same photo at once: keep both when that is safe."""

from __future__ import annotations

from typing import Sequence

from core.data.annotations import Annotation


def merge_additions(baseline: Sequence[Annotation], mine: Sequence[Annotation],
                    theirs: Sequence[Annotation]) -> list[Annotation] | None:
    """Their version plus the boxes ``mine`` added to ``baseline`` (the version it started from).

    ``None`` when ``mine`` also removed or changed a box of ``baseline``: that is a real conflict
    (the person must choose), since their version may rely on the box being there.
    """
    base = list(baseline)
    if any(a not in mine for a in base):
        return None
    added = [a for a in mine if a not in base]
    return list(theirs) + [a for a in added if a not in theirs]
