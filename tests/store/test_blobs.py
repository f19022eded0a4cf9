"""FileBlobStore: content addressing, atomic writes, deletes, sizes and thumbnails."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from clipsearch.store.blobs import (
    BlobNotFound,
    BlobStore,
    FileBlobStore,
    blob_id_of,
    make_thumbnail,
    thumbnail_of,
)
from clipsearch.usecases.blobs import BlobAdapter
from tests.helpers import solid


def png(width: int, height: int, mode: str = "RGB", color: object = (200, 10, 10)) -> bytes:
    return solid((width, height), color, mode)


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path)


def test_put_is_content_addressed_and_idempotent(blobs: FileBlobStore, tmp_path: Path) -> None:
    assert isinstance(blobs, BlobStore)
    data = b"hello blob"
    blob_id = blobs.put(data)
    assert blob_id == blob_id_of(data)
    assert len(blob_id) == 64
    assert blobs.put(data) == blob_id
    path = tmp_path / "blobs" / blob_id[:2] / blob_id[2:4] / blob_id
    assert path.read_bytes() == data
    assert blobs.local_path(blob_id) == path
    assert blobs.exists(blob_id)
    assert blobs.get(blob_id) == data
    with blobs.open(blob_id) as fh:
        assert fh.read() == data
    assert blobs.total_bytes() == len(data)  # stored once


def test_missing_and_deleted(blobs: FileBlobStore) -> None:
    absent = blob_id_of(b"never stored")
    assert not blobs.exists(absent)
    assert blobs.local_path(absent) is None
    with pytest.raises(BlobNotFound):
        blobs.get(absent)
    with pytest.raises(BlobNotFound):
        blobs.open(absent)
    blob_id = blobs.put(b"x" * 100)
    blobs.put(b"y" * 50)
    assert blobs.total_bytes() == 150
    assert blobs.delete(blob_id) is True
    assert blobs.delete(blob_id) is False
    assert not blobs.exists(blob_id)
    assert blobs.total_bytes() == 50


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "ab", "0" * 63 + "/", "0" * 65, ""])
def test_ids_that_are_not_sha256_hex_are_refused(blobs: FileBlobStore, bad: str) -> None:
    for call in (blobs.exists, blobs.get, blobs.delete, blobs.get_thumbnail):
        with pytest.raises(ValueError, match="invalid blob id"):
            call(bad)


def test_total_bytes_counts_existing_files_on_restart(tmp_path: Path) -> None:
    first = FileBlobStore(tmp_path)
    first.put(b"a" * 10)
    first.put(b"b" * 20)
    assert FileBlobStore(tmp_path).total_bytes() == 30


def test_interrupted_write_leaves_no_partial_blob(
    blobs: FileBlobStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    data = b"important bytes"
    with pytest.raises(OSError, match="disk full"):
        blobs.put(data)
    assert not blobs.exists(blob_id_of(data))
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert leftovers == []


def test_stale_temp_files_are_swept_on_start(tmp_path: Path) -> None:
    stale = tmp_path / "blobs" / "ab" / "cd" / ".xyz.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    store = FileBlobStore(tmp_path)
    assert not stale.exists()
    assert store.total_bytes() == 0


def test_thumbnail_is_small_jpeg_keeping_aspect(blobs: FileBlobStore) -> None:
    data = png(1000, 500)
    blob_id = blobs.put(data)
    blobs.put_thumbnail(blob_id, data)
    thumb = blobs.get_thumbnail(blob_id)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.format == "JPEG"
        assert img.size == (256, 128)
        r, g, b = img.getpixel((128, 64))  # type: ignore[misc]
        assert r > 180
        assert g < 40
        assert b < 40
    assert blobs.thumbnail_path(blob_id) is not None
    assert blobs.total_bytes() == len(data)  # thumbnails are not counted as blobs
    blobs.delete(blob_id)
    assert blobs.thumbnail_path(blob_id) is None
    with pytest.raises(BlobNotFound):
        blobs.get_thumbnail(blob_id)


def test_small_images_are_not_upscaled_and_alpha_goes_white() -> None:
    thumb = make_thumbnail(png(40, 30, "RGBA", (0, 0, 0, 0)))
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (40, 30)
        assert img.mode == "RGB"
        assert min(img.getpixel((20, 15))) > 245  # type: ignore[arg-type]


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    with Image.open(io.BytesIO(make_thumbnail(out.getvalue()))) as thumb:
        assert thumb.size == (86, 256) or thumb.size == (85, 256)


def test_palette_and_grayscale_images_become_rgb() -> None:
    for mode, color in (("P", 3), ("L", 128), ("1", 1), ("I;16", 300)):
        with Image.open(io.BytesIO(make_thumbnail(png(64, 64, mode, color)))) as img:
            assert img.mode == "RGB", mode


def test_thumbnail_refuses_pixel_bombs() -> None:
    with pytest.raises(ValueError, match="pixels"):
        make_thumbnail(png(2000, 2000), max_pixels=1_000_000)


def test_thumbnail_from_the_decoded_picture_skips_decoding(blobs: FileBlobStore) -> None:
    data = png(1000, 500)
    picture = Image.open(io.BytesIO(data))
    picture.load()
    blob_id = blobs.put(data)
    # Bytes that are no image at all: the thumbnail can only have come from ``picture``.
    blobs.put_thumbnail(blob_id, b"not an image", picture)
    assert picture.size == (1000, 500)  # the caller's picture is left as it was
    with Image.open(io.BytesIO(blobs.get_thumbnail(blob_id))) as thumb:
        assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", (256, 128))
        with Image.open(io.BytesIO(make_thumbnail(data))) as from_bytes:
            assert thumb.size == from_bytes.size
            assert thumb.getpixel((128, 64)) == from_bytes.getpixel((128, 64))


def test_thumbnail_of_puts_alpha_on_white() -> None:
    with Image.open(io.BytesIO(thumbnail_of(Image.new("RGBA", (40, 30), (0, 0, 0, 0))))) as img:
        assert (img.mode, img.size) == ("RGB", (40, 30))
        assert min(img.getpixel((20, 15))) > 245  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", [b"", b"\xff\xd8\xff\xe0 cut short"])
def test_damaged_thumbnail_counts_as_missing_and_is_rebuilt(
    blobs: FileBlobStore, damage: bytes
) -> None:
    # Thumbnails are written without fsync: after a crash one may be empty or truncated.
    data = png(64, 64)
    blob_id = blobs.put(data)
    blobs.put_thumbnail(blob_id, data)
    path = blobs.thumbnail_path(blob_id)
    assert path is not None
    path.write_bytes(damage)
    with pytest.raises(BlobNotFound):
        blobs.get_thumbnail(blob_id)
    thumb = BlobAdapter(blobs).thumbnail(blob_id)  # what GET .../thumbnail serves
    assert thumb.startswith(b"\xff\xd8")
    assert thumb.endswith(b"\xff\xd9")
    assert path.read_bytes() == thumb


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths fsynced from now on, in order (as /proc names them)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_put_syncs_the_file_then_every_new_directory_entry(
    blobs: FileBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _record_fsyncs(monkeypatch)
    data = b"durable"
    blob_id = blobs.put(data)
    root = tmp_path / "blobs"
    fan1, fan2 = root / blob_id[:2], root / blob_id[:2] / blob_id[2:4]
    # The bytes under a temporary name first, then the directory holding the final name,
    # then each directory made for it, in the directory above it.
    assert synced[0].startswith(str(fan2 / "."))
    assert synced[0].endswith(".tmp")
    assert synced[1:] == [str(fan2), str(fan1), str(root)]
    # A second blob in the same directories: only its file and its own directory.
    synced.clear()
    other = b"durable 21911"  # found by search: its sha256 also starts with 54da
    assert blob_id_of(other)[:4] == blob_id[:4] == "54da"
    blobs.put(other)
    assert len(synced) == 2
    assert synced[1] == str(fan2)
    # Thumbnails are derived data: no fsync at all.
    synced.clear()
    blobs.put_thumbnail(blob_id, png(8, 8))
    assert synced == []
    assert blobs.get(blob_id) == data
