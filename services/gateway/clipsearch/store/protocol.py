"""The VectorStore contract: collections of image and text vectors with metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Target = Literal["images", "texts"]
Filter = dict[str, Any]


class StoreError(Exception):
    """The store failed (unreachable, refused the request). ``unavailable`` is True when
    the server was not there (restarting): the same call may succeed later."""

    unavailable: bool = False


class GroupMismatch(StoreError):
    """A collection group exists but was built with another model or dimension."""


class UnknownGroup(StoreError):
    """No collection group of that name exists."""


class InvalidStoreRequest(ValueError):
    """The caller's input cannot be stored or searched as given (bad group name, filter,
    vector shape, field too long, top_k + offset over the limit): a client error, not an
    outage."""


@dataclass(slots=True)
class ImageRecord:
    id: str
    vector: npt.NDArray[np.float32]
    source: str = ""
    content_type: str = ""
    width: int = 0
    height: int = 0
    caption: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0  # unix seconds


@dataclass(slots=True)
class TextRecord:
    id: str
    vector: npt.NDArray[np.float32]
    text: str
    image_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0


@dataclass(slots=True)
class Hit:
    id: str
    score: float
    fields: dict[str, Any]


@dataclass(slots=True)
class GroupInfo:
    name: str
    dim: int
    model_name: str
    fingerprint: str
    index_type: str
    index_params: dict[str, Any]
    counts: dict[str, int]


@runtime_checkable
class VectorStore(Protocol):
    """A set of *collection groups*, each with an ``images`` and a ``texts`` collection.

    Methods are synchronous (pymilvus is); async callers run them in a worker thread.
    Writes are upserts and are visible to the next read.
    """

    kind: str

    def health(self) -> None: ...

    def list_groups(self) -> list[str]: ...

    def ensure_group(self, group: str, *, dim: int, model_name: str, fingerprint: str) -> None:
        """Create the group if missing; raise :class:`GroupMismatch` if it differs."""

    def group_info(self, group: str) -> GroupInfo: ...

    def upsert_images(self, group: str, records: Sequence[ImageRecord]) -> None: ...

    def upsert_texts(self, group: str, records: Sequence[TextRecord]) -> None: ...

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]: ...

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        """The stored rows of ``ids`` that exist, in the order asked (``vector`` only when
        ``with_vectors``, as float32)."""

    def count(self, group: str, target: Target) -> int: ...

    def search(
        self,
        group: str,
        target: Target,
        vectors: npt.NDArray[np.float32],
        *,
        top_k: int,
        offset: int = 0,
        filter: Filter | None = None,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """One list of hits per query vector, best first (ties by id: pages of one query
        never overlap or skip), scores are cosine similarity; ``top_k`` <= 16,384 and
        ``offset + top_k`` <= 1,000,000."""

    def vectors_after(
        self, group: str, target: Target, after: str = "", limit: int = 1000
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` rows (``id`` and ``vector``) with ids after ``after``, in id
        order (maybe fewer though more follow), and True when no row follows them."""

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int: ...

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        """The ids of the texts linked to ``image_id`` (its captions), sorted."""

    def delete_texts_of_image(self, group: str, image_id: str) -> int: ...

    def drop_group(self, group: str) -> bool:
        """Remove both collections and the group's record; False if it did not exist."""

    def flush(self, group: str) -> None:
        """Make recent writes durable and indexed now (end of a bulk ingest); never needed
        for correctness: reads see writes without it."""

    def close(self) -> None: ...
