"""The tar around an export with its original files: ``blobs/<image id>`` for each image
whose file exists, then the data file (``export.parquet`` or ``export.npz``) last.

Written by hand, a member at a time (a 512-byte header from :class:`tarfile.TarInfo`, the
bytes, padding to 512), so it streams with at most one file in memory; read with
:mod:`tarfile`, which checks each header's checksum.
"""

from __future__ import annotations

import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

from clipsearch.usecases.export_format import Fmt, bad_file

BLOBS_DIR = "blobs/"
BLOCK = 512
CHUNK = 1 << 20


def data_name(fmt: Fmt) -> str:
    return f"export.{fmt}"


def member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def blob_member(blob_id: str, data: bytes) -> bytes:
    return member_header(BLOBS_DIR + blob_id, len(data)) + data + padding(len(data))


def file_member(name: str, path: Path) -> Iterator[bytes]:
    """A member from a file on disk, a chunk at a time."""
    size = path.stat().st_size
    yield member_header(name, size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
    yield padding(size)


END = b"\0" * (2 * BLOCK)  # the end-of-archive marker


class TarIn:
    """An uploaded tar: its data file extracted to ``tmp``, its blobs read on demand."""

    def __init__(self, path: Path, tmp: Path) -> None:
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115  # closed by close()
            members = self._tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise bad_file(f"damaged tar ({exc})") from exc
        self.blobs = {
            m.name[len(BLOBS_DIR) :]: m
            for m in members
            if m.isfile() and m.name.startswith(BLOBS_DIR)
        }
        data = [
            m for m in members if m.isfile() and m.name in (data_name("parquet"), data_name("npz"))
        ]
        if len(data) != 1:
            raise bad_file("the tar must hold one export.parquet or export.npz")
        self.fmt: Fmt = "parquet" if data[0].name.endswith(".parquet") else "npz"
        self.data_path = tmp / data[0].name
        src = self._tar.extractfile(data[0])
        if src is None:
            raise bad_file("the data file in the tar cannot be read")
        try:
            with src, self.data_path.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise bad_file(f"damaged tar ({exc})") from exc

    def blob(self, blob_id: str) -> bytes | None:
        member = self.blobs.get(blob_id)
        if member is None:
            return None
        try:
            src = self._tar.extractfile(member)
            data = src.read() if src is not None else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise bad_file(f"damaged tar ({exc})") from exc
        if len(data) != member.size:
            raise bad_file(f"blob {blob_id} is truncated")
        return data

    def close(self) -> None:
        self._tar.close()
