"""The Edge TPU runtime pair of the robot image's ``coral`` profile, pinned, and how its .deb is found.

One pair, moved together (docs/CORAL_RUNTIME.md says why this one):

- libedgetpu1-std ``16.0tf2.19.1-1`` for Debian bookworm amd64, feranick's rebuild of Coral's
  libedgetpu against TensorFlow 2.19.1 (GitHub release asset);
- ai-edge-litert ``1.2.0``, the LiteRT release of the TensorFlow 2.19 line (cp311 manylinux x86-64
  wheel; its sha256 was computed here from the package registry's file).

The .deb comes, in this order, from an upload on the Deploy page, a local folder, or a download by
the pinned URL. Every one is checked by sha256 before it goes into a build context:

- a download must match the expected hash: the user-confirmed hash recorded for that file name if
  there is one, else the pin. A mismatch stops the build (``ChecksumMismatch`` says both hashes);
  the Deploy page shows the computed hash and the user may confirm it (``record_hash``), which is
  enforced from then on.
- a .deb the user brings (folder / upload) has its hash computed, shown and recorded on first
  use, and enforced from then on (a changed file under the same name stops the build).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

DEB_FOLDER = "deb"  # the .deb's folder inside a build context
HASHES_FILE = "confirmed_hashes.json"


@dataclass(frozen=True)
class DebPin:
    """A Debian package pinned by URL and sha256."""

    package: str
    version: str
    tf: str  # the TensorFlow it was built against
    url: str
    sha256: str
    sha256_source: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WheelPin:
    """A Python wheel pinned by version and sha256."""

    name: str
    version: str
    filename: str
    sha256: str
    tf: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


LIBEDGETPU = DebPin(
    package="libedgetpu1-std", version="16.0tf2.19.1-1", tf="2.19.1",
    url=("https://github.com/feranick/libedgetpu/releases/download/16.0TF2.19.1-1/"
         "libedgetpu1-std_16.0tf2.19.1-1.bookworm_amd64.deb"),
    # Not published by the release itself; this value is the one a public project pins for this
    # exact asset (see docs/CORAL_RUNTIME.md). It could not be recomputed here (no GitHub
    # downloads): a download that differs stops the build until the user confirms its hash.
    sha256="23be53c72eff4d44afc2f727700da185791d3ca0867bd0b5e082ec3a0de21925",
    sha256_source="reported by a public project's pinned-asset list; not recomputed on this machine",
)
RUNTIME_WHEEL = WheelPin(
    name="ai-edge-litert", version="1.2.0", tf="2.19",
    filename="ai_edge_litert-1.2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    sha256="3648518458b17bdab2e0fbab76d3ad520765298a2694a25571bd9ad3160a3c85",
)
# what else the coral image's server needs from PyPI (versions of the studio itself, as the offline profile)
CORAL_EXTRA_PACKAGES = ("numpy", "pillow")


class ChecksumMismatch(ValueError):
    """A file whose sha256 is not the expected one: the build stops."""

    def __init__(self, what: str, path: Path, expected: str, got: str, hint: str = ""):
        self.path, self.expected, self.got = Path(path), expected, got
        super().__init__(f"Checksum mismatch for {what} ({Path(path).name}): expected sha256 {expected}, "
                         f"got {got}. The build stopped; nothing was installed." + (f" {hint}" if hint else ""))


class DebNotFound(FileNotFoundError):
    """No libedgetpu .deb from any source (offline, no folder, no upload)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- recorded hashes -------------------------------------------------------------------------
def hashes_path(state_dir: str | os.PathLike[str]) -> Path:
    """Where confirmed/recorded hashes live (``<data>/coral/confirmed_hashes.json``)."""
    return Path(state_dir) / HASHES_FILE


