"""Read-only views of an import's files: a folder, a zip, or uploaded files in memory.

Paths inside a Source are relative posix paths. System files that operating systems
leave in folders and zips (``__MACOSX/``, ``._*``, ``.DS_Store``, ``Thumbs.db``) are not
part of ``files()``; ``system_files()`` lists them for the import report. A zip is
checked as a whole before anything is read: members with ``..``, absolute paths or drive letters
(zip-slip) and archives whose sizes or compression ratios look like a zip bomb
are refused with ``UnsafeArchiveError``.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol

from core.config import Limits

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IGNORED_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db"}


class UnsafeArchiveError(ValueError):
    """An archive refused as a whole (zip-slip, zip bomb, too large, unreadable)."""


class Source(Protocol):
    """Files of an import, addressed by relative posix paths."""

    name: str

    def files(self) -> list[str]: ...

    def system_files(self) -> list[str]: ...

    def read_bytes(self, path: str) -> bytes: ...

    def size(self, path: str) -> int: ...


def is_image_path(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in IMAGE_EXTENSIONS


def _ignored(path: str) -> bool:
    """A system file (macOS/Windows leftovers), left out of ``files()``."""
    parts = PurePosixPath(path).parts
    return any(p in IGNORED_PARTS or p.startswith("._") for p in parts)


def system_kind(path: str) -> str:
    """What kind of system file ``path`` is, for a summary: ``__MACOSX/``, ``._*``, ``.DS_Store``…"""
    for p in PurePosixPath(path).parts:
        if p in IGNORED_PARTS:
            return p + "/" if p == "__MACOSX" else p
        if p.startswith("._"):
            return "._*"
    return PurePosixPath(path).name


class _IndexMixin:
    """Name lookups shared by all sources."""

    def files(self) -> list[str]:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def image_files(self) -> list[str]:
        return [f for f in self.files() if is_image_path(f)]

    def system_files(self) -> list[str]:
        """The system files left out of ``files()`` (none unless a subclass says so)."""
        return []

    def resolve(self, name: str, relative_to: str | None = None) -> str | None:
        """Find the file an annotation names: exact path, relative to the annotation, or by basename.

        Returns None when there is no match or the basename is ambiguous.
        """
        name = name.replace("\\", "/").strip()
        if not name:
            return None
        index = getattr(self, "_index", None)
        if index is None:
            files = self.files()
            by_base: dict[str, list[str]] = {}
            by_lower: dict[str, list[str]] = {}
            for f in files:
                base = posixpath.basename(f)
                by_base.setdefault(base, []).append(f)
                by_lower.setdefault(base.lower(), []).append(f)
            index = (set(files), by_base, by_lower)
            self._index = index  # type: ignore[attr-defined]
        all_files, by_base, by_lower = index
        candidates = [name.lstrip("/")]
        if relative_to:
            candidates.append(posixpath.normpath(posixpath.join(posixpath.dirname(relative_to), name)))
            candidates.append(posixpath.normpath(
                posixpath.join(posixpath.dirname(relative_to), "..", "images", posixpath.basename(name))))
        for c in candidates:
            if c in all_files:
                return c
        base = posixpath.basename(name)
        for table, key in ((by_base, base), (by_lower, base.lower())):
            hits = table.get(key, [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1 and relative_to:
                near = [h for h in hits if posixpath.dirname(h).startswith(posixpath.dirname(posixpath.dirname(relative_to)))]
                if len(near) == 1:
                    return near[0]
        return None


class DirSource(_IndexMixin):
    """A folder on disk (symlinks leaving the folder are not followed)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"No such folder: {root}")
        self.name = self.root.name
        self._files: list[str] | None = None
        self._system: list[str] = []

    def files(self) -> list[str]:
        if self._files is None:
            out, system = [], []
            for p in sorted(self.root.rglob("*")):
                if p.is_file() and p.resolve().is_relative_to(self.root):
                    rel = p.relative_to(self.root).as_posix()
                    (system if _ignored(rel) else out).append(rel)
            self._files, self._system = out, system
        return self._files

    def system_files(self) -> list[str]:
        self.files()
        return list(self._system)

    def _path(self, path: str) -> Path:
        p = (self.root / path).resolve()
        if not p.is_relative_to(self.root):
            raise UnsafeArchiveError(f"path leaves the folder: {path}")
        return p

    def read_bytes(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def size(self, path: str) -> int:
        return self._path(path).stat().st_size


def _unsafe_member(name: str) -> bool:
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return True
    return ".." in PurePosixPath(n).parts


def is_unsafe_name(name: str) -> bool:
    """A file name that would leave its folder (absolute, a drive, or ``..``): refused."""
    return _unsafe_member(name)


class ZipSource(_IndexMixin):
    """A zip archive, validated as a whole when opened."""

    def __init__(self, data: bytes | str | Path, name: str = "upload.zip", limits: Limits | None = None):
        self.limits = limits or Limits()
        if isinstance(data, (str, Path)):
            name = Path(data).name
            if Path(data).stat().st_size > self.limits.max_upload_bytes:
                raise UnsafeArchiveError(f"{name}: larger than the upload limit")
            data = Path(data).read_bytes()
        self.name = name
        if len(data) > self.limits.max_upload_bytes:
            raise UnsafeArchiveError(
                f"{name}: {len(data) / 1e6:.1f} MB is larger than the upload limit "
                f"({self.limits.max_upload_bytes / 1e6:.0f} MB)")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
            raise UnsafeArchiveError(f"{name}: not a readable zip archive ({exc})") from None
        self._check(infos)
        self._infos = {i.filename.replace("\\", "/"): i for i in infos
                       if not i.is_dir() and not _ignored(i.filename)}
        self._system = sorted(i.filename.replace("\\", "/") for i in infos
                              if not i.is_dir() and _ignored(i.filename))

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        lim = self.limits
        bad = [i.filename for i in infos if _unsafe_member(i.filename)]
        if bad:
            raise UnsafeArchiveError(
                f"{self.name}: refused, it contains paths that leave the archive folder "
                f"(zip-slip): {', '.join(bad[:3])}")
        if len(infos) > lim.max_zip_members:
            raise UnsafeArchiveError(f"{self.name}: refused, too many files ({len(infos):,})")
        total = sum(i.file_size for i in infos)
        if total > lim.max_zip_total_bytes:
            raise UnsafeArchiveError(
                f"{self.name}: refused, it would unpack to {total / 1e9:.1f} GB "
                f"(limit {lim.max_zip_total_bytes / 1e9:.1f} GB) — possible zip bomb")
        for i in infos:
            if i.file_size > 1_000_000 and i.file_size > lim.max_zip_ratio * max(i.compress_size, 1):
                raise UnsafeArchiveError(
                    f"{self.name}: refused, {i.filename} expands {i.file_size / max(i.compress_size, 1):,.0f}×"
                    " when unpacked — possible zip bomb")

    def files(self) -> list[str]:
        return sorted(self._infos)

    def system_files(self) -> list[str]:
        return list(self._system)

    def size(self, path: str) -> int:
        return self._infos[path].file_size

    def read_bytes(self, path: str) -> bytes:
        info = self._infos[path]
        with self._zip.open(info) as fh:
            data = fh.read(info.file_size + 1)
        if len(data) > info.file_size:
            raise UnsafeArchiveError(f"{path}: larger than declared in the archive")
        return data


class MemorySource(_IndexMixin):
    """Uploaded files held in memory: ``{name: bytes}``."""

    def __init__(self, files: dict[str, bytes] | Iterable[tuple[str, bytes]], name: str = "upload"):
        items = dict(files)
        self._data = {}
        for k, v in items.items():
            k = k.replace("\\", "/")
            if _unsafe_member(k):
                raise UnsafeArchiveError(f"refused file name: {k}")
            self._data[k.removeprefix("./")] = v
        self.name = name

    def files(self) -> list[str]:
        return sorted(f for f in self._data if not _ignored(f))

    def system_files(self) -> list[str]:
        return sorted(f for f in self._data if _ignored(f))

    def read_bytes(self, path: str) -> bytes:
        return self._data[path]

    def size(self, path: str) -> int:
        return len(self._data[path])


def open_source(path_or_bytes: str | Path | bytes, name: str | None = None,
                limits: Limits | None = None) -> _IndexMixin:
    """A Source for a folder, a zip file path, or zip bytes."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return ZipSource(bytes(path_or_bytes), name or "upload.zip", limits)
    p = Path(path_or_bytes)
    if p.is_dir():
        return DirSource(p)
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        return ZipSource(p, limits=limits)
    # a single annotation/image file: a source of its folder restricted to it is not useful;
    # use the folder so images beside it resolve.
    return DirSource(p.parent)
