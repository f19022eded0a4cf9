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


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """How a group's vectors are indexed: ``HNSW`` (``M``, ``efConstruction``) or ``FLAT``."""

    type: str = "HNSW"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShadowInfo:
    """The second collection pair of a group being migrated to another model: written
    along with the live pair, searched by nobody until :meth:`VectorStore.switch_shadow`."""

    dim: int
    model_name: str
    fingerprint: str
    index_type: str
    index_params: dict[str, Any]


@dataclass(slots=True)
class ScanPage:
    """A page of :meth:`VectorStore.scan`: rows in id order, and the ``after`` of the next
    page (None when no matching record follows)."""

    rows: list[dict[str, Any]]
    next_after: str | None


@dataclass(slots=True)
class GroupInfo:
    name: str
    dim: int
    model_name: str
    fingerprint: str
    index_type: str
    index_params: dict[str, Any]
    counts: dict[str, int]
    created_at: int = 0
    shadow: ShadowInfo | None = None
    # Physical pairs replaced by a migration, waiting for their grace period to end.
    retired: list[str] = field(default_factory=list)
    # The score ``min_score: "auto"`` means, for this model (None: none stored).
    min_score_auto: float | None = None


@runtime_checkable
class VectorStore(Protocol):
    """A set of *collection groups*, each with an ``images`` and a ``texts`` collection.

    Methods are synchronous (pymilvus is); async callers run them in a worker thread.
    Writes are upserts and are visible to the next read.
    """

    kind: str

    def health(self) -> None: ...

    def list_groups(self) -> list[str]: ...

    def ensure_group(
        self,
        group: str,
        *,
        dim: int,
        model_name: str,
        fingerprint: str,
        index: IndexSpec | None = None,
    ) -> None:
        """Create the group if missing (indexed as ``index``, else the store's default);
        raise :class:`GroupMismatch` if it exists with another model or dimension."""

    def group_info(self, group: str, *, with_counts: bool = True) -> GroupInfo:
        """What the group was built with (``counts`` empty unless ``with_counts``)."""

    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        """Upsert into the pair built with model ``fingerprint`` (the live one, or during
        a migration the shadow one; None: live); :class:`GroupMismatch` if neither is."""

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None: ...

    # --- migration (a shadow pair built with another model, then switched to) ----------
    def begin_shadow(
        self, group: str, *, dim: int, model_name: str, fingerprint: str, index: IndexSpec
    ) -> None:
        """Create the shadow pair of ``group`` (idempotent for the same fingerprint; a
        :class:`GroupMismatch` if a shadow of another model exists)."""

    def switch_shadow(self, group: str) -> None:
        """Atomically make the shadow pair the live one; the old pair is ``retired``."""

    def drop_shadow(self, group: str) -> None:
        """Abandon a migration: drop the shadow pair (no-op without one)."""

    def drop_retired(self, group: str) -> int:
        """Drop the pairs a switch retired; how many collections were dropped."""

    def scan_ids(self, group: str, target: Target, *, shadow: bool = False) -> list[str]:
        """Every id of the live (or shadow) pair's ``target`` collection."""

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]: ...

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        """The stored rows of ``ids`` that exist, in the order asked (``vector`` only when
        ``with_vectors``, as float32)."""

    def count(self, group: str, target: Target) -> int: ...

    def scan(
        self,
        group: str,
        target: Target,
        *,
        after: str = "",
        limit: int = 1000,
        filter: Filter | None = None,
        with_vectors: bool = False,
    ) -> ScanPage:
        """Up to ``limit`` (1..16,384) records matching ``filter`` whose id is greater than
        ``after``, in id order, as :meth:`get` returns them. Walking on with
        ``after=page.next_after`` visits every record present throughout exactly once, with
        no cap on how deep (browse, export, delete by filter)."""

    def texts_of_images(self, group: str, image_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The text rows (as :meth:`get` returns them) linked to any of ``image_ids``."""

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
        fingerprint: str | None = None,
    ) -> list[list[Hit]]:
        """One list of hits per query vector, best first (ties by id: pages of one query
        never overlap or skip), scores are cosine similarity; ``top_k`` <= 16,384 and
        ``offset + top_k`` <= 1,000,000. With ``fingerprint`` (the model of the query
        vectors), :class:`GroupMismatch` when the live pair is of another model (a
        migration switched it meanwhile)."""

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int:
        """Delete from the live pair (and the shadow pair, during a migration); the number
        of live rows removed."""

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        """The ids of the texts linked to ``image_id`` (its captions), sorted."""

    def delete_texts_of_image(self, group: str, image_id: str) -> int: ...

    def set_threshold(
        self, group: str, value: float | None, *, fingerprint: str | None = None
    ) -> None:
        """Store (None: remove) the live pair's ``auto`` threshold in the group's meta; a
        switch to another model drops it (:class:`UnknownGroup` if there is no group;
        with ``fingerprint``, :class:`GroupMismatch` unless it is the live pair's model)."""

    def drop_group(self, group: str) -> bool:
        """Remove both collections and the group's record; False if it did not exist."""

    def flush(self, group: str) -> None:
        """Make recent writes durable and indexed now (end of a bulk ingest); never needed
        for correctness: reads see writes without it."""

    def close(self) -> None: ...
