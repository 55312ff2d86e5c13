"""The dataset side of the store: train/val/test splits, statistics and the dataset hash.
Mixed into ``core.data.store.Store``."""

from __future__ import annotations

import hashlib
from typing import Sequence

from core.data import db
from core.data.annotations import Project, SPLITS
from core.data.store_rows import StoreError


class SplitsMixin:
    """Splits, statistics and the dataset hash of a project (needs ``Store.connect``)."""

    def set_split(self, project: Project, image_ids: Sequence[str], split: str) -> int:
        """Put images in ``split`` by hand (locks them against automatic re-splitting)."""
        if split not in SPLITS:
            raise StoreError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        with self.connect() as conn, db.transaction(conn):
            return sum(conn.execute(
                "UPDATE images SET split=?, split_locked=1 WHERE project_id=? AND image_id=?",
                (split, project.id, iid)).rowcount for iid in image_ids)

    def assign_splits(self, project: Project, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      seed: int = 0, include_locked: bool = False,
                      only_ids: set[str] | None = None) -> dict[str, int]:
        """Deterministic stratified split of the (unlocked) images; returns counts per split.

        Images are stratified by their first class (or "unlabelled"). ``only_ids``
        restricts the assignment to those images (e.g. the ones just imported), so
        earlier images keep their split.
        """
        from core.data.split import stratified_split

        with self.connect() as conn, db.transaction(conn):
            lock_clause = "" if include_locked else " AND i.split_locked=0"
            rows = conn.execute(
                "SELECT i.image_id, i.content, (SELECT MIN(a.class_id) FROM annotations a WHERE"
                " a.project_id=i.project_id AND a.image_id=i.image_id) AS cls"
                f" FROM images i WHERE i.project_id=?{lock_clause} ORDER BY i.seq", (project.id,)).fetchall()
            rows = [r for r in rows if only_ids is None or r[0] in only_ids]
            # copies of the same pixels always share a split (no train/test leak)
            strata: dict[str, object] = {}
            for r in rows:
                strata.setdefault(r["content"], r["cls"])
            by_content = stratified_split(strata, ratios, seed)
            assignment = {r["image_id"]: by_content[r["content"]] for r in rows}
            for split in SPLITS:
                ids = [i for i, s in assignment.items() if s == split]
                conn.executemany(
                    "UPDATE images SET split=?, split_locked=CASE WHEN ? THEN 0 ELSE split_locked END"
                    " WHERE project_id=? AND image_id=?",
                    [(split, include_locked, project.id, i) for i in ids])
            conn.execute("UPDATE projects SET split_seed=? WHERE id=?", (seed, project.id))
        return {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}

    # -- statistics -------------------------------------------------------
    def stats(self, project: Project) -> dict:
        """Counts for a summary: images, labelled, boxes, per class and per split."""
        with self.connect() as conn:
            pid = project.id
            images = conn.execute("SELECT COUNT(*) FROM images WHERE project_id=?", (pid,)).fetchone()[0]
            labelled = conn.execute(
                "SELECT COUNT(DISTINCT image_id) FROM annotations WHERE project_id=?", (pid,)).fetchone()[0]
            boxes = conn.execute("SELECT COUNT(*) FROM annotations WHERE project_id=? AND x_min IS NOT NULL",
                                 (pid,)).fetchone()[0]
            counts = {r[0]: (r[1], r[2]) for r in conn.execute(
                "SELECT class_id, COUNT(*), COUNT(DISTINCT image_id) FROM annotations"
                " WHERE project_id=? GROUP BY class_id", (pid,))}
            per_class = {
                r["name"]: dict(zip(("annotations", "images"), counts.get(r["class_id"], (0, 0))))
                for r in conn.execute("SELECT class_id, name FROM classes WHERE project_id=? ORDER BY class_id",
                                      (pid,))
            }
            per_split = {s: 0 for s in SPLITS}
            per_split.update({r[0]: r[1] for r in conn.execute(
                "SELECT split, COUNT(*) FROM images WHERE project_id=? GROUP BY split", (pid,))})
            unreviewed = conn.execute("SELECT COUNT(*) FROM images WHERE project_id=? AND reviewed=0",
                                      (pid,)).fetchone()[0]
        return {
            "project": project.name, "task": project.task.value, "images": images,
            "labelled_images": labelled, "boxes": boxes, "classes": len(per_class),
            "per_class": per_class, "per_split": per_split, "unreviewed_images": unreviewed,
        }

    def dataset_hash(self, project: Project) -> str:
        """A content hash of the project's images, splits and annotations (for manifests)."""
        h = hashlib.sha256()
        for rec in self.list_images(project):
            h.update(f"{rec.id}|{rec.split}|".encode())
            for a in sorted(rec.annotations, key=lambda a: (a.label, a.box.as_tuple() if a.box else ())):
                h.update(f"{a.label}:{a.box.as_tuple() if a.box else ''};".encode())
        return h.hexdigest()
