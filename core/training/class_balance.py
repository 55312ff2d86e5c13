"""Class balance: counts per class, a warning for classes with very few examples, and the remedy.

- classification: class weights (inverse frequency, mean 1) in the loss -- ``hp.class_balance``
  ``"auto"``/``"weights"``; ``"none"`` trains unweighted.
- detection: class-balanced sampling -- ``"sampling"`` repeats photos holding rare classes within an
  epoch (each photo ``round(max_count / rarest_count_in_photo)`` times, at most ``MAX_REPEAT``);
  ``"auto"``/``"none"`` keep one pass over the photos.

What was used is recorded in the manifest (``class_balance``) by core/training/lineage.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

FEW = 10  # a class with fewer training examples than this (and a third of the largest) gets a warning
VERY_FEW = 3  # ... and below this, always
MAX_REPEAT = 5


def class_counts(store: Any, project: Any, split: str | None = "train") -> dict[str, int]:
    """Training examples per class: reviewed boxes (detection) or reviewed image labels (classification)."""
    counts: Counter[str] = Counter({n: 0 for n in store.label_map(project).names})
    detection = project.task.value == "detection"
    for r in store.list_images(project, split=split):
        for a in r.annotations:
            if a.reviewed and (a.box is not None) == detection:
                counts[a.label] += 1
    return dict(counts)


def few_warnings(counts: dict[str, int], few: int = FEW) -> list[str]:
    """One sentence per rare class: fewer than ``few`` examples and at most a third of the largest class
    (or fewer than ``VERY_FEW`` whatever the others have); none for classes without any."""
    out = []
    biggest = max(counts.values(), default=0)
    for name, n in sorted(counts.items(), key=lambda kv: kv[1]):
        if 0 < n < few and (n * 3 <= biggest or n < VERY_FEW):
            out.append(f"Class '{name}' has only {n} training example{'s' if n != 1 else ''} "
                       f"(the largest has {biggest}): the model will rarely predict it. Label more photos of "
                       f"it, or turn on class balancing.")
    return out


def mode(task: str, choice: str | None) -> str:
    """The balancing actually used: "weights" | "sampling" | "none"."""
    c = (choice or "auto").lower()
    if c == "auto":
        return "weights" if task == "classification" else "none"
    if task == "classification" and c == "sampling":
        return "weights"  # the classifier's pipeline balances through the loss
    if task == "detection" and c == "weights":
        return "sampling"  # the detector's loss is per anchor: balance the photos instead
    if c not in ("weights", "sampling", "none"):
        raise ValueError(f"class_balance must be auto, none, weights or sampling, not {choice!r}")
    return c


def classification_weights(ctx: Any, hp: Any, labels: Sequence[str], counts: Sequence[int]) -> dict | None:
    """The ``class_weight`` for ``fit`` (None when balancing is off); recorded on ``ctx``."""
    from core.training.classification import class_weights

    used = mode("classification", getattr(hp, "class_balance", "auto"))
    weights = class_weights(list(counts)) if used == "weights" else None
    ctx.class_balance = {"mode": used, "counts": dict(zip(labels, map(int, counts))),
                         "weights": {labels[i]: round(w, 4) for i, w in weights.items()} if weights else None}
    return weights


def balanced_examples(ctx: Any, hp: Any, examples: list, labels: Sequence[str]) -> list:
    """Detection: the examples to fit on (photos of rare classes repeated when sampling is on)."""
    used = mode("detection", getattr(hp, "class_balance", "auto"))
    counts = Counter(int(c) for e in examples for c in e.labels)
    record: dict[str, Any] = {"mode": used, "counts": {labels[i]: int(counts.get(i, 0)) for i in range(len(labels))}}
    out = list(examples)
    if used == "sampling" and counts:
        top = max(counts.values())
        out = []
        for e in examples:
            rarest = min((counts[int(c)] for c in e.labels), default=top)
            out.extend([e] * max(1, min(MAX_REPEAT, round(top / max(1, rarest)))))
        seen = Counter(int(c) for e in out for c in e.labels)
        record["sampled_counts"] = {labels[i]: int(seen.get(i, 0)) for i in range(len(labels))}
        record["photos_per_epoch"] = len(out)
    ctx.class_balance = record
    return out
