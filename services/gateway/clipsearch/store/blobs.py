"""Original image bytes and thumbnails, content-addressed by sha256.

:class:`BlobStore` is the contract (so S3/MinIO can come later); :class:`FileBlobStore`
keeps ``data_dir/blobs/ab/cd/<sha256>`` and ``data_dir/thumbs/ab/cd/<sha256>.jpg``. Writes
go to a temporary file in the target directory and are renamed into place, so a reader
never sees half a file and a crash leaves at most a ``.tmp`` file (swept on start).

Durability: ``put`` returns only once the original is on disk under its name (file
fsynced before the rename, directories after it), so a caller may then record the image
as stored. A thumbnail is derived data: written without fsync (one fewer disk flush per
picture on ingest), and one that a crash left empty or cut short is not served but
rebuilt from the original.

Methods are synchronous (file I/O); async callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from PIL import Image, ImageOps

BLOB_ID_RE = re.compile(r"^[0-9a-f]{64}$")
THUMB_SIZE = 256
THUMB_QUALITY = 85


class BlobNotFound(LookupError):
    """No blob (or thumbnail) with that id."""


def blob_id_of(data: bytes) -> str:
    """The id a blob gets: lowercase hex sha256 of its bytes (also the image id)."""
    return hashlib.sha256(data).hexdigest()


def check_blob_id(blob_id: str) -> str:
    # Ids become file paths: anything but 64 hex digits could walk out of the store.
    if not isinstance(blob_id, str) or not BLOB_ID_RE.fullmatch(blob_id):
        raise ValueError(f"invalid blob id {blob_id!r}: expected 64 lowercase hex digits")
    return blob_id


def make_thumbnail(data: bytes, size: int = THUMB_SIZE, max_pixels: int = 40_000_000) -> bytes:
    """A JPEG whose longest side is at most ``size``, EXIF-rotated, alpha on white.

    The caller passes an image it already validated; ``max_pixels`` is checked again
    before decoding anyway, since a thumbnail may be rebuilt from stored bytes later.
    A caller that has already decoded the picture should use :func:`thumbnail_of`.
    """
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > max_pixels:
            raise ValueError(f"image has {img.width}x{img.height} pixels, over {max_pixels}")
        # For JPEG, decode at a reduced scale straight away: far less memory and time.
        img.draft("RGB", (size, size))
        frame = ImageOps.exif_transpose(img)  # also picks the first frame of animations
        return thumbnail_of(frame, size, in_place=True)


def thumbnail_of(image: Image.Image, size: int = THUMB_SIZE, *, in_place: bool = False) -> bytes:
    """:func:`make_thumbnail` of a picture already decoded and upright (EXIF applied).

    Decoding the file again costs more than the thumbnail itself (ingest measures it), so
    a caller holding the decoded picture passes it here. ``image`` is left untouched
    unless ``in_place``; an image with wide samples (16-bit) should be reduced to 8 bits
    first, as the decoder does, since JPEG holds 8 bits.
    """
    # thumbnail() shrinks in place; a picture already small enough is left as it is.
    frame = image if in_place or max(image.size) <= size else image.copy()
    frame.thumbnail((size, size), Image.Resampling.LANCZOS)
    if frame.mode in ("RGBA", "LA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        frame = background
    elif frame.mode != "RGB":
        frame = frame.convert("RGB")
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return out.getvalue()


@runtime_checkable
class BlobStore(Protocol):
    """Immutable blobs addressed by the sha256 of their bytes, plus one thumbnail each."""

    kind: str

    def put(self, data: bytes) -> str:
        """Store ``data`` (once: same bytes, same id) and return its id."""

    def exists(self, blob_id: str) -> bool: ...

    def get(self, blob_id: str) -> bytes:
        """The bytes; :class:`BlobNotFound` if absent."""

    def open(self, blob_id: str) -> BinaryIO:
        """A binary file object to stream from; :class:`BlobNotFound` if absent."""

    def local_path(self, blob_id: str) -> Path | None:
        """A filesystem path to serve directly, when the store has one."""

    def delete(self, blob_id: str) -> bool:
        """Remove the blob and its thumbnail; False if it was not there."""

    def total_bytes(self) -> int:
        """Bytes held by blobs (not thumbnails)."""

    def put_thumbnail(self, blob_id: str, data: bytes, image: Image.Image | None = None) -> None:
        """Make and store the thumbnail of image ``data`` stored as ``blob_id``; ``image``,
        when the caller has it, is ``data`` already decoded and upright (not decoded again).
        Not necessarily durable: a thumbnail can always be rebuilt from the original."""

    def get_thumbnail(self, blob_id: str) -> bytes:
        """The JPEG thumbnail; :class:`BlobNotFound` if absent or damaged."""

    def thumbnail_path(self, blob_id: str) -> Path | None: ...


class FileBlobStore:
    """:class:`BlobStore` on a local directory (``data_dir``)."""

    kind = "file"

    def __init__(self, data_dir: Path, *, thumb_size: int = THUMB_SIZE) -> None:
        self.blob_dir = Path(data_dir) / "blobs"
        self.thumb_dir = Path(data_dir) / "thumbs"
        self.thumb_size = thumb_size
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.thumb_dir.mkdir(parents=True, exist_ok=True)
        _fsync_dir(self.blob_dir.parent)  # the roots' own entries, once per process
        self._lock = threading.Lock()
        self._roots = frozenset((self.blob_dir, self.thumb_dir))
        # Fan-out directories whose entry in their parent is known to be durable: at most
        # 256 + 65536 per root, each fsynced once per process (set.update is atomic).
        self._synced_dirs: set[Path] = set()
        self._total: int | None = None  # computed on first use, then kept up to date
        self._sweep_temp_files()

    def _sweep_temp_files(self) -> None:
        for root in (self.blob_dir, self.thumb_dir):
            for tmp in root.rglob("*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.blob_dir / blob_id[:2] / blob_id[2:4] / blob_id

    def _thumb(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.thumb_dir / blob_id[:2] / blob_id[2:4] / f"{blob_id}.jpg"

    def _write_atomic(self, path: Path, data: bytes, *, durable: bool = True) -> None:
        fresh = self._unsynced_dirs(path.parent) if durable else []
        for d in reversed(fresh):  # parents first
            d.mkdir(exist_ok=True)  # another writer may be making it at the same time
        if not durable:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())  # the bytes are on disk before the name appears
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if durable:
            # The new name lives in the directory's own data: without this fsync a crash
            # may forget it although the bytes were saved. A directory not yet known to be
            # durable is an entry of its parent, which needs the same, deepest first.
            for directory in (path.parent, *(d.parent for d in fresh)):
                _fsync_dir(directory)
            self._synced_dirs.update(fresh)

    def _unsynced_dirs(self, directory: Path) -> list[Path]:
        """``directory`` and its parents up to the store's root whose own entry is not
        known to be on disk, deepest first. Known: made and fsynced by this process, or
        found on disk on the first visit (which fsyncs it once, in case a writer that
        crashed had made it without). Another thread's directory counts only once that
        thread has fsynced its parent, so a put never relies on a sync still to come."""
        fresh: list[Path] = []
        while directory not in self._synced_dirs and directory not in self._roots:
            fresh.append(directory)
            directory = directory.parent
        return fresh

    def put(self, data: bytes) -> str:
        blob_id = blob_id_of(data)
        path = self._path(blob_id)
        if path.exists():
            return blob_id
        self._write_atomic(path, data)
        with self._lock:
            if self._total is not None:
                self._total += len(data)
        return blob_id

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).is_file()

    def get(self, blob_id: str) -> bytes:
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    def open(self, blob_id: str) -> BinaryIO:
        try:
            return self._path(blob_id).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    def local_path(self, blob_id: str) -> Path | None:
        path = self._path(blob_id)
        return path if path.is_file() else None

    def delete(self, blob_id: str) -> bool:
        path = self._path(blob_id)
        with contextlib.suppress(FileNotFoundError):
            self._thumb(blob_id).unlink()
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return False
        with self._lock:
            if self._total is not None:
                self._total -= size
        return True

    def total_bytes(self) -> int:
        with self._lock:
            if self._total is None:
                self._total = sum(
                    p.stat().st_size
                    for p in self.blob_dir.rglob("*")
                    if p.is_file() and not p.name.endswith(".tmp")
                )
            return self._total

    def put_thumbnail(self, blob_id: str, data: bytes, image: Image.Image | None = None) -> None:
        thumb = (
            thumbnail_of(image, self.thumb_size)
            if image is not None
            else make_thumbnail(data, self.thumb_size)
        )
        # No fsync: derived data, see the module docstring. Skipping it matters on ingest,
        # where each fsync is a disk flush per picture.
        self._write_atomic(self._thumb(blob_id), thumb, durable=False)

    def get_thumbnail(self, blob_id: str) -> bytes:
        try:
            thumb = self._thumb(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        # Written without fsync, so after a crash the file may exist empty or truncated: a
        # whole JPEG starts with SOI and ends with EOI; anything else counts as missing.
        if not (thumb.startswith(b"\xff\xd8") and thumb.endswith(b"\xff\xd9")):
            raise BlobNotFound(blob_id)
        return thumb

    def thumbnail_path(self, blob_id: str) -> Path | None:
        path = self._thumb(blob_id)
        return path if path.is_file() else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
