"""The export file: one table of records (images, then texts) and a manifest, as Parquet or
as NumPy ``.npz``, written and read a batch at a time (constant memory).

Parquet: one row per record, columns :data:`COLUMNS`, the manifest (JSON) in the file's
key-value metadata under ``clipsearch.manifest`` (written last, with the counts).
npz (no pickles: ``np.load(f, allow_pickle=False)`` reads it): ``manifest`` (uint8, UTF-8
JSON), ``kind`` (<U5), ``id`` (<U64), ``vector`` (float32, n x dim) and ``records`` (uint8,
UTF-8 JSON lines: one object per row with the other columns), rows in the same order.
The container around them (a tar with the original files) is :mod:`.export_archive`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from clipsearch.core.errors import InvalidRequest

FORMAT = "clipsearch-export"
VERSION = 1
MANIFEST_KEY = b"clipsearch.manifest"
Kind = Literal["image", "text"]
Fmt = Literal["parquet", "npz"]
BAD_FILE = "invalid_export_file"
# Scalar columns besides kind, id and vector; per kind, the ones it fills (others are null).
FIELDS: dict[Kind, tuple[str, ...]] = {
    "image": ("source", "content_type", "width", "height", "caption", "metadata", "created_at"),
    "text": ("text", "image_id", "metadata", "created_at"),
}
_TYPES = {
    "source": pa.string(),
    "content_type": pa.string(),
    "width": pa.int64(),
    "height": pa.int64(),
    "caption": pa.string(),
    "text": pa.string(),
    "image_id": pa.string(),
    "metadata": pa.string(),  # the JSON text
    "created_at": pa.int64(),
}
COLUMNS = ("kind", "id", "vector", *_TYPES)
_NPZ_MEMBERS = ("manifest.npy", "kind.npy", "id.npy", "vector.npy", "records.npy")
_ID_DTYPE = np.dtype("<U64")
_KIND_DTYPE = np.dtype("<U5")


def bad_file(message: str, **details: Any) -> InvalidRequest:
    return InvalidRequest(f"not a valid export file: {message}", code=BAD_FILE, details=details)


@dataclass
class Manifest:
    """What the records were made with, and how many there are."""

    collection: str
    model_name: str
    fingerprint: str
    dim: int
    index_type: str
    index_params: dict[str, Any]
    exported_at: int
    filter: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"images": 0, "texts": 0})
    format: str = FORMAT
    version: int = VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise bad_file("the manifest is not a clipsearch export")
            if data.get("version") != VERSION:
                raise bad_file(
                    f"export version {data.get('version')!r}, this server reads {VERSION}"
                )
            counts = {k: int(v) for k, v in dict(data["counts"]).items()}
            made = cls(
                collection=str(data["collection"]),
                model_name=str(data["model_name"]),
                fingerprint=str(data["fingerprint"]),
                dim=int(data["dim"]),
                index_type=str(data["index_type"]),
                index_params=dict(data.get("index_params") or {}),
                exported_at=int(data["exported_at"]),
                filter=data.get("filter"),
                counts=counts,
            )
        except InvalidRequest:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise bad_file(f"unreadable manifest ({exc})") from exc
        if not 1 <= made.dim <= 32768:
            raise bad_file(f"manifest dim {made.dim}")
        return made


# A record between the store and a file: kind, id, vector and its FIELDS (metadata a dict).
Row = dict[str, Any]


def arrow_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("kind", pa.string()),
            ("id", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
            *_TYPES.items(),
        ]
    )


def _column(rows: list[Row], name: str) -> list[Any]:
    if name == "metadata":
        return [json.dumps(r.get("metadata") or {}, ensure_ascii=False) for r in rows]
    return [r.get(name) for r in rows]


class ParquetOut:
    """Rows into a Parquet file on ``sink`` (anything with ``write``), a row group per call."""

    def __init__(self, sink: IO[bytes], dim: int) -> None:
        self.dim = dim
        self._schema = arrow_schema(dim)
        self._writer = pq.ParquetWriter(sink, self._schema)

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        vectors = np.stack([np.asarray(r["vector"], dtype=np.float32) for r in rows]).reshape(-1)
        columns: dict[str, Any] = {
            "kind": [r["kind"] for r in rows],
            "id": [r["id"] for r in rows],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors), self.dim),
        }
        columns |= {name: _column(rows, name) for name in _TYPES}
        self._writer.write_table(pa.table(columns, schema=self._schema))

    def close(self, manifest: Manifest) -> None:
        self._writer.add_key_value_metadata({MANIFEST_KEY: manifest.to_bytes()})
        self._writer.close()


class NpzOut:
    """Rows spooled to column files in ``tmp``; :meth:`close` assembles the ``.npz``."""

    def __init__(self, tmp: Path, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._tmp = tmp
        self._files = {name: (tmp / f"{name}.part").open("wb") for name in _NPZ_MEMBERS[1:]}

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        f = self._files
        f["kind.npy"].write(np.array([r["kind"] for r in rows], dtype=_KIND_DTYPE).tobytes())
        f["id.npy"].write(np.array([r["id"] for r in rows], dtype=_ID_DTYPE).tobytes())
        vectors = np.stack([np.asarray(r["vector"], dtype="<f4") for r in rows])
        f["vector.npy"].write(vectors.tobytes())
        for r in rows:
            record = {k: r.get(k) for k in FIELDS[r["kind"]]}
            f["records.npy"].write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self.n += len(rows)

    def close(self, manifest: Manifest, sink: IO[bytes]) -> None:
        for part in self._files.values():
            part.close()
        shapes = {
            "kind.npy": (_KIND_DTYPE, (self.n,)),
            "id.npy": (_ID_DTYPE, (self.n,)),
            "vector.npy": (np.dtype("<f4"), (self.n, self.dim)),
            "records.npy": (np.dtype("u1"), ((self._tmp / "records.npy.part").stat().st_size,)),
        }
        raw = manifest.to_bytes()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("manifest.npy", "w", force_zip64=True) as m:
                _npy_header(m, np.dtype("u1"), (len(raw),))
                m.write(raw)
            for name, (dtype, shape) in shapes.items():
                with (
                    zf.open(name, "w", force_zip64=True) as m,
                    (self._tmp / f"{name}.part").open("rb") as src,
                ):
                    _npy_header(m, dtype, shape)
                    while chunk := src.read(1 << 20):
                        m.write(chunk)


def _npy_header(out: IO[bytes], dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_2_0(out, header)


# --- reading -----------------------------------------------------------------------------
def sniff(path: Path) -> Literal["parquet", "npz", "tar"]:
    """The container of an uploaded file, by its magic bytes."""
    with path.open("rb") as f:
        head = f.read(512)
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:4] == b"PK\x03\x04":
        return "npz"
    if head[257:262] == b"ustar":
        return "tar"
    raise bad_file("neither Parquet, npz nor a tar of either (see README: Export format)")


class DataIn:
    """An export data file opened for reading: its manifest, then its rows in batches."""

    def __init__(self, path: Path, fmt: Fmt) -> None:
        self.path, self.fmt = path, fmt
        try:
            self.manifest = self._parquet_manifest() if fmt == "parquet" else self._npz_manifest()
        except InvalidRequest:
            raise
        except Exception as exc:  # pyarrow / zipfile / numpy: a damaged file
            raise bad_file(f"cannot read the {fmt} file ({exc})") from exc

    def _parquet_manifest(self) -> Manifest:
        meta = pq.ParquetFile(self.path).metadata.metadata or {}
        if MANIFEST_KEY not in meta:
            raise bad_file("the Parquet file has no clipsearch manifest")
        schema = pq.ParquetFile(self.path).schema_arrow
        if list(schema.names) != list(COLUMNS):
            raise bad_file("the Parquet columns are not those of an export", columns=schema.names)
        return Manifest.from_bytes(meta[MANIFEST_KEY])

    def _npz_manifest(self) -> Manifest:
        with zipfile.ZipFile(self.path) as zf:
            names = set(zf.namelist())
            if not set(_NPZ_MEMBERS) <= names:
                raise bad_file("the npz lacks members", missing=sorted(set(_NPZ_MEMBERS) - names))
            with zf.open("manifest.npy") as m:
                _, shape = _read_header(m, np.dtype("u1"))
                return Manifest.from_bytes(m.read(shape[0]))

    def batches(self, size: int) -> Iterator[list[Row]]:
        """Rows of ``size`` at a time; a damaged file raises ``invalid_export_file``."""
        try:
            if self.fmt == "parquet":
                yield from self._parquet_rows(size)
            else:
                yield from self._npz_rows(size)
        except InvalidRequest:
            raise
        except Exception as exc:
            raise bad_file(f"damaged {self.fmt} data ({exc})") from exc

    def _parquet_rows(self, size: int) -> Iterator[list[Row]]:
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size):
            cols = batch.to_pydict()
            vectors = batch.column("vector")
            if vectors.type != pa.list_(pa.float32(), self.manifest.dim):
                raise bad_file(
                    f"vectors are {vectors.type}, the manifest says dim {self.manifest.dim}"
                )
            flat = vectors.flatten().to_numpy(zero_copy_only=False)
            flat = flat.reshape(len(batch), self.manifest.dim)
            rows = []
            for i in range(len(batch)):
                kind = cols["kind"][i]
                if kind not in FIELDS:
                    raise bad_file(f"row kind {kind!r}")
                row: Row = {"kind": kind, "id": cols["id"][i], "vector": flat[i]}
                for name in FIELDS[kind]:
                    row[name] = cols[name][i]
                row["metadata"] = _metadata(row.get("metadata"))
                rows.append(row)
            yield rows

    def _npz_rows(self, size: int) -> Iterator[list[Row]]:
        dim = self.manifest.dim
        with (
            zipfile.ZipFile(self.path) as zf,
            zf.open("kind.npy") as kf,
            zf.open("id.npy") as idf,
            zf.open("vector.npy") as vf,
            zf.open("records.npy") as rf,
        ):
            (n,) = _read_header(kf, _KIND_DTYPE)[1]
            if _read_header(idf, _ID_DTYPE)[1] != (n,):
                raise bad_file("id and kind have different lengths")
            if _read_header(vf, np.dtype("<f4"))[1] != (n, dim):
                raise bad_file(f"vector is not ({n}, {dim})")
            _read_header(rf, np.dtype("u1"))
            done = 0
            buf = b""
            lines: list[bytes] = []  # complete JSON lines read ahead of the batch
            while done < n:
                k = min(size, n - done)
                kinds = _take(kf, _KIND_DTYPE, k).tolist()
                ids = _take(idf, _ID_DTYPE, k).tolist()
                vectors = _take(vf, np.dtype("<f4"), k * dim).reshape(k, dim)
                while len(lines) < k:
                    chunk = rf.read(1 << 20)
                    if not chunk:
                        raise bad_file("records end early")
                    *full, buf = (buf + chunk).split(b"\n")
                    lines += full
                mine, lines = lines[:k], lines[k:]
                rows = []
                for i in range(k):
                    if kinds[i] not in FIELDS:
                        raise bad_file(f"row kind {kinds[i]!r}")
                    record = json.loads(mine[i])
                    if not isinstance(record, dict):
                        raise bad_file("a record is not an object")
                    row = {"kind": kinds[i], "id": ids[i], "vector": vectors[i]}
                    row |= {name: record.get(name) for name in FIELDS[kinds[i]]}
                    row["metadata"] = _metadata(row.get("metadata"))
                    rows.append(row)
                done += k
                yield rows


def _metadata(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_file("a record's metadata is not an object")
    return value


def _read_header(f: IO[bytes], want: np.dtype[Any]) -> tuple[np.dtype[Any], tuple[int, ...]]:
    version = np.lib.format.read_magic(f)
    reader = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = reader(f)
    if fortran or dtype != want:
        raise bad_file(f"an npz member is {dtype}, expected {want}")
    return dtype, tuple(shape)


def _take(f: IO[bytes], dtype: np.dtype[Any], count: int) -> npt.NDArray[Any]:
    raw = f.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise bad_file("an npz member ends early")
    return np.frombuffer(raw, dtype=dtype)
