"""The labelling half of the store: classes (add, rename, delete) and annotations (save with a
revision check, undo, image-level class labels). Mixed into ``core.data.store.Store``."""

from __future__ import annotations

import sqlite3
import time
from typing import Sequence

from core.data import db
from core.data.annotations import Annotation, LabelMap, Project
from core.data.store_rows import ConflictError, StoreError, _ann_from_json, _ann_to_json


class LabelsMixin:
    """Classes and annotations of a project (needs ``Store.connect`` and ``Store._records``)."""

    # -- classes ----------------------------------------------------------
    def label_map(self, project: Project, conn: sqlite3.Connection | None = None) -> LabelMap:
        c = conn or self.connect()
        rows = c.execute(
            "SELECT name, class_id FROM classes WHERE project_id=? ORDER BY class_id", (project.id,)
        ).fetchall()
        return LabelMap({r["name"]: r["class_id"] for r in rows})

    def add_class(self, project: Project, name: str) -> int:
        """Add a class (no-op when present); returns its stable id."""
        name = name.strip()
        if not name:
            raise StoreError("A class needs a name.")
        with self.connect() as conn, db.transaction(conn):
            return self._ensure_class(conn, project, name)

    def _ensure_class(self, conn: sqlite3.Connection, project: Project, name: str) -> int:
        r = conn.execute(
            "SELECT class_id FROM classes WHERE project_id=? AND name=?", (project.id, name)
        ).fetchone()
        if r:
            return r["class_id"]
        nxt = conn.execute(
            "SELECT COALESCE(MAX(class_id), -1) + 1 FROM classes WHERE project_id=?", (project.id,)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO classes(project_id, class_id, name) VALUES (?,?,?)", (project.id, nxt, name)
        )
        return nxt

    def rename_class(self, project: Project, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise StoreError("A class needs a name.")
        with self.connect() as conn, db.transaction(conn):
            lm = self.label_map(project, conn)
            if old in lm:
                self._touch_class_images(conn, project, lm.id_of(old))
            try:
                cur = conn.execute(
                    "UPDATE classes SET name=? WHERE project_id=? AND name=?", (new, project.id, old)
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"A class named {new!r} already exists.") from None
            if cur.rowcount == 0:
                raise StoreError(f"No class {old!r}.")

    @staticmethod
    def _touch_class_images(conn: sqlite3.Connection, project: Project, class_id: int) -> None:
        """A new revision for every image labelled with ``class_id``: an editor that has one open
        (the Label page) sees the change instead of saving the old class name back."""
        conn.execute("UPDATE images SET revision = revision + 1 WHERE project_id=? AND image_id IN "
                     "(SELECT image_id FROM annotations WHERE project_id=? AND class_id=?)",
                     (project.id, project.id, class_id))

    def delete_class(self, project: Project, name: str, reassign_to: str | None = None) -> int:
        """Delete a class; its annotations move to ``reassign_to`` or are deleted. Returns count."""
        with self.connect() as conn, db.transaction(conn):
            lm = self.label_map(project, conn)
            if name not in lm:
                raise StoreError(f"No class {name!r}.")
            cid = lm.id_of(name)
            if reassign_to is not None:
                if reassign_to not in lm or reassign_to == name:
                    raise StoreError(f"Cannot move boxes to {reassign_to!r}.")
            self._touch_class_images(conn, project, cid)
            if reassign_to is not None:
                n = conn.execute(
                    "UPDATE annotations SET class_id=? WHERE project_id=? AND class_id=?",
                    (lm.id_of(reassign_to), project.id, cid),
                ).rowcount
            else:
                n = conn.execute(
                    "DELETE FROM annotations WHERE project_id=? AND class_id=?", (project.id, cid)
                ).rowcount
            conn.execute("DELETE FROM classes WHERE project_id=? AND class_id=?", (project.id, cid))
            return n

    # -- annotations ------------------------------------------------------
    def set_annotations(self, project: Project, image_id: str, annotations: Sequence[Annotation],
                        expected_revision: int | None = None) -> int:
        """Replace an image's annotations; returns the new revision.

        When ``expected_revision`` is given and the stored revision differs,
        raises ConflictError and changes nothing. The previous annotations are
        kept in the history so the change can be undone. Unknown classes are added.
        """
        with self.connect() as conn, db.transaction(conn):
            r = conn.execute("SELECT revision FROM images WHERE project_id=? AND image_id=?",
                             (project.id, image_id)).fetchone()
            if r is None:
                raise StoreError(f"No image {image_id[:12]}… in project {project.name!r}.")
            rev = r["revision"]
            if expected_revision is not None and expected_revision != rev:
                raise ConflictError(image_id, expected_revision, rev)
            old = self._records(conn, project, conn.execute(
                "SELECT * FROM images WHERE project_id=? AND image_id=?", (project.id, image_id)
            ).fetchall())[0]
            conn.execute(
                "INSERT OR REPLACE INTO annotation_history(project_id, image_id, revision, annotations,"
                " saved) VALUES (?,?,?,?,?)",
                (project.id, image_id, rev, _ann_to_json(old.annotations), time.time()),
            )
            self._replace(conn, project, image_id, annotations)
            reviewed = all(a.reviewed for a in annotations)
            conn.execute("UPDATE images SET revision=?, reviewed=? WHERE project_id=? AND image_id=?",
                         (rev + 1, 1 if reviewed else 0, project.id, image_id))
            return rev + 1

    def _replace(self, conn: sqlite3.Connection, project: Project, image_id: str,
                 annotations: Sequence[Annotation]) -> None:
        conn.execute("DELETE FROM annotations WHERE project_id=? AND image_id=?", (project.id, image_id))
        rows = []
        for a in annotations:
            cid = self._ensure_class(conn, project, a.label)
            rows.append((project.id, image_id, cid, *(a.box.as_tuple() if a.box else (None,) * 4),
                         1 if a.reviewed else 0, a.score))
        conn.executemany(
            "INSERT INTO annotations(project_id, image_id, class_id, x_min, y_min, x_max, y_max,"
            " reviewed, score) VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def can_undo(self, project: Project, image_id: str) -> bool:
        with self.connect() as conn:
            return conn.execute(
                "SELECT 1 FROM annotation_history WHERE project_id=? AND image_id=? LIMIT 1",
                (project.id, image_id)).fetchone() is not None

    def undo(self, project: Project, image_id: str, expected_revision: int | None = None) -> int:
        """Restore the annotations from before the last change; returns the new revision."""
        with self.connect() as conn:
            h = conn.execute(
                "SELECT revision, annotations FROM annotation_history WHERE project_id=? AND image_id=?"
                " ORDER BY revision DESC LIMIT 1", (project.id, image_id)).fetchone()
        if h is None:
            raise StoreError("Nothing to undo on this image.")
        anns = _ann_from_json(h["annotations"])
        with self.connect() as conn, db.transaction(conn):
            r = conn.execute("SELECT revision FROM images WHERE project_id=? AND image_id=?",
                             (project.id, image_id)).fetchone()
            rev = r["revision"]
            if expected_revision is not None and expected_revision != rev:
                raise ConflictError(image_id, expected_revision, rev)
            self._replace(conn, project, image_id, anns)
            conn.execute("DELETE FROM annotation_history WHERE project_id=? AND image_id=? AND revision=?",
                         (project.id, image_id, h["revision"]))
            conn.execute("UPDATE images SET revision=?, reviewed=? WHERE project_id=? AND image_id=?",
                         (rev + 1, 1 if all(a.reviewed for a in anns) else 0, project.id, image_id))
            return rev + 1

    def set_class_label(self, project: Project, image_ids: Sequence[str], label: str | None) -> int:
        """Classification: set (or clear, with None) the class of many images at once."""
        with self.connect() as conn, db.transaction(conn):
            cid = self._ensure_class(conn, project, label) if label else None
            n = 0
            for iid in image_ids:
                r = conn.execute("SELECT revision FROM images WHERE project_id=? AND image_id=?",
                                 (project.id, iid)).fetchone()
                if r is None:
                    continue
                conn.execute("DELETE FROM annotations WHERE project_id=? AND image_id=?", (project.id, iid))
                if cid is not None:
                    conn.execute("INSERT INTO annotations(project_id, image_id, class_id, reviewed)"
                                 " VALUES (?,?,?,1)", (project.id, iid, cid))
                conn.execute("UPDATE images SET revision=revision+1, reviewed=1"
                             " WHERE project_id=? AND image_id=?", (project.id, iid))
                n += 1
            return n
