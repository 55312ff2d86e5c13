"""Deterministic, stratified train/val/test assignment."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Hashable, Mapping

from core.data.annotations import SPLITS


def _rank_key(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def stratified_split(strata: Mapping[str, Hashable], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                     seed: int = 0) -> dict[str, str]:
    """Assign each id to train/val/test, stratified by its stratum value.

    Within each stratum the ids are ordered by a seeded hash and cut by the
    ratios (largest-remainder rounding), so the result depends only on the
    ids, their strata and the seed — never on input order. Strata with one
    image go to train; with two, one goes to train and one to val when
    ``ratios[1] > 0``.
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError("ratios must be three non-negative numbers with a positive sum")
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)  # type: ignore[assignment]
    groups: dict[Hashable, list[str]] = defaultdict(list)
    for item_id, stratum in strata.items():
        groups[stratum].append(item_id)
    out: dict[str, str] = {}
    for ids in groups.values():
        ids.sort(key=lambda i: _rank_key(seed, i))
        counts = _allocate(len(ids), ratios)
        pos = 0
        for split, n in zip(SPLITS, counts):
            for i in ids[pos:pos + n]:
                out[i] = split
            pos += n
    return out


def _allocate(n: int, ratios: tuple[float, ...]) -> list[int]:
    """Largest-remainder allocation of ``n`` items, train first when tiny."""
    if n == 0:
        return [0, 0, 0]
    raw = [n * r for r in ratios]
    counts = [int(x) for x in raw]
    rest = n - sum(counts)
    order = sorted(range(3), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in order[:rest]:
        counts[k] += 1
    if counts[0] == 0 and ratios[0] > 0:  # never leave train empty
        donor = max(range(1, 3), key=lambda k: counts[k])
        counts[donor] -= 1
        counts[0] += 1
    return counts
