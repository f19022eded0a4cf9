"""What the use-cases need from the blob store (``Blobs``), and its adapter over the
store's :class:`~clipsearch.store.blobs.BlobStore`: one ``put`` writes the original
(durably) and its thumbnail, and a missing blob is a ``FileNotFoundError`` (what the HTTP
layer turns into 404)."""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from clipsearch.store.blobs import BlobNotFound, BlobStore


class Blobs(Protocol):
    """Original bytes and a thumbnail per content hash."""

    def exists(self, blob_id: str) -> bool: ...

    def put(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> None:
        """Original (on disk when this returns) + thumbnail; ``image`` is ``data`` already
        decoded and upright, when the caller has it, so it is not decoded a second time."""

    def read(self, blob_id: str) -> bytes:
        """The original bytes; ``FileNotFoundError`` if absent."""

    def thumbnail(self, blob_id: str) -> bytes:
        """A small JPEG of the image; ``FileNotFoundError`` if absent."""

    def delete(self, blob_id: str) -> None: ...

    def total_bytes(self) -> int: ...


class BlobAdapter:
    """:class:`Blobs` over a :class:`~clipsearch.store.blobs.BlobStore`."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    def exists(self, blob_id: str) -> bool:
        return self.inner.exists(blob_id)

    def put(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> None:
        stored = self.inner.put(data)
        if stored != blob_id:  # ids are sha256 of the bytes on both sides
            raise ValueError(f"blob store gave id {stored}, expected {blob_id}")
        # The thumbnail is written before the caller writes any vector, so every
        # searchable image has one (and one lost in a crash is rebuilt in ``thumbnail``).
        # ``image``, the picture the caller already decoded, spares decoding it again.
        self.inner.put_thumbnail(blob_id, data, image)

    def read(self, blob_id: str) -> bytes:
        try:
            return self.inner.get(blob_id)
        except BlobNotFound as exc:
            raise FileNotFoundError(blob_id) from exc

    def thumbnail(self, blob_id: str) -> bytes:
        try:
            return self.inner.get_thumbnail(blob_id)
        except BlobNotFound:
            # Rebuild a lost thumbnail from the original when that still exists.
            self.inner.put_thumbnail(blob_id, self.read(blob_id))
            return self.inner.get_thumbnail(blob_id)

    def delete(self, blob_id: str) -> None:
        self.inner.delete(blob_id)

    def total_bytes(self) -> int:
        return self.inner.total_bytes()
