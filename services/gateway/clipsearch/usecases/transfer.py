"""Back up and restore a collection: export it as a file (streamed) and import such a file
into an empty collection (README: "Export format").

Export walks the store a page at a time (:meth:`VectorStore.scan`), so memory stays flat
however large the collection: Parquet without files goes straight out row group by row
group; npz and the tar with files are assembled in a spool folder first (an npz member
needs its length up front, a tar member its size), then streamed.

Import never re-encodes: the vectors are restored as stored, so the file's model
fingerprint must be the collection's (else 409 ``model_mismatch``; move to another model
with a migration). The whole file is validated before the first write (rows, vector sizes,
each file's hash: :mod:`.import_file`); should a write fail after that (the store going
away), everything the import wrote is removed again, so the collection is left empty as
it was.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clipsearch.core.config import Settings
from clipsearch.core.errors import (
    ClipsearchError,
    Conflict,
    InvalidRequest,
    Unavailable,
    UnknownCollection,
)
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import (
    Filter,
    ImageRecord,
    Target,
    UnknownGroup,
    VectorStore,
)
from clipsearch.usecases import export_archive as archive
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import check_collection_name, check_filter, run_sync, to_the_end
from clipsearch.usecases.export_format import (
    DataIn,
    Fmt,
    Manifest,
    NpzOut,
    ParquetOut,
    Row,
    bad_file,
)
from clipsearch.usecases.import_file import (
    model_mismatch,
    open_export,
    to_image,
    to_text,
    validate,
)

log = logging.getLogger(__name__)
PAGE = 1000  # records per store page when exporting
BATCH = 500  # records per upsert when importing
CHUNK = 1 << 20
MEDIA = {"parquet": "application/vnd.apache.parquet", "npz": "application/octet-stream"}


@dataclass(slots=True)
class Export:
    chunks: Iterator[bytes]
    filename: str
    media_type: str


@dataclass(slots=True)
class Imported:
    collection: str
    images: int = 0
    texts: int = 0
    blobs: int = 0


class _Pipe:
    """A write-only file whose bytes are taken out as they come (Parquet streams into it)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class TransferService:
    """Export and import of collections."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        store: VectorStore,
        blobs: Blobs,
        collections: Collections,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._store = store
        self._blobs = blobs
        self._collections = collections
        self._locks: dict[str, asyncio.Lock] = {}
        self.spool = settings.data_dir / "transfer-spool"

    # --- export --------------------------------------------------------------------------
    async def export(
        self, name: str, fmt: str, *, with_blobs: bool = False, filter: Filter | None = None
    ) -> Export:
        """Check the request, then the stream of the export file (nothing is read yet)."""
        check_collection_name(name)
        if fmt not in ("parquet", "npz"):
            raise InvalidRequest("format must be parquet or npz", code="invalid_format")
        filters = check_filter(filter)
        try:
            # Any collection, also one of another model than the running one: a backup of
            # the old model's vectors is what a move to a new one wants to keep.
            info = await run_sync(self._store.group_info, name)
        except UnknownGroup as exc:
            raise UnknownCollection(f"unknown collection {name!r}") from exc
        manifest = Manifest(
            collection=name,
            model_name=info.model_name,
            fingerprint=info.fingerprint,
            dim=info.dim,
            index_type=info.index_type,
            index_params=info.index_params,
            exported_at=int(time.time()),
            filter=filters,
            counts={"images": 0, "texts": 0, "blobs": 0},
        )
        kind: Fmt = "parquet" if fmt == "parquet" else "npz"
        if with_blobs:
            chunks = self._tar_chunks(name, manifest, kind, filters)
            return Export(chunks, f"{name}.{fmt}.tar", "application/x-tar")
        if kind == "parquet":
            return Export(
                self._parquet_chunks(name, manifest, filters), f"{name}.parquet", MEDIA[fmt]
            )
        return Export(self._spooled_chunks(name, manifest, filters), f"{name}.npz", MEDIA[fmt])

    def _rows(self, group: str, manifest: Manifest, filters: Filter | None) -> Iterator[list[Row]]:
        kinds: tuple[tuple[Target, str], ...] = (("images", "image"), ("texts", "text"))
        for target, kind in kinds:
            after = ""
            while True:
                page = self._store.scan(
                    group, target, after=after, limit=PAGE, filter=filters, with_vectors=True
                )
                if page.rows:
                    manifest.counts[target] += len(page.rows)
                    yield [{"kind": kind, **r} for r in page.rows]
                if page.next_after is None:
                    break
                after = page.next_after

    def _parquet_chunks(
        self, group: str, manifest: Manifest, filters: Filter | None
    ) -> Iterator[bytes]:
        pipe = _Pipe()
        out = ParquetOut(pipe, manifest.dim)  # type: ignore[arg-type]
        for rows in self._rows(group, manifest, filters):
            out.write(rows)
            yield pipe.drain()
        out.close(manifest)
        yield pipe.drain()

    def _write_data(
        self,
        tmp: Path,
        fmt: Fmt,
        group: str,
        manifest: Manifest,
        filters: Filter | None,
        blobs: bool,
    ) -> Iterator[bytes]:
        """Write the data file into ``tmp``; yields a tar member per blob when ``blobs``."""
        path = tmp / archive.data_name(fmt)
        with path.open("wb") as f:
            out: ParquetOut | NpzOut = (
                ParquetOut(f, manifest.dim) if fmt == "parquet" else NpzOut(tmp, manifest.dim)
            )
            for rows in self._rows(group, manifest, filters):
                out.write(rows)
                if blobs and rows[0]["kind"] == "image":
                    yield from self._blob_members(rows, manifest)
            if isinstance(out, ParquetOut):
                out.close(manifest)
            else:
                out.close(manifest, f)

    def _blob_members(self, rows: list[Row], manifest: Manifest) -> Iterator[bytes]:
        for row in rows:
            try:
                data = self._blobs.read(row["id"])
            except FileNotFoundError:
                continue  # exported without its file (it was lost): the record still is
            manifest.counts["blobs"] += 1
            yield archive.blob_member(row["id"], data)

    def _spooled_chunks(
        self, group: str, manifest: Manifest, filters: Filter | None
    ) -> Iterator[bytes]:
        self.spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.spool) as tmp:
            for _ in self._write_data(Path(tmp), "npz", group, manifest, filters, False):
                pass
            with (Path(tmp) / archive.data_name("npz")).open("rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

    def _tar_chunks(
        self, group: str, manifest: Manifest, fmt: Fmt, filters: Filter | None
    ) -> Iterator[bytes]:
        self.spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.spool) as tmp:
            yield from self._write_data(Path(tmp), fmt, group, manifest, filters, True)
            name = archive.data_name(fmt)
            yield from archive.file_member(name, Path(tmp) / name)
            yield archive.END

    # --- import --------------------------------------------------------------------------
    async def import_file(self, name: str, path: Path) -> Imported:
        """Restore the export at ``path`` into collection ``name`` (new, or empty)."""
        check_collection_name(name)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            self.spool.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.spool) as tmp:
                data, tar = await run_sync(open_export, path, Path(tmp))
                try:
                    return await self._import(name, data, tar)
                finally:
                    if tar is not None:
                        tar.close()

    async def _import(self, name: str, data: DataIn, tar: archive.TarIn | None) -> Imported:
        m = data.manifest
        # The file's model must be one this gateway has (main or extra): its vectors are
        # restored as they are, never re-encoded.
        enc = await run_sync(self._collections.models.by_fingerprint, m.fingerprint)
        if enc is None:
            main = self._encoder
            raise model_mismatch(m, main.model_name, main.fingerprint)
        if m.dim != enc.dim:
            raise bad_file(f"manifest dim {m.dim} with the fingerprint of a {enc.dim}-d model")
        await run_sync(validate, data, tar)
        try:
            handle = await self._collections.resolve(name)
        except UnknownCollection:
            await self._collections.create(name, model=enc.model_name)
            handle = await self._collections.resolve(name)
        group = handle.group
        info = await run_sync(self._store.group_info, group)
        if info.fingerprint != m.fingerprint:
            raise model_mismatch(m, info.model_name, info.fingerprint)
        if any(info.counts.values()):
            raise Conflict(
                f"collection {name!r} is not empty: import only into a new or empty one",
                code="collection_not_empty",
                details={"counts": info.counts},
            )
        result = Imported(collection=name)
        new_blobs: list[str] = []
        try:
            await to_the_end(run_sync(self._write, group, data, tar, result, new_blobs))
        except BaseException:
            log.warning("import into %s failed: removing what it wrote", name)
            await to_the_end(run_sync(self._undo, group, new_blobs))
            raise
        return result

    def _write(
        self,
        group: str,
        data: DataIn,
        tar: archive.TarIn | None,
        result: Imported,
        new_blobs: list[str],
    ) -> None:
        for rows in data.batches(BATCH):
            images = [to_image(r) for r in rows if r["kind"] == "image"]
            texts = [to_text(r) for r in rows if r["kind"] == "text"]
            for rec in images:  # the file before the record that points to it
                blob = tar.blob(rec.id) if tar is not None else None
                if blob is not None and not self._blobs.exists(rec.id):
                    self._put_blob(rec, blob)
                    new_blobs.append(rec.id)
                    result.blobs += 1
            if texts:
                self._store.upsert_texts(group, texts)
                result.texts += len(texts)
            if images:
                self._store.upsert_images(group, images)
                result.images += len(images)

    def _put_blob(self, rec: ImageRecord, blob: bytes) -> None:
        try:
            self._blobs.put(rec.id, blob, rec.content_type)
        except OSError as exc:
            raise Unavailable(f"cannot write a file: {exc}", code="blob_write_failed") from exc
        except ClipsearchError:
            raise
        except Exception as exc:  # a thumbnail that cannot be made: not a picture
            raise bad_file(f"the file of image {rec.id} is not a readable picture") from exc

    def _undo(self, group: str, new_blobs: list[str]) -> None:
        targets: tuple[Target, ...] = ("images", "texts")
        for target in targets:
            after: str | None = ""
            while after is not None:
                page = self._store.scan(group, target, after=after, limit=PAGE)
                self._store.delete(group, target, [str(r["id"]) for r in page.rows])
                after = page.next_after
        for blob_id in new_blobs:
            self._blobs.delete(blob_id)


__all__ = ["Export", "Imported", "TransferService"]
