"""The dataset store: SQLite (WAL) metadata plus content-addressed image files.

Layout under the data directory::

    studio.db                 projects, classes, images, annotations, history
    images/ab/abcdef…         image bytes, named by their sha256 (never modified)

Every write that touches several rows runs in one transaction; image files are
written atomically (temp file + rename) before the rows that reference them, and
removed again when the transaction fails, so a failed import leaves the store as
it was.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

from core.config import data_dir as default_data_dir
from core.data import db
from core.data.annotations import SPLITS, Annotation, ImageRecord, Project, Task
from core.data.boxes import Box
from core.data.store_labels import LabelsMixin
from core.data.store_rows import AddResult, ConflictError, NewImage, StoreError, sha256_bytes
from core.data.store_splits import SplitsMixin
from core.data.store_recovery import writing

__all__ = ["AddResult", "ConflictError", "NewImage", "SCHEMA", "Store", "StoreError", "sha256_bytes"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    created REAL NOT NULL,
    split_seed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS classes (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (project_id, class_id),
    UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS images (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    image_id TEXT NOT NULL,
    content TEXT NOT NULL,
    filename TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    split TEXT NOT NULL DEFAULT 'train',
    split_locked INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL DEFAULT 0,
    reviewed INTEGER NOT NULL DEFAULT 1,
    added REAL NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, image_id)
);
CREATE INDEX IF NOT EXISTS images_seq ON images(project_id, seq);
CREATE INDEX IF NOT EXISTS images_content ON images(project_id, content);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    class_id INTEGER NOT NULL,
    x_min REAL, y_min REAL, x_max REAL, y_max REAL,
    reviewed INTEGER NOT NULL DEFAULT 1,
    score REAL,
    FOREIGN KEY (project_id, image_id) REFERENCES images(project_id, image_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ann_image ON annotations(project_id, image_id, class_id);
CREATE INDEX IF NOT EXISTS ann_class_image ON annotations(project_id, class_id, image_id);
CREATE TABLE IF NOT EXISTS annotation_history (
    project_id INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    annotations TEXT NOT NULL,
    saved REAL NOT NULL,
    PRIMARY KEY (project_id, image_id, revision)
);
"""


