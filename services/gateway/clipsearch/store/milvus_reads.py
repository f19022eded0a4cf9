"""The reads of :class:`~clipsearch.store.milvus.MilvusStore` (mixed in): counts, rows by id,
the id-order ``scan``, linked texts and ``search``.

Kept apart so the store module stays about connecting, locking, errors, groups and writes.
Every read goes through the store's ``_call`` (its lock on Lite, its error translation) with
the store's read parameters ``_reads`` (consistency level, the server's read timeout: set
in :mod:`.milvus`); the paging logic itself is :mod:`.milvus_browse` (scan) and
:mod:`.milvus_paging` (search).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.store import milvus_browse as browse
from clipsearch.store import milvus_expr as expr
from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_paging as paging
from clipsearch.store import milvus_schema as ms
from clipsearch.store.protocol import Filter, Hit, ScanPage, Target

IDS_PER_QUERY = 1000


class RecordReads:
    """Mixin: needs the store's calls, group cache and read parameters (declared below)."""

    prefix: str
    hnsw_ef_search: int
    _reads: dict[str, Any]

    def _call(self, what: str, *, ddl: bool = False) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _group(self, group: str) -> ms.GroupMeta:
        raise NotImplementedError

    def collection(self, group: str, target: Target, *, shadow: bool = False) -> str:
        raise NotImplementedError

    def count(self, group: str, target: Target) -> int:
        self._group(group)
        with self._call("count") as c:
            rows = c.query(
                self.collection(group, target), filter="", output_fields=["count(*)"], **self._reads
            )
        return int(rows[0]["count(*)"])

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        self._group(group)
        with self._call("query linked texts") as c:
            rows = c.query(
                self.collection(group, "texts"),
                filter=f"image_id == {expr.string_literal(image_id)}",
                output_fields=["id"],
                **self._reads,
            )
        return sorted(str(r["id"]) for r in rows)

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]:
        return {str(r["id"]) for r in self._rows_by_id(group, target, ids, ["id"])}

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        return ms.rows_in_order(self._rows_by_id(group, target, ids, fields), ids, fields)

    def _rows_by_id(
        self, group: str, target: Target, ids: Sequence[str], fields: list[str]
    ) -> list[dict[str, Any]]:
        self._group(group)
        wanted = [i for i in dict.fromkeys(ids) if isinstance(i, str) and i]
        name = self.collection(group, target)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), IDS_PER_QUERY):
            part = wanted[start : start + IDS_PER_QUERY]
            with self._call("query by id") as c:
                rows.extend(
                    c.query(name, filter=expr.ids_expr(part), output_fields=fields, **self._reads)
                )
        return rows

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
        """Records in id order from a cursor, by keyset paging (:mod:`.milvus_browse`)."""
        self._group(group)
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        name = self.collection(group, target)
        query = browse.keyset_query(self._call, name, fields, self._reads)
        return browse.scan_pages(query, filter, after=after, limit=limit, fields=fields)

    def texts_of_images(self, group: str, image_ids: Sequence[str]) -> list[dict[str, Any]]:
        self._group(group)
        name = self.collection(group, "texts")
        return browse.texts_of_images(self._call, name, image_ids, self._reads)

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
        """Nearest neighbours by cosine similarity, one list per row of ``vectors``.

        Best first, ties by id, so pages of the same query never overlap or skip.
        ``offset`` skips the best hits (paging, past Milvus' 16,384 too: see
        :mod:`.milvus_paging`); ``min_score`` drops hits below it, so a page may be shorter
        than ``top_k``; ``filter`` matches metadata values exactly.
        """
        meta = self._group(group)  # read once: the pair searched is the one checked
        mg.check_model(meta, group, fingerprint)
        name = mg.pair_names(self.prefix, group, meta.generation)[target]
        queries = ms.check_queries(vectors, meta.dim, top_k, offset)
        call = functools.partial(self._search_call, meta, name, expr.metadata_filter(filter))
        fetch = functools.partial(self.get, group, target)
        return paging.search(
            call,
            fetch,
            queries,
            ms.OUTPUT_FIELDS[target],
            top_k=top_k,
            offset=offset,
            filter=filter,
            min_score=min_score,
        )

    def _search_call(
        self,
        meta: ms.GroupMeta,
        name: str,
        where: str,
        queries: npt.NDArray[np.float32],
        fields: list[str],
        limit: int,
        skip: int,
        *,
        upper: float | None = None,
        depth: int = 0,
    ) -> Any:
        """One Milvus search; with ``upper``, a range search of scores <= ``upper``."""
        hnsw_ef = self.hnsw_ef_search if meta.index_type == "HNSW" else None
        with self._call("search") as c:
            return c.search(
                name,
                data=queries.tolist(),
                filter=where,
                limit=limit,
                offset=skip,
                output_fields=fields,
                search_params=paging.search_params(hnsw_ef, limit + skip + depth, upper),
                anns_field="vector",
                **self._reads,
            )
