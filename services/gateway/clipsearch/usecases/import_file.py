"""The file side of an import (:mod:`.transfer`): opening an export (Parquet, npz, or the
tar with files), checking every row and file before anything is written, and turning rows
back into store records.

:func:`validate` checks each row as the store would (:mod:`clipsearch.store.milvus_schema`),
each file against its image id (the sha256 of its bytes) and the row counts against the
manifest, so a bad file is refused (422 ``invalid_export_file``) with the collection untouched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from clipsearch.core.errors import CollectionMismatch
from clipsearch.store import milvus_schema as ms
from clipsearch.store.protocol import ImageRecord, InvalidStoreRequest, TextRecord
from clipsearch.usecases import export_archive as archive
from clipsearch.usecases.export_format import DataIn, Manifest, Row, bad_file, sniff

BATCH = 500  # rows per batch read from the file


def validate(data: DataIn, tar: archive.TarIn | None) -> None:
    """Every row and file checked as the store would, before anything is written."""
    m = data.manifest
    seen = {"images": 0, "texts": 0}
    for rows in data.batches(BATCH):
        for row in rows:
            where = {"row": sum(seen.values()), "id": str(row.get("id"))[:80]}
            try:
                if row["kind"] == "image":
                    ms.image_row(to_image(row), m.dim)
                    blob = tar.blob(row["id"]) if tar is not None else None
                    if blob is not None and hashlib.sha256(blob).hexdigest() != row["id"]:
                        raise bad_file("a file does not match its image id", **where)
                else:
                    ms.text_row(to_text(row), m.dim)
            except (InvalidStoreRequest, TypeError, ValueError) as exc:
                raise bad_file(f"row {where['row']}: {exc}", **where) from exc
            seen["images" if row["kind"] == "image" else "texts"] += 1
    want = {k: m.counts.get(k) for k in seen}
    if seen != want:
        raise bad_file(f"the file holds {seen}, its manifest says {want}")


def open_export(path: Path, tmp: Path) -> tuple[DataIn, archive.TarIn | None]:
    kind = sniff(path)
    if kind == "tar":
        tar = archive.TarIn(path, tmp)
        try:
            return DataIn(tar.data_path, tar.fmt), tar
        except BaseException:
            tar.close()
            raise
    return DataIn(path, kind), None


def model_mismatch(m: Manifest, model: str, fingerprint: str) -> CollectionMismatch:
    return CollectionMismatch(
        f"the export was made with model {m.model_name!r} (fingerprint {m.fingerprint}), "
        f"the collection uses {model!r} (fingerprint {fingerprint}): its vectors would not "
        "compare. Import it on a gateway running that model, then migrate.",
        code="model_mismatch",
        details={"file": m.fingerprint, "collection": fingerprint},
    )


def to_image(row: Row) -> ImageRecord:
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


def to_text(row: Row) -> TextRecord:
    return TextRecord(
        id=row["id"],
        vector=row["vector"],
        text=row.get("text") or "",
        image_id=row.get("image_id") or "",
        metadata=row.get("metadata") or {},
        created_at=int(row.get("created_at") or 0),
    )
