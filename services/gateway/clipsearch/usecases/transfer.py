"""Back up and restore a collection: export it as a file (streamed) and import such a file
into an empty collection (README: "Export format").

Export walks the store a page at a time (:meth:`VectorStore.scan`), so memory stays flat
however large the collection: Parquet without files goes straight out row group by row
group; npz and the tar with files are assembled in a spool folder first (an npz member
needs its length up front, a tar member its size), then streamed.

Import never re-encodes: the vectors are restored as stored, so the file's model
fingerprint must be the collection's (else 409 ``model_mismatch``; move to another model
with a migration). The whole file is validated before the first write (rows, vector sizes,
each file's hash); should a write fail after that (the store going away), everything the
import wrote is removed again, so the collection is left empty as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clipsearch.core.config import Settings
from clipsearch.core.errors import (
    ClipsearchError,
    CollectionMismatch,
    Conflict,
    InvalidRequest,
    Unavailable,
    UnknownCollection,
)
from clipsearch.encoder.protocol import Encoder
from clipsearch.store import milvus_schema as ms
from clipsearch.store.protocol import (
    Filter,
    ImageRecord,
    InvalidStoreRequest,
    Target,
    TextRecord,
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
    sniff,
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
                data, tar = await run_sync(_open, path, Path(tmp))
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
            raise _model_mismatch(m, main.model_name, main.fingerprint)
        if m.dim != enc.dim:
            raise bad_file(f"manifest dim {m.dim} with the fingerprint of a {enc.dim}-d model")
        await run_sync(self._validate, data, tar)
        try:
            handle = await self._collections.resolve(name)
        except UnknownCollection:
            await self._collections.create(name, model=enc.model_name)
            handle = await self._collections.resolve(name)
        group = handle.group
        info = await run_sync(self._store.group_info, group)
        if info.fingerprint != m.fingerprint:
            raise _model_mismatch(m, info.model_name, info.fingerprint)
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

    def _validate(self, data: DataIn, tar: archive.TarIn | None) -> None:
        """Every row and file checked as the store would, before anything is written."""
        m = data.manifest
        seen = {"images": 0, "texts": 0}
        for rows in data.batches(BATCH):
            for row in rows:
                where = {"row": sum(seen.values()), "id": str(row.get("id"))[:80]}
                try:
                    if row["kind"] == "image":
                        ms.image_row(_image(row), m.dim)
                        blob = tar.blob(row["id"]) if tar is not None else None
                        if blob is not None and hashlib.sha256(blob).hexdigest() != row["id"]:
                            raise bad_file("a file does not match its image id", **where)
                    else:
                        ms.text_row(_text(row), m.dim)
                except (InvalidStoreRequest, TypeError, ValueError) as exc:
                    raise bad_file(f"row {where['row']}: {exc}", **where) from exc
                seen["images" if row["kind"] == "image" else "texts"] += 1
        want = {k: m.counts.get(k) for k in seen}
        if seen != want:
            raise bad_file(f"the file holds {seen}, its manifest says {want}")

    def _write(
        self,
        group: str,
        data: DataIn,
        tar: archive.TarIn | None,
        result: Imported,
        new_blobs: list[str],
    ) -> None:
        for rows in data.batches(BATCH):
            images = [_image(r) for r in rows if r["kind"] == "image"]
            texts = [_text(r) for r in rows if r["kind"] == "text"]
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


def _open(path: Path, tmp: Path) -> tuple[DataIn, archive.TarIn | None]:
    kind = sniff(path)
    if kind == "tar":
        tar = archive.TarIn(path, tmp)
        try:
            return DataIn(tar.data_path, tar.fmt), tar
        except BaseException:
            tar.close()
            raise
    return DataIn(path, kind), None


def _model_mismatch(m: Manifest, model: str, fingerprint: str) -> CollectionMismatch:
    return CollectionMismatch(
        f"the export was made with model {m.model_name!r} (fingerprint {m.fingerprint}), "
        f"the collection uses {model!r} (fingerprint {fingerprint}): its vectors would not "
        "compare. Import it on a gateway running that model, then migrate.",
        code="model_mismatch",
        details={"file": m.fingerprint, "collection": fingerprint},
    )


def _image(row: Row) -> ImageRecord:
    return ImageRecord(
        id=row["id"],
        vector=row["vector"],
        source=row.get("source") or "",
        content_type=row.get("content_type") or "",
        width=int(row.get("width") or 0),
        height=int(row.get("height") or 0),
        caption=row.get("caption") or "",
        metadata=row.get("metadata") or {},
        created_at=int(row.get("created_at") or 0),
    )


def _text(row: Row) -> TextRecord:
    return TextRecord(
        id=row["id"],
        vector=row["vector"],
        text=row.get("text") or "",
        image_id=row.get("image_id") or "",
        metadata=row.get("metadata") or {},
        created_at=int(row.get("created_at") or 0),
    )


__all__ = ["Export", "Imported", "TransferService"]
