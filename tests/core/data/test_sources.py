import io
import zipfile

import pytest

from core.config import Limits
from core.data.sources import DirSource, MemorySource, UnsafeArchiveError, ZipSource


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../evil.jpg", "a/../../evil.jpg", "/etc/passwd", "C:/x.jpg", "..\\evil.jpg"])
def test_zip_slip_is_refused(name):
    with pytest.raises(UnsafeArchiveError, match="zip-slip"):
        ZipSource(_zip({"ok.jpg": b"x", name: b"y"}))


def test_zip_bomb_ratio_and_total_size_are_refused():
    bomb = _zip({"big.txt": b"\0" * 50_000_000})
    assert len(bomb) < 200_000
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        ZipSource(bomb)
    many = _zip({f"f{i}.bin": bytes(range(256)) * 40 for i in range(5)}, zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchiveError, match="unpack"):
        ZipSource(many, limits=Limits(max_zip_total_bytes=10_000))


def test_upload_limit_and_garbage_zip():
    with pytest.raises(UnsafeArchiveError, match="upload limit"):
        ZipSource(_zip({"a": b"1" * 1000}), limits=Limits(max_upload_bytes=100))
    with pytest.raises(UnsafeArchiveError, match="not a readable zip"):
        ZipSource(b"PK\x03\x04 this is not a zip")


def test_resolve_by_path_relative_and_basename(tmp_path):
    src = MemorySource({"images/a.jpg": b"1", "ann/a.xml": b"", "other/b.JPG": b"2", "x/c.jpg": b"",
                        "y/c.jpg": b"", "__MACOSX/._a.jpg": b""})
    assert "__MACOSX/._a.jpg" not in src.files()
    assert src.resolve("images/a.jpg") == "images/a.jpg"
    assert src.resolve("/Users/someone/raccoon/images/a.jpg") == "images/a.jpg"
    assert src.resolve("b.jpg") == "other/b.JPG"
    assert src.resolve("c.jpg") is None  # ambiguous
    assert src.resolve("missing.jpg") is None


def test_dir_source_does_not_follow_symlinks_out(tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"s")
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"a")
    (root / "link.jpg").symlink_to(outside)
    assert DirSource(root).files() == ["a.jpg"]