class Store(LabelsMixin, SplitsMixin):
    """Projects, classes, images and annotations under one data directory."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = default_data_dir(root)
        self.images_dir = self.root / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(SCHEMA)

    # -- plumbing ---------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new SQLite connection (use one per thread / operation)."""
        return db.connect(self.root)

    def blob_path(self, content: str) -> Path:
        """Where the bytes with sha256 ``content`` live."""
        return self.images_dir / content[:2] / content

    def image_path(self, image_id: str) -> Path:
        """Where the bytes of image record ``image_id`` live.

        A record's id is the sha256 of its bytes, except for a renamed copy of an
        image already in the project (see ``add_images``), which shares the blob.
        """
        path = self.blob_path(image_id)
        if path.exists():
            return path
        with self.connect() as conn:
            r = conn.execute("SELECT content FROM images WHERE image_id=? LIMIT 1", (image_id,)).fetchone()
        return self.blob_path(r["content"]) if r else path

    def read_image_bytes(self, image_id: str) -> bytes:
        return self.image_path(image_id).read_bytes()

    def _write_blob(self, content: str, data: bytes) -> bool:
        """Write image bytes atomically; False when the file already exists."""
        path = self.blob_path(content)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    # -- projects ---------------------------------------------------------
    def create_project(self, name: str, task: Task | str) -> Project:
        """Create a project; raises StoreError when the name is taken or empty."""
        name = name.strip()
        if not name:
            raise StoreError("A project needs a name.")
        task = Task(task)
        with self.connect() as conn:
            # names that differ only in case would look like one project in the pickers
            clash = next((r[0] for r in conn.execute("SELECT name FROM projects")
                          if r[0].casefold() == name.casefold() and r[0] != name), None)
            if clash is not None:
                raise StoreError(f"A project named {clash!r} already exists (names ignore upper/lower case).")
            try:
                cur = conn.execute(
                    "INSERT INTO projects(name, task, created) VALUES (?,?,?)",
                    (name, task.value, time.time()),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"A project named {name!r} already exists.") from None
            return Project(id=cur.lastrowid, name=name, task=task, created=time.time())

    def list_projects(self) -> list[Project]:
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM projects ORDER BY name").fetchall()
        return [Project(r["id"], r["name"], Task(r["task"]), r["created"]) for r in rows]

    def get_project(self, name_or_id: str | int) -> Project:
        """The project by name or id; raises StoreError when missing."""
        col = "id" if isinstance(name_or_id, int) else "name"
        with self.connect() as conn:
            r = conn.execute(f"SELECT * FROM projects WHERE {col}=?", (name_or_id,)).fetchone()
        if r is None:
            raise StoreError(f"No project {name_or_id!r}.")
        return Project(r["id"], r["name"], Task(r["task"]), r["created"])

    def get_or_create_project(self, name: str, task: Task | str) -> Project:
        try:
            p = self.get_project(name)
        except StoreError:
            return self.create_project(name, task)
        if p.task != Task(task):
            raise StoreError(f"Project {name!r} is a {p.task.value} project, not {Task(task).value}.")
        return p

    def delete_project(self, project: Project) -> None:
        """Delete a project's rows (image files shared by content stay until garbage-collected)."""
        with self.connect() as conn, db.transaction(conn):
            conn.execute("DELETE FROM annotation_history WHERE project_id=?", (project.id,))
            conn.execute("DELETE FROM annotations WHERE project_id=?", (project.id,))
            conn.execute("DELETE FROM images WHERE project_id=?", (project.id,))
            conn.execute("DELETE FROM classes WHERE project_id=?", (project.id,))
            conn.execute("DELETE FROM projects WHERE id=?", (project.id,))


    # -- images -----------------------------------------------------------
    def add_images(self, project: Project, items: Iterable[NewImage]) -> AddResult:
        """Add images and their annotations in one transaction.

        An image already in the project (same bytes) is not added again and its
        annotations are left untouched. New image files are removed again when
        the transaction fails.
        """
        result = AddResult()
        written: list[Path] = []
        now = time.time()
        try:
            with writing(self.root), self.connect() as conn, db.transaction(conn):
                existing_classes = set(self.label_map(project, conn).names)
                class_ids: dict[str, int] = {}
                seq = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM images WHERE project_id=?", (project.id,)
                ).fetchone()[0]
                img_rows, ann_rows = [], []
                seen: dict[str, str] = {}  # record ids (and contents) added by this call -> filename
                for item in items:
                    content = sha256_bytes(item.data)
                    iid, twin = self._record_id(conn, project, content, item.filename, seen)
                    if iid is None:
                        result.images_existing += 1
                        continue
                    if twin is not None:
                        result.duplicates.append((item.filename, twin))
                    seen[iid] = item.filename
                    seen.setdefault(content, item.filename)
                    if self._write_blob(content, item.data):
                        written.append(self.blob_path(content))
                    seq += 1
                    split = item.split if item.split in SPLITS else "train"
                    img_rows.append((project.id, iid, content, item.filename, item.width, item.height, split,
                                     1 if item.split in SPLITS else 0, now, seq))
                    for a in item.annotations:
                        if a.label not in class_ids:
                            class_ids[a.label] = self._ensure_class(conn, project, a.label)
                            if a.label not in existing_classes:
                                result.classes_added.append(a.label)
                        b = a.box
                        ann_rows.append((project.id, iid, class_ids[a.label],
                                         *(b.as_tuple() if b else (None,) * 4),
                                         1 if a.reviewed else 0, a.score))
                        if b is None:
                            result.labels_added += 1
                        else:
                            result.boxes_added += 1
                    result.images_added += 1
                    result.unlabelled_added += 0 if item.annotations else 1
                    result.image_ids.append(iid)
                conn.executemany(
                    "INSERT INTO images(project_id, image_id, content, filename, width, height, split,"
                    " split_locked, added, seq) VALUES (?,?,?,?,?,?,?,?,?,?)", img_rows)
                conn.executemany(
                    "INSERT INTO annotations(project_id, image_id, class_id, x_min, y_min, x_max,"
                    " y_max, reviewed, score) VALUES (?,?,?,?,?,?,?,?,?)", ann_rows)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        return result

    @staticmethod
    def _record_id(conn: sqlite3.Connection, project: Project, content: str, filename: str,
                   seen: dict[str, str]) -> tuple[str | None, str | None]:
        """The record id for new bytes, or (None, None) when this image is already in the project.

        The same bytes under the same file name are the same image (a re-import:
        no-op). The same bytes under another name (a renamed copy, possibly with
        other boxes) become a separate record that shares the stored file; the
        second value names the image it copies.
        """
        if content not in seen:
            first = conn.execute("SELECT filename FROM images WHERE project_id=? AND image_id=?",
                                 (project.id, content)).fetchone()
            if first is None:
                return content, None
            twin = first["filename"]
        else:
            twin = seen[content]
        if twin == filename:
            return None, None
        dup_id = sha256_bytes(f"{content}:{filename}".encode())
        if dup_id in seen or conn.execute("SELECT 1 FROM images WHERE project_id=? AND image_id=?",
                                          (project.id, dup_id)).fetchone():
            return None, None
        return dup_id, twin

    def _records(self, conn: sqlite3.Connection, project: Project, rows: list) -> list[ImageRecord]:
        if not rows:
            return []
        lm = {v: k for k, v in self.label_map(project, conn).ids.items()}
        ids = [r["image_id"] for r in rows]
        anns: dict[str, list[Annotation]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk:chunk + 900]
            q = ",".join("?" * len(part))
            for a in conn.execute(
                f"SELECT * FROM annotations WHERE project_id=? AND image_id IN ({q}) ORDER BY id",
                (project.id, *part),
            ):
                box = None if a["x_min"] is None else Box(a["x_min"], a["y_min"], a["x_max"], a["y_max"])
                anns[a["image_id"]].append(
                    Annotation(lm.get(a["class_id"], f"#{a['class_id']}"), box,
                               bool(a["reviewed"]), a["score"])
                )
        return [
            ImageRecord(id=r["image_id"], content=r["content"], filename=r["filename"], width=r["width"],
                        height=r["height"], split=r["split"], annotations=tuple(anns[r["image_id"]]),
                        revision=r["revision"], reviewed=bool(r["reviewed"]))
            for r in rows
        ]

    def _where(self, project: Project, split: str | None, label: str | None,
               unlabelled: bool | None, unreviewed: bool | None) -> tuple[str, list]:
        where, args = ["i.project_id=?"], [project.id]
        if split:
            where.append("i.split=?")
            args.append(split)
        if label:
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.project_id=i.project_id"
                         " AND a.image_id=i.image_id AND a.class_id=(SELECT class_id FROM classes"
                         " WHERE project_id=? AND name=?))")
            args += [project.id, label]
        if unlabelled is True:
            where.append("NOT EXISTS (SELECT 1 FROM annotations a WHERE a.project_id=i.project_id"
                         " AND a.image_id=i.image_id)")
        elif unlabelled is False:
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.project_id=i.project_id"
                         " AND a.image_id=i.image_id)")
        if unreviewed:
            where.append("i.reviewed=0")
        return " AND ".join(where), args

    def list_images(self, project: Project, *, split: str | None = None, label: str | None = None,
                    unlabelled: bool | None = None, unreviewed: bool | None = None,
                    offset: int = 0, limit: int | None = None) -> list[ImageRecord]:
        """Images in import order with their annotations, optionally filtered and paged."""
        where, args = self._where(project, split, label, unlabelled, unreviewed)
        sql = f"SELECT i.* FROM images i WHERE {where} ORDER BY i.seq"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        with self.connect() as conn:
            return self._records(conn, project, conn.execute(sql, args).fetchall())

    def count_images(self, project: Project, *, split: str | None = None, label: str | None = None,
                     unlabelled: bool | None = None, unreviewed: bool | None = None) -> int:
        where, args = self._where(project, split, label, unlabelled, unreviewed)
        with self.connect() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM images i WHERE {where}", args).fetchone()[0]

    def image_ids(self, project: Project, *, split: str | None = None, label: str | None = None,
                  unlabelled: bool | None = None, unreviewed: bool | None = None) -> list[str]:
        """Ids of the (filtered) images in import order: cheap, for navigation."""
        where, args = self._where(project, split, label, unlabelled, unreviewed)
        with self.connect() as conn:
            return [r[0] for r in conn.execute(
                f"SELECT i.image_id FROM images i WHERE {where} ORDER BY i.seq", args)]

    def get_image(self, project: Project, image_id: str) -> ImageRecord:
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM images WHERE project_id=? AND image_id=?",
                                (project.id, image_id)).fetchall()
            if not rows:
                raise StoreError(f"No image {image_id[:12]}… in project {project.name!r}.")
            return self._records(conn, project, rows)[0]

    def delete_images(self, project: Project, image_ids: Sequence[str]) -> int:
        with self.connect() as conn, db.transaction(conn):
            n = 0
            for iid in image_ids:
                conn.execute("DELETE FROM annotations WHERE project_id=? AND image_id=?", (project.id, iid))
                conn.execute("DELETE FROM annotation_history WHERE project_id=? AND image_id=?",
                             (project.id, iid))
                n += conn.execute("DELETE FROM images WHERE project_id=? AND image_id=?",
                                  (project.id, iid)).rowcount
            return n
