"""``MilvusStore``: the :class:`VectorStore` over Milvus Lite (a ``.db`` file) or a server.

One code path for both backends; the differences found on Lite 3.2.2 and standalone 2.3.5
are absorbed here:

- Lite does not keep a collection description and does not report HNSW build params, so a
  group's model, fingerprint, dimension and index live in a small meta collection
  ``{prefix}_groups`` (one row per group), written last when a group is created.
- ``delete`` answers a count on the server and a list of ids on Lite, so deletes first
  query the ids that exist and return how many there were.
- Reads use Session consistency unless the settings say otherwise: they see this process's
  own writes without Strong's wait for the server's time tick (:mod:`.milvus_consistency`);
  the collections' default (Bounded) missed fresh writes.
- Indexes are created without pymilvus' wait for the build (``sync=False``): that wait
  calls ``AllocTimestamp``, which Lite does not implement (a logged gRPC traceback per
  index), and a new collection is empty, so there is nothing to wait for.
- Written rows are flushed by a background policy (:mod:`.milvus_flush`): unflushed rows
  are slow to search on Lite and searched through an inexact interim index on a server.
- Lite's filters match JSON ``true`` to ``1``: filters on booleans or numbers are checked
  again, typed (:mod:`.typed_filter`).
- A limited query answers the smallest ids, sorted, on the server, but an arbitrary subset
  on Lite unless it is sent with ``iterator=True``; ``scan`` (keyset paging on the id,
  :mod:`.milvus_browse`), the one id-order walk (browse, export, delete by filter,
  duplicates), always sends it. ``offset + limit`` over 16,384 is refused by the server
  and accepted by Lite: nothing here relies on either.
- pymilvus' ``search_iterator`` (v1 on both: no iterator v2 before Milvus 2.5) stopped
  after 5,389 of 18,000 hits on Lite HNSW; pages past 16,384 are range searches by score
  instead (:mod:`.milvus_paging`), the same on both.
- Aliases (``create_alias``/``alter_alias``) work on Lite 3.2.2 as on the server, although
  Lite was expected to lack them: a migration's switch (:mod:`.milvus_groups`) is the meta
  row on both, with the alias as an extra name for outside readers.
- ``query_iterator`` works on both (Lite logs a warning that it cannot get the server's
  MVCC timestamp and uses the client's).

Creating, dropping and migrating a group's collection pairs is :mod:`.milvus_pairs` (mixed
in), their naming and the meta row's changes :mod:`.milvus_groups`; the reads (counts, rows
by id, scan, search) are :mod:`.milvus_reads` (mixed in).

pymilvus is synchronous. With Lite every call goes through one lock (one embedded server
per file); a server's gRPC channel is thread-safe, so only schema changes are serialised.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from operator import methodcaller
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # pymilvus ships grpcio without stubs
from pymilvus import MilvusClient, MilvusException

from clipsearch.core.config import Settings
from clipsearch.store import milvus_expr as expr
from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store.milvus_consistency import await_delete, read_options
from clipsearch.store.milvus_flush import FlushPolicy
from clipsearch.store.milvus_pairs import PairLifecycle
from clipsearch.store.milvus_reads import IDS_PER_QUERY, RecordReads
from clipsearch.store.milvus_retry import is_unavailable, retry_unavailable
from clipsearch.store.protocol import (
    GroupInfo,
    GroupMismatch,
    ImageRecord,
    IndexSpec,
    InvalidStoreRequest,
    StoreError,
    Target,
    TextRecord,
    UnknownGroup,
)

TARGETS: tuple[Target, ...] = ("images", "texts")
RPC_BUDGET_BYTES = 16 * 1024 * 1024  # upsert chunks; the RPC limit is 64 MB
# A server flush costs seconds and seals a segment; sealing a collection more often than
# this only makes small segments for the server to compact.
SERVER_FLUSH_MIN_INTERVAL_S = 60.0


class MilvusStore(RecordReads, PairLifecycle):
    """Collection groups in Milvus: ``{prefix}_{group}_images`` and ``..._texts``.

    Build with :meth:`from_settings`, or directly with a URI: a path ending in ``.db`` is
    Milvus Lite, ``http(s)://host:port`` is a server (``token`` = ``user:password`` or key).
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str = "",
        prefix: str = "clipsearch",
        index_type: str = "HNSW",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 200,
        hnsw_ef_search: int = 128,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        flush_rows: int = 2000,
        flush_idle_s: float = 2.0,
        write_retry_s: float = 60.0,
        read_timeout_s: float = 10.0,
        consistency: str = "session",
    ) -> None:
        self.kind = "standalone" if uri.startswith(("http://", "https://", "tcp://")) else "lite"
        if self.kind == "lite":
            if not uri.endswith(".db"):
                raise InvalidStoreRequest(f"a Milvus Lite URI must be a path ending in .db: {uri}")
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.index_type = index_type.upper()
        if self.index_type not in ("HNSW", "FLAT"):
            raise InvalidStoreRequest(f"unsupported index type {index_type!r}")
        self.hnsw_params = {"M": hnsw_m, "efConstruction": hnsw_ef_construction}
        self.hnsw_ef_search = hnsw_ef_search
        self._timeout = timeout
        # Reads give up after read_timeout_s: pymilvus otherwise retries a server that is
        # starting up for as long as it takes, and a search would hang instead of a 503.
        self._reads: dict[str, Any] = read_options(consistency)
        if self.kind == "standalone":
            self._reads["timeout"] = read_timeout_s
        # Lite runs in this process: there is no restart to wait out.
        self._write_retry_s = write_retry_s if self.kind == "standalone" else 0.0
        self._ddl_lock = threading.RLock()
        self._data_lock: contextlib.AbstractContextManager[Any] = (
            self._ddl_lock if self.kind == "lite" else contextlib.nullcontext()
        )
        self._groups: dict[str, ms.GroupMeta] = {}
        self._meta_ready = False
        # Set once a server restart was seen: group loads are then asked for, not awaited.
        self._reloading = False
        self.flush_policy = FlushPolicy(
            self._flush_collection,
            rows=flush_rows,
            idle_s=flush_idle_s,
            min_interval_s=SERVER_FLUSH_MIN_INTERVAL_S if self.kind == "standalone" else 0.0,
        )
        try:
            self._client = MilvusClient(uri=uri, token=token, timeout=connect_timeout)
        except MilvusException as exc:
            raise StoreError(f"cannot open Milvus at {self._safe_uri(uri)}: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusStore:
        """The store named by ``CLIPSEARCH_MILVUS_URI`` (empty: Lite file in the data dir)."""
        return cls(
            settings.resolved_milvus_uri,
            token=settings.milvus_token,
            prefix=settings.collection_prefix,
            index_type=settings.index_type.value,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
            flush_rows=settings.milvus_flush_rows,
            flush_idle_s=settings.milvus_flush_idle_s,
            write_retry_s=settings.milvus_write_retry_s,
            read_timeout_s=settings.milvus_read_timeout_s,
            consistency=settings.milvus_consistency.value,
        )

    @staticmethod
    def _safe_uri(uri: str) -> str:
        # Credentials may be embedded as scheme://user:pass@host; never echo them.
        return uri.split("@", 1)[-1] if "@" in uri else uri

    # --- naming and plumbing -----------------------------------------------------------
    def collection(self, group: str, target: Target, *, shadow: bool = False) -> str:
        """The physical collection now holding ``group``'s ``target`` (the meta says which
        generation; ``shadow``: the pair a migration is filling)."""
        meta = self._pair_meta(group, shadow)
        return mg.pair_names(self.prefix, group, meta.generation)[target]

    def _pair_meta(self, group: str, shadow: bool) -> ms.GroupMeta:
        meta = self._group(group)
        if not shadow:
            return meta
        if meta.shadow is None:
            raise InvalidStoreRequest(f"collection group {group!r} has no migration under way")
        return meta.shadow

    def _names(self, group: str, meta: ms.GroupMeta) -> list[str]:
        """Every physical collection of the group: live pair, shadow pair."""
        metas = [meta] + ([meta.shadow] if meta.shadow is not None else [])
        return [n for m in metas for n in mg.pair_names(self.prefix, group, m.generation).values()]

    @property
    def _meta_name(self) -> str:
        return f"{self.prefix}_groups"

    @contextlib.contextmanager
    def _call(self, what: str, *, ddl: bool = False) -> Iterator[MilvusClient]:
        """Serialise as needed and turn pymilvus failures into :class:`StoreError`."""
        lock = self._ddl_lock if ddl else self._data_lock
        with lock:
            try:
                yield self._client
            except MilvusException as exc:
                err = StoreError(f"Milvus {what} failed: {exc.message}")
                err.unavailable = is_unavailable(exc)
                if "not loaded" in str(exc.message):
                    # The server restarted: load the collections again on the next call
                    # (_group, _ensure_meta) rather than wait for the server to get to it;
                    # without waiting for the load, so reads keep failing fast until then.
                    self._groups.clear()
                    self._meta_ready = False
                    self._reloading = True
                raise err from exc
            except (ConnectionError, TimeoutError, grpc.RpcError) as exc:
                # grpc.RpcError: pymilvus raises a call past its timeout (DEADLINE_EXCEEDED)
                # as it comes from gRPC, untranslated.
                err = StoreError(f"Milvus {what} failed: {exc}")
                err.unavailable = True
                raise err from exc

    def _write(self, what: str, call: Callable[[MilvusClient], object]) -> None:
        """``call(client)``: an idempotent write, retried while a server is restarting (see
        :mod:`.milvus_retry`)."""

        def once() -> None:
            with self._call(what) as c:
                call(c)

        retry_unavailable(once, what, self._write_retry_s)

    def _group_for_write(self, group: str) -> ms.GroupMeta:
        """:meth:`_group` for a write: waited for like the write itself while a restarted
        server cannot tell the group's meta or load its collections yet."""
        return retry_unavailable(lambda: self._group(group), "load group", self._write_retry_s)

    def _ensure_meta(self) -> None:
        if self._meta_ready:
            return
        with self._call("create meta collection", ddl=True) as c:
            # Bounded only after a restart: a first load on a fresh server takes its time.
            timeout = self._reads.get("timeout") if self._reloading else None
            ms.create_meta_collection(c, self._meta_name, timeout)
        self._meta_ready = True

    def _read_meta(self, group: str) -> ms.GroupMeta | None:
        self._ensure_meta()
        with self._call("read group meta") as c:
            rows = c.query(
                self._meta_name,
                filter=expr.ids_expr([group]),
                output_fields=["info"],
                **self._reads,
            )
        return ms.GroupMeta.from_json(rows[0]["info"]) if rows else None

    def _group(self, group: str) -> ms.GroupMeta:
        """The group's meta (cached); loads its collections on first use."""
        ms.check_group(group)
        meta = self._groups.get(group)
        if meta is not None:
            return meta
        meta = self._read_meta(group)
        if meta is None:
            raise UnknownGroup(f"collection group {group!r} does not exist")
        with self._call("load collections", ddl=True) as c:
            for name in self._names(group, meta):
                # After a restart (see _call) the load is only asked for: a search meanwhile
                # answers 503 at once instead of hanging for the tens of seconds it takes.
                c.load_collection(
                    name,
                    _async=self._reloading,
                    timeout=self._reads.get("timeout") if self._reloading else None,
                )
        self._groups[group] = meta
        return meta

    # --- groups ------------------------------------------------------------------------
    def health(self) -> None:
        """Raise :class:`StoreError` unless Milvus answers a trivial call now."""
        with self._call("health check") as c:
            c.get_server_version()

    def list_groups(self) -> list[str]:
        self._ensure_meta()
        with self._call("list groups") as c:
            rows = c.query(self._meta_name, filter='id != ""', output_fields=["id"], **self._reads)
        return sorted(str(r["id"]) for r in rows)

    def ensure_group(
        self,
        group: str,
        *,
        dim: int,
        model_name: str,
        fingerprint: str,
        index: IndexSpec | None = None,
    ) -> None:
        """Create ``group`` for this encoder (indexed as ``index``, else as the settings
        say), or check it was built with the same model."""
        ms.check_new_group(group, dim)
        spec = self._index_spec(index)
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is not None:
                if meta.fingerprint != fingerprint or meta.dim != dim:
                    raise GroupMismatch(
                        ms.mismatch_message(group, meta, model_name, fingerprint, dim)
                    )
            else:
                meta = mg.new_meta(dim, model_name, fingerprint, spec)
                self._create_pair(group, meta, write_meta=meta)
            self._groups.pop(group, None)
            self._group(group)

    def group_info(self, group: str, *, with_counts: bool = True) -> GroupInfo:
        meta = self._group(group)
        counts: dict[str, int] = {t: self.count(group, t) for t in TARGETS} if with_counts else {}
        return mg.group_info(group, meta, counts, self.hnsw_ef_search)

    # --- writes ------------------------------------------------------------------------
    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        meta = mg.pair_of(self._group_for_write(group), group, fingerprint)
        rows = [ms.image_row(r, meta.dim) for r in records]
        self._upsert(mg.pair_names(self.prefix, group, meta.generation)["images"], rows)

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None:
        meta = mg.pair_of(self._group_for_write(group), group, fingerprint)
        rows = [ms.text_row(r, meta.dim) for r in records]
        self._upsert(mg.pair_names(self.prefix, group, meta.generation)["texts"], rows)

    def _upsert(self, name: str, rows: list[tuple[dict[str, Any], int]]) -> None:
        chunk: list[dict[str, Any]] = []
        size = 0
        for row, row_size in rows:
            if chunk and size + row_size > RPC_BUDGET_BYTES:
                self._write("upsert", methodcaller("upsert", name, chunk))
                self.flush_policy.wrote(name, len(chunk))  # outside the lock the flusher takes
                chunk, size = [], 0
            chunk.append(row)
            size += row_size
        if chunk:
            self._write("upsert", methodcaller("upsert", name, chunk))
            self.flush_policy.wrote(name, len(chunk))

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int:
        present = sorted(self.existing_ids(group, target, ids))
        names = [self.collection(group, target)]
        if self._group(group).shadow is not None:  # a migration copies what is live: both
            names.append(self.collection(group, target, shadow=True))
        for name in names:
            for start in range(0, len(present), IDS_PER_QUERY):
                part = present[start : start + IDS_PER_QUERY]
                self._write("delete", methodcaller("delete", name, filter=expr.ids_expr(part)))
                self.flush_policy.wrote(name, len(part))  # tombstones are unflushed rows too
            if present:
                await_delete(self._call, self._reads, self.kind, name, present[0])
        return len(present)

    def delete_texts_of_image(self, group: str, image_id: str) -> int:
        return self.delete(group, "texts", self.text_ids_of_image(group, image_id))

    def flush(self, group: str) -> None:
        """Flush both collections of ``group`` now, in this thread.

        For the end of a bulk ingest: searches are then fast (Lite) and go through the
        vector index (a server builds it once a segment is sealed) without waiting for the
        background policy's idle delay. Not needed per write.
        """
        for name in self._names(group, self._group(group)):
            self.flush_policy.flush_now(name)

    def _flush_collection(self, name: str) -> None:
        with self._call("flush") as c:
            c.flush(name)

    def close(self) -> None:
        # Before taking the lock: the flush thread may be waiting for it.
        self.flush_policy.close()
        with self._ddl_lock:
            with contextlib.suppress(Exception):
                self._client.close()
            self._groups.clear()
