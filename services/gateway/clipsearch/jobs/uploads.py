"""Streaming multipart parser for ``POST /v1/ingest``: file parts go straight to spool
files in the data dir, chunk by chunk, so a large upload is never held in memory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header

from clipsearch.core.errors import ClipsearchError, InvalidRequest, TooLarge
from clipsearch.jobs.spool import Spool

MAX_FIELD_BYTES = 1024 * 1024
MAX_CAPTIONS_FILE_BYTES = 32 * 1024 * 1024
MAX_PARTS = 200_000


class UploadError(InvalidRequest, ValueError):
    """The multipart body is malformed or breaks a count limit (a part over its size limit
    is a :class:`~clipsearch.core.errors.TooLarge`)."""

    code = "invalid_multipart"


@dataclass(slots=True)
class SpooledFile:
    filename: str
    path: Path
    size: int = 0
    too_large: bool = False


@dataclass(slots=True)
class ParsedUpload:
    files: list[SpooledFile] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    captions_file: tuple[str, bytes] | None = None


class _State:
    def __init__(self, spool_dir: Path, max_file_bytes: int, quota: Spool | None) -> None:
        self.spool_dir = spool_dir
        self.quota = quota
        self.max_file_bytes = max_file_bytes
        self.out = ParsedUpload()
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.buffer = bytearray()
        self.file: SpooledFile | None = None
        self.fh: int | None = None
        self.parts = 0

    # Callbacks only record; the disk writes happen in a worker thread per body chunk.
    def part_begin(self) -> None:
        self.headers, self.buffer, self.file, self.fh = {}, bytearray(), None, None
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(f"more than {MAX_PARTS} parts")

    def header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = params.get(b"name", b"").decode("utf-8", "replace")
        raw = params.get(b"filename")
        self.filename = raw.decode("utf-8", "replace") if raw is not None else None
        if self.name == "files" and self.filename is not None:
            n = len(self.out.files)
            path = self.spool_dir / f"{n:06d}"
            self.file = SpooledFile(filename=self.filename or f"file-{n}", path=path)
            self.out.files.append(self.file)
            self.fh = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.file is not None and self.fh is not None:
            self.file.size += len(chunk)
            if self.file.size > self.max_file_bytes:
                self.file.too_large = True  # the item will fail; stop writing its bytes
                return
            if self.quota is not None:
                self.quota.take(len(chunk))  # SpoolFull past the quota: the upload stops
            os.write(self.fh, chunk)
            return
        limit = MAX_CAPTIONS_FILE_BYTES if self.name == "captions_file" else MAX_FIELD_BYTES
        self.buffer += chunk
        if len(self.buffer) > limit:
            raise TooLarge(f"part {self.name!r} is over {limit} bytes")

    def part_end(self) -> None:
        if self.fh is not None:
            os.close(self.fh)
            self.fh = None
            return
        if self.name == "captions_file":
            self.out.captions_file = (self.filename or "captions", bytes(self.buffer))
        elif self.name:
            value = self.buffer.decode("utf-8", "replace")
            self.out.fields.setdefault(self.name, []).append(value)

    def close(self) -> None:
        if self.fh is not None:
            os.close(self.fh)
            self.fh = None


async def parse_multipart(
    content_type: str,
    body: AsyncIterator[bytes],
    spool_dir: Path,
    *,
    max_file_bytes: int,
    quota: Spool | None = None,
) -> ParsedUpload:
    """Parse the body; ``files`` parts are written under ``spool_dir`` (created here),
    their bytes counted against ``quota`` (:class:`~clipsearch.jobs.spool.SpoolFull`)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError("multipart body without a boundary")
    await to_thread.run_sync(lambda: spool_dir.mkdir(parents=True, exist_ok=True))
    state = _State(spool_dir, max_file_bytes, quota)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": state.part_begin,
            "on_part_data": state.part_data,
            "on_part_end": state.part_end,
            "on_header_field": state.header_field_cb,
            "on_header_value": state.header_value_cb,
            "on_header_end": state.header_end,
            "on_headers_finished": state.headers_finished,
        },
    )
    try:
        # Only the parser's own errors mean a malformed body: an error from reading the
        # body itself (the request size limit: a 413; a disconnect) passes through as is.
        async for chunk in body:
            if chunk:
                await to_thread.run_sync(_parse, parser.write, chunk)
        _parse(parser.finalize)
    finally:
        state.close()
    return state.out


def _parse(step: Callable[..., object], *args: bytes) -> None:
    try:
        step(*args)
    except ClipsearchError:  # ours (UploadError, TooLarge, SpoolFull): as they are
        raise
    except Exception as exc:  # python-multipart raises its own errors for malformed bodies
        raise UploadError(f"malformed multipart body: {exc}") from exc
