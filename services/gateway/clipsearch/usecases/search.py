"""Search use-case: text, image and batch queries against images or texts.

A batch is answered with one encoder call for all its texts, one for all its images, one
store read for all ``image_id`` queries, and one store search with ``nq = len(queries)``.
A single query is a batch of one.

Text queries may be weighted (several terms with weights) and expanded through the
expansion dictionary: :mod:`clipsearch.usecases.expansion` plans which texts they encode
(still one encoder call for the whole batch) and folds the vectors back into one per query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from clipsearch.core.config import Settings
from clipsearch.core.errors import Conflict, InvalidRequest, NotFoundError, Unavailable
from clipsearch.encoder.protocol import Encoder, EncoderError, Vectors
from clipsearch.store.protocol import Filter, GroupMismatch, Hit, Target, VectorStore
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import check_filter, run_sync
from clipsearch.usecases.expansion import (
    Expanded,
    ExpansionDictionary,
    QueryExpander,
    TextQuery,
    default_dictionary_path,
)
from clipsearch.usecases.imaging import (
    check_size,
    decode_base64,
    encode_pictures,
    inspect_image,
)
from clipsearch.usecases.pixel_budget import shared_budget
from clipsearch.usecases.search_log import NO_SEARCH_LOG, SearchLog, record_search


@dataclass(frozen=True, slots=True)
class Query:
    """Exactly one of ``text``, ``image`` (file bytes), ``image_base64`` (the same, as sent
    in JSON: decoded here, after the limits are checked) or ``image_id`` is set."""

    text: str | None = None
    image: bytes | None = None
    image_id: str | None = None
    image_base64: str | None = None
    # A weighted text query, ((text, weight), ...), instead of ``text``.
    weighted: tuple[tuple[str, float], ...] | None = None
    # Text queries: add the expansion dictionary's expansions (usecases/expansion.py).
    expand: bool = False

    @property
    def kind(self) -> str:
        names = ("text", "image", "image_id", "image_base64", "weighted")
        given = [n for n in names if getattr(self, n) is not None]
        if len(given) != 1:
            raise InvalidRequest(
                "each query needs exactly one of text, image_base64 or image_id",
                code="invalid_query",
            )
        return {"image_base64": "image", "weighted": "text"}.get(given[0], given[0])

    def text_query(self) -> TextQuery:
        """This text query as terms with weights (a plain text is one term of weight 1)."""
        if self.weighted is not None:
            return TextQuery(self.weighted, expand=self.expand, weighted=True)
        assert self.text is not None
        return TextQuery(((self.text, 1.0),), expand=self.expand)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    target: Target = "images"
    top_k: int = 10
    offset: int = 0
    # "auto": the collection's stored threshold for its model (clipsearch evaluate).
    min_score: float | Literal["auto"] | None = None
    filter: Filter | None = None
    rerank: bool = False  # re-scored by the route through usecases/rerank.py


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[list[Hit]]
    took_ms: float
    # Per query: the expansions used (None for queries that did not ask for expansion).
    expansions: list[list[Expanded] | None] | None = None
    # min_score "auto": per query, True when no hit of the page cleared the threshold.
    no_match: list[bool] | None = None


class SearchService:
    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        store: VectorStore,
        collections: Collections,
        search_log: SearchLog = NO_SEARCH_LOG,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._store = store
        self._collections = collections
        self._search_log = search_log  # one line per query; never fails a search
        path = settings.expansions_file or default_dictionary_path()
        self.expander = QueryExpander(
            ExpansionDictionary.from_file(path),
            max_terms=settings.max_query_terms,
            max_chars=settings.max_text_chars,
            max_texts=settings.max_texts_per_request,
        )

    def check_options(self, opts: SearchOptions) -> SearchOptions:
        limit, depth = self._settings.max_top_k, self._settings.max_search_depth
        if opts.target not in ("images", "texts"):
            raise InvalidRequest("target must be 'images' or 'texts'", code="invalid_target")
        if not 1 <= opts.top_k <= limit:
            raise InvalidRequest(
                f"top_k must be within [1, {limit}]",
                code="top_k_too_large",
                details={"max_top_k": limit, "top_k": opts.top_k, "offset": opts.offset},
            )
        if opts.offset < 0 or opts.top_k + opts.offset > depth:
            raise InvalidRequest(
                f"offset must be >= 0 and offset + top_k <= {depth}",
                code="search_too_deep",
                details={"max_search_depth": depth, "top_k": opts.top_k, "offset": opts.offset},
            )
        score = opts.min_score
        if (isinstance(score, str) and score != "auto") or (
            isinstance(score, float | int) and not -1.0 <= score <= 1.0
        ):
            raise InvalidRequest(
                'min_score must be within [-1, 1] or "auto"', code="invalid_min_score"
            )
        check_filter(opts.filter)
        return opts

    async def search(
        self, collection: str, queries: Sequence[Query], opts: SearchOptions
    ) -> SearchResult:
        """Hits for every query, in query order. Validates everything before any work."""
        started = time.perf_counter()
        cfg = self._settings
        if not queries:
            raise InvalidRequest("at least one query is needed", code="empty_batch")
        if len(queries) > cfg.max_batch_queries:
            raise InvalidRequest(
                f"{len(queries)} queries, more than the limit of {cfg.max_batch_queries}",
                code="too_many_queries",
                details={"max_batch_queries": cfg.max_batch_queries},
            )
        self.check_options(opts)
        try:
            return await self._search(collection, queries, opts, started)
        except GroupMismatch:
            # A migration switched the collection to its new model between resolving it and
            # searching it: once more, with the new model (the old pair is not searched
            # with mixed vectors, and the request does not fail).
            self._collections.forget(collection)
            return await self._search(collection, queries, opts, started)

    async def _search(
        self, collection: str, queries: Sequence[Query], opts: SearchOptions, started: float
    ) -> SearchResult:
        cfg = self._settings
        kinds = [q.kind for q in queries]
        texts: list[tuple[int, TextQuery]] = []
        images: list[tuple[int, bytes]] = []
        ids: list[tuple[int, str]] = []
        for i, (q, kind) in enumerate(zip(queries, kinds, strict=True)):
            if kind == "text":
                texts.append((i, q.text_query()))
            elif kind == "image":
                data = q.image
                if data is None:
                    assert q.image_base64 is not None
                    data = decode_base64(q.image_base64, max_bytes=cfg.max_upload_bytes)
                check_size(data, max_bytes=cfg.max_upload_bytes)
                images.append((i, data))
            else:
                assert q.image_id is not None
                ids.append((i, q.image_id))
        # Checks every text, weight and limit before any work.
        plan = self.expander.plan([t for _, t in texts])
        handle = await self._collections.resolve(collection)
        group, enc = handle.group, handle.encoder
        min_score = auto_threshold(collection, handle.info.min_score_auto, opts.min_score)
        # Decoded once: each picture is validated here and its model input kept for below.
        pixels = []
        for _, data in images:
            limit = cfg.max_pixels
            budget = shared_budget(cfg.decode_budget_mpx)
            seen = await run_sync(inspect_image, data, max_pixels=limit, budget=budget, encoder=enc)
            pixels.append(seen.pixels)

        dim = enc.dim
        matrix = np.zeros((len(queries), dim), dtype=np.float32)
        if ids:
            matrix[[i for i, _ in ids]] = await self.stored_vectors(group, [v for _, v in ids])
        try:
            if texts:
                vecs = await enc.encode_texts(plan.texts)
                matrix[[i for i, _ in texts]] = plan.combine(vecs)
            if images:
                vecs = await encode_pictures(enc, [b for _, b in images], pixels)
                matrix[[i for i, _ in images]] = vecs
        except EncoderError as exc:
            raise Unavailable(f"encoder failed: {exc}", code="encoder_unavailable") from exc
        hits = await run_sync(
            self._store.search,
            group,
            opts.target,
            matrix,
            top_k=opts.top_k,
            offset=opts.offset,
            filter=opts.filter or None,
            min_score=min_score,
            fingerprint=handle.info.fingerprint,
        )
        expansions: list[list[Expanded] | None] = [None] * len(queries)
        for (i, _), used in zip(texts, plan.expansions, strict=True):
            expansions[i] = used
        took_ms = (time.perf_counter() - started) * 1000.0
        no_match = [not page for page in hits] if opts.min_score == "auto" else None
        result = SearchResult(hits, took_ms, expansions, no_match)
        logged = [None if u is None else [t for e in u for t in e.texts] for u in expansions]
        record_search(self._search_log, collection, queries, opts, result, logged)
        return result

    async def stored_vectors(self, group: str, image_ids: list[str]) -> Vectors:
        """Reuse the stored vectors of ``image_id`` queries instead of re-encoding."""
        unique = list(dict.fromkeys(image_ids))
        rows = await run_sync(self._store.get, group, "images", unique, with_vectors=True)
        by_id = {str(r["id"]): r for r in rows}
        missing = [i for i in unique if i not in by_id]
        if missing:
            raise NotFoundError(
                f"image {missing[0]!r} not found in collection {group!r}",
                code="image_not_found",
                details={"missing": missing},
            )
        out = []
        for image_id in image_ids:
            vector = by_id[image_id].get("vector")
            if vector is None:  # a store that does not return vectors cannot serve this
                raise Unavailable("the store did not return the stored vector")
            out.append(np.asarray(vector, dtype=np.float32))
        return np.stack(out)


def auto_threshold(
    collection: str, stored: float | None, min_score: float | Literal["auto"] | None
) -> float | None:
    """The score a search filters by: ``min_score`` itself, or for ``"auto"`` the threshold
    stored with the collection (409 ``no_threshold`` when it has none)."""
    if min_score != "auto":
        return min_score
    if stored is None:
        raise Conflict(
            f'collection {collection!r} has no stored threshold for min_score "auto": compute '
            "one with `clipsearch evaluate --store-threshold` (or PUT "
            f"/v1/collections/{collection}/threshold), or send a number",
            code="no_threshold",
            details={"collection": collection},
        )
    return stored