def recorded_hashes(state_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(hashes_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def record_hash(state_dir: str | os.PathLike[str], filename: str, sha256: str, source: str) -> None:
    """Remember ``sha256`` for ``filename`` (confirmed by the user, or computed from a .deb they brought)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise ValueError(f"not a sha256: {sha256!r}")
    d = recorded_hashes(state_dir)
    d[filename] = {"sha256": sha256, "source": source, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    p = hashes_path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".part")
    tmp.write_text(json.dumps(d, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, p)


def expected_sha256(state_dir: str | os.PathLike[str] | None, filename: str, pin: DebPin | None = None) -> str | None:
    """The hash a file must have: the recorded one, else the pin's (for the pinned file name)."""
    pin = pin or LIBEDGETPU
    if state_dir is not None:
        rec = recorded_hashes(state_dir).get(filename)
        if rec:
            return rec["sha256"]
    return pin.sha256 if filename == pin.filename else None


# -- finding the .deb -------------------------------------------------------------------------
@dataclass
class ResolvedDeb:
    """The checked .deb a build uses."""

    path: Path
    sha256: str
    source: str  # "upload" | "folder" | "download" | "cache"
    recorded_now: bool = False  # its hash was recorded by this call (first use of a user's .deb)

    @property
    def filename(self) -> str:
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


_DEB_NAME = re.compile(r"^libedgetpu1-(std|max)_[A-Za-z0-9.+~-]+_amd64\.deb$")


def check_deb_name(name: str) -> str:
    """A libedgetpu .deb file name (``libedgetpu1-std_<version>.<suite>_amd64.deb``), else ValueError."""
    base = Path(name).name
    if not _DEB_NAME.match(base):
        raise ValueError(f"{base!r} is not a libedgetpu .deb for amd64 (expected a name like {LIBEDGETPU.filename})")
    return base


def _user_deb(path: Path, state_dir: Path | None, source: str) -> ResolvedDeb:
    got = sha256_file(path)
    want = expected_sha256(state_dir, path.name) if state_dir is not None else None
    rec = recorded_hashes(state_dir).get(path.name) if state_dir is not None else None
    if rec and got != rec["sha256"]:
        raise ChecksumMismatch("the libedgetpu package", path, rec["sha256"], got,
                               f"Its hash was recorded on {rec.get('recorded')} ({rec.get('source')}): the file "
                               "changed since. Bring the same file, or confirm the new hash on the Deploy page.")
    recorded_now = False
    if state_dir is not None and not rec:
        record_hash(state_dir, path.name, got, f"computed from the .deb you supplied ({source})")
        recorded_now = True
    del want  # a user-supplied .deb under the pinned name is the user's choice: recorded, not refused
    return ResolvedDeb(path, got, source, recorded_now)


def save_upload(state_dir: str | os.PathLike[str], name: str, data: bytes) -> ResolvedDeb:
    """Keep a .deb uploaded on the Deploy page under ``<state_dir>/uploads/`` and record its hash
    (a later upload under the same name with other bytes is refused: ChecksumMismatch)."""
    base = check_deb_name(name)
    folder = Path(state_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    rec = recorded_hashes(state_dir).get(base)
    got = hashlib.sha256(data).hexdigest()
    if rec and rec["sha256"] != got:
        raise ChecksumMismatch("the uploaded libedgetpu package", folder / base, rec["sha256"], got,
                               "A different file under this name was recorded before.")
    tmp = folder / (base + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, folder / base)
    return _user_deb(folder / base, Path(state_dir), "upload")


def find_in_folder(folder: str | os.PathLike[str]) -> Path:
    """The libedgetpu .deb in ``folder``: the pinned file name if present, else the only libedgetpu1-* amd64 .deb."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DebNotFound(f"{folder} is not a folder")
    if (folder / LIBEDGETPU.filename).is_file():
        return folder / LIBEDGETPU.filename
    debs = sorted(p for p in folder.glob("*.deb") if _DEB_NAME.match(p.name))
    if len(debs) == 1:
        return debs[0]
    if not debs:
        raise DebNotFound(f"no libedgetpu1-std/-max amd64 .deb in {folder} (expected {LIBEDGETPU.filename})")
    raise DebNotFound(f"{len(debs)} libedgetpu .debs in {folder}: keep one ({', '.join(p.name for p in debs)})")


def download(pin: DebPin, dest: Path, opener: Callable[..., Any] = urllib.request.urlopen, timeout: float = 120) -> Path:
    """Stream ``pin.url`` to ``dest`` (via ``.part``); no check here (``resolve_deb`` checks)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with opener(pin.url, timeout=timeout) as resp, open(tmp, "wb") as fh:
        for chunk in iter(lambda: resp.read(1 << 16), b""):
            fh.write(chunk)
    os.replace(tmp, dest)
    return dest


def resolve_deb(state_dir: str | os.PathLike[str], *, uploaded: str | os.PathLike[str] | None = None,
                folder: str | os.PathLike[str] | None = None, allow_download: bool = True,
                pin: DebPin | None = None, opener: Callable[..., Any] = urllib.request.urlopen,
                log: Callable[[str], None] | None = None) -> ResolvedDeb:
    """The checked libedgetpu .deb for a build: an upload, else a folder, else the pinned download
    (kept in ``<state_dir>/cache``). Raises ChecksumMismatch (build stops) or DebNotFound."""
    log = log or (lambda _l: None)
    pin = pin or LIBEDGETPU
    state = Path(state_dir)
    if uploaded:
        res = _user_deb(Path(uploaded), state, "upload")
        log(f"libedgetpu: uploaded {res.filename}, sha256 {res.sha256}")
        return res
    if folder:
        res = _user_deb(find_in_folder(folder), state, "folder")
        log(f"libedgetpu: {res.filename} from {folder}, sha256 {res.sha256}"
            + (" (recorded now)" if res.recorded_now else ""))
        return res
    cached = state / "cache" / pin.filename
    want = expected_sha256(state, pin.filename, pin)
    if cached.is_file():
        got = sha256_file(cached)
        if got == want:
            log(f"libedgetpu: {pin.filename} from the cache, sha256 {got}")
            return ResolvedDeb(cached, got, "cache")
        cached.unlink()
    if not allow_download:
        raise DebNotFound(f"no libedgetpu .deb: this build is offline. Download {pin.url} on a machine with "
                          "internet and put it in a folder (or upload it on the Deploy page).")
    log(f"libedgetpu: downloading {pin.url}")
    try:
        download(pin, cached, opener=opener)
    except OSError as exc:
        raise DebNotFound(f"could not download {pin.url} ({exc}). Bring the .deb yourself: a folder, or an "
                          "upload on the Deploy page.") from None
    got = sha256_file(cached)
    if got != want:
        bad = cached.with_name(cached.name + ".unconfirmed")
        os.replace(cached, bad)
        raise ChecksumMismatch("the downloaded libedgetpu package", bad, str(want), got,
                               "If you have checked this file yourself, confirm its hash on the Deploy page "
                               "to use it from now on.")
    log(f"libedgetpu: {pin.filename} downloaded, sha256 {got} (as pinned)")
    return ResolvedDeb(cached, got, "download")


def confirm_download(state_dir: str | os.PathLike[str], sha256: str, pin: DebPin | None = None) -> Path:
    """The user confirmed the hash of an unconfirmed download: record it and keep the file in the cache."""
    pin = pin or LIBEDGETPU
    state = Path(state_dir)
    bad = state / "cache" / (pin.filename + ".unconfirmed")
    if not bad.is_file() or sha256_file(bad) != sha256:
        raise ValueError("there is no downloaded file with that hash to confirm")
    record_hash(state, pin.filename, sha256, "confirmed by the user after download")
    os.replace(bad, state / "cache" / pin.filename)
    return state / "cache" / pin.filename


# -- the wheel --------------------------------------------------------------------------------
def check_wheel(wheelhouse: str | os.PathLike[str], pin: WheelPin = RUNTIME_WHEEL) -> Path:
    """The pinned runtime wheel in ``wheelhouse``, its sha256 checked (ChecksumMismatch otherwise)."""
    p = Path(wheelhouse) / pin.filename
    if not p.is_file():
        raise DebNotFound(f"{pin.filename} is not in the wheelhouse {wheelhouse}")
    got = sha256_file(p)
    if got != pin.sha256:
        raise ChecksumMismatch(f"the {pin.name} wheel", p, pin.sha256, got)
    return p


def hashed_requirements(wheelhouse: str | os.PathLike[str], requirements: list[str]) -> str:
    """``pip install --require-hashes`` lines: each wheel of the wheelhouse with its sha256."""
    lines = []
    for whl in sorted(Path(wheelhouse).glob("*.whl")):
        name, version = whl.name.split("-")[:2]
        lines.append(f"{name.replace('_', '-').lower()}=={version} --hash=sha256:{sha256_file(whl)}")
    if not lines:
        raise DebNotFound(f"the wheelhouse {wheelhouse} has no wheels")
    return "# pip install --no-index --require-hashes: every wheel checked by sha256\n" + "\n".join(lines) + "\n"


def coral_requirements(studio_versions: list[str]) -> list[str]:
    """The coral image's Python packages: the pinned runtime + the studio's numpy/pillow pins."""
    extra = [r for r in studio_versions if r.split("==")[0] in CORAL_EXTRA_PACKAGES]
    return [RUNTIME_WHEEL.requirement, *extra]


def pair_summary() -> dict[str, str]:
    """The pinned pair, for the pages, the Models page check and /healthz."""
    return {"libedgetpu": f"{LIBEDGETPU.package} {LIBEDGETPU.version}", "libedgetpu_tf": LIBEDGETPU.tf,
            "runtime": f"{RUNTIME_WHEEL.name} {RUNTIME_WHEEL.version}", "runtime_tf": RUNTIME_WHEEL.tf,
            "url": LIBEDGETPU.url, "sha256": LIBEDGETPU.sha256}


def compiler_and_runtime_note(manifest: dict[str, Any]) -> str:
    """For the Models page's Edge TPU check: the compiler version the model needs and the runtime
    the robot image carries."""
    pf = manifest.get("preflight") or {}
    comp = manifest.get("compiler") or {}
    if comp.get("ok") and comp.get("version"):
        need = f"Compiled with Edge TPU Compiler {comp['version']}."
    elif pf.get("compilable") is False:
        need = "No Edge TPU Compiler version takes this model as it is (see above); compiler 16.0 is the last one."
    else:
        need = ("It needs Edge TPU Compiler 16.0 (the last release; its op versions are within what 16.0 "
                "parses).")
    return (f"{need} The robot image's coral profile carries {LIBEDGETPU.package} {LIBEDGETPU.version} "
            f"(Edge TPU runtime 16, built for TensorFlow {LIBEDGETPU.tf}) with {RUNTIME_WHEEL.name} "
            f"{RUNTIME_WHEEL.version}: it runs what compiler 16.0 makes.")
