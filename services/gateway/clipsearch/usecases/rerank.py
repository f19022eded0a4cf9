"""Rerank: the hits of a search re-scored as CLIP ranks candidates (``rerank: true``).

Each query's page of hits is scored against the query: the cosine, and the softmax over
the page of 100 x cosine (:func:`~clipsearch.usecases.similarity.clip_softmax`, the
similarity use-case's arithmetic), best first. In service mode a text query goes to
clip-server's ``/rank`` with the candidates themselves (the pictures' bytes, or the
texts), which encodes them afresh; image queries, and any query when clip-server cannot
rank now, are scored from the search's own cosines (the same figures with the same model).
Each hit keeps its search ``score`` and gains ``rerank_score`` (softmax) and
``rerank_cosine``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clipsearch.encoder.protocol import EncoderError
from clipsearch.store.protocol import Hit, Target
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.common import run_sync
from clipsearch.usecases.search import Query
from clipsearch.usecases.similarity import clip_softmax

log = logging.getLogger(__name__)


class RankScore(Protocol):
    """One candidate as a ranker scored it."""

    @property
    def index(self) -> int: ...  # position in the candidates given

    @property
    def score(self) -> float: ...  # softmax over the candidates

    @property
    def cosine(self) -> float: ...


class TextRanker(Protocol):
    """clip-server's ``/rank``: candidates (texts or image bytes) against a text query."""

    async def rank(self, text: str, candidates: Sequence[str | bytes]) -> Sequence[RankScore]: ...


@dataclass(frozen=True, slots=True)
class Reranked:
    hit: Hit
    cosine: float
    softmax: float
    by: str  # "clip-server" or "local"


class RerankService:
    """Re-scores pages of hits; ``ranker`` is clip-server in service mode, else None."""

    def __init__(self, blobs: Blobs, ranker: TextRanker | None = None) -> None:
        self._blobs = blobs
        self._ranker = ranker

    async def rerank(
        self, queries: Sequence[Query], target: Target, pages: Sequence[Sequence[Hit]]
    ) -> list[list[Reranked]]:
        """Each page re-scored and re-sorted by its softmax (ties keep the search order)."""
        out: list[list[Reranked]] = []
        for query, page in zip(queries, pages, strict=True):
            scored = _local(page)
            if page and self._ranker is not None and query.text is not None:
                try:
                    scored = await self._by_ranker(self._ranker, query.text, target, page)
                except (EncoderError, OSError) as exc:  # clip-server down, a blob gone
                    log.warning("rerank by clip-server failed, scored locally: %s", exc)
            out.append(sorted(scored, key=lambda r: r.softmax, reverse=True))
        return out

    async def _by_ranker(
        self, ranker: TextRanker, text: str, target: Target, page: Sequence[Hit]
    ) -> list[Reranked]:
        candidates: list[str | bytes]
        if target == "images":
            candidates = [await run_sync(self._blobs.read, h.id) for h in page]
        else:
            candidates = [str(h.fields.get("text") or "") for h in page]
        ranked = await ranker.rank(text, candidates)
        return [Reranked(page[r.index], r.cosine, r.score, "clip-server") for r in ranked]


def _local(page: Sequence[Hit]) -> list[Reranked]:
    if not page:
        return []
    softmax = clip_softmax([h.score for h in page])
    return [
        Reranked(h, float(h.score), float(p), "local") for h, p in zip(page, softmax, strict=True)
    ]
